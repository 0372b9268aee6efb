// People (issue 13): avatars (loaded with the bearer token, shown through blob:
// URLs, a coloured initial when there is none), the friends and blocks state
// kept current by `friend.*` events, direct rooms' peers, and the guest upgrade
// dialog. The profile editor and the friends page live in people_views.js.

import { Api, ApiError, getToken } from "./api.js";
import { h, clear } from "./dom.js";
import { t, errorText } from "./i18n.js";

// ---------- avatars ----------

const blobs = new Map(); // url -> Promise<blob: URL | null>

/** A blob: URL of the image at `url` (fetched once with the bearer token). */
export function avatarBlob(url) {
  let p = blobs.get(url);
  if (!p) {
    p = fetch(url, { headers: { Authorization: `Bearer ${getToken()}` } })
      .then((res) => (res.ok ? res.blob() : null))
      .then((b) => (b ? URL.createObjectURL(b) : null))
      .catch(() => null);
    blobs.set(url, p);
    // A failure is not remembered: the next look tries again.
    p.then((u) => u || blobs.delete(url));
  }
  return p;
}

const users = new Map(); // id -> Promise<User | null>

/** The profile of user `id` (cached; `fresh` reloads it). */
export function userInfo(id, fresh = false) {
  let p = users.get(id);
  if (!p || fresh) {
    p = Api.user(id).catch(() => null);
    users.set(id, p);
  }
  return p;
}

/** Remembers a profile the server just sent (me after an edit, a request's user). */
export function knowUser(u) {
  if (u && u.id !== undefined) users.set(u.id, Promise.resolve(u));
}

const HUES = [210, 12, 150, 280, 45, 330, 185, 95];

/**
 * A round avatar for `user` ({id, display_name|name, avatar_url?}): the image
 * when the user has one, else the first letter on a colour picked from the id.
 * When `avatar_url` is not in the reference (a message's sender) the profile is
 * looked up. `size`: "small" (64 px image) or "large".
 */
export function avatar(user, size = "small") {
  const name = user.display_name ?? user.name ?? "?";
  const initial = [...name.trim()][0]?.toUpperCase() || "?";
  const hue = HUES[Math.abs(Number(user.id) || hashOf(String(user.id))) % HUES.length];
  const el = h("span.avatar." + size, { "aria-hidden": "true", "data-testid": "avatar", dataset: { userId: user.id } }, initial);
  el.style.setProperty("--hue", String(hue));
  const show = (url) => {
    if (!url) return;
    avatarBlob(size === "small" ? `${url}?size=64` : url).then((src) => {
      if (!src) return;
      el.dataset.hasImage = "true";
      clear(el, h("img", { src, alt: "" }));
    });
  };
  if ("avatar_url" in user) show(user.avatar_url);
  else if (user.id !== undefined) userInfo(user.id).then((u) => u && show(u.avatar_url));
  return el;
}

function hashOf(s) {
  let x = 0;
  for (const c of s) x = (x * 31 + c.codePointAt(0)) | 0;
  return x;
}

// ---------- friends and blocks ----------

/**
 * What the signed-in user knows of their people: friends (with online), pending
 * requests both ways, blocked users. `changed` listeners re-render their views.
 */
export const people = {
  me: null,
  friends: [],
  incoming: [],
  outgoing: [],
  blocked: [],
  loaded: false,
  listeners: new Set(),
  peers: new Map(), // direct room id -> Promise<peer member | null>
  // Set by the app: openDirect(userId) opens (or creates) the direct room; toast(text).
  hooks: { openDirect: null, toast: null },

  reset(me) {
    this.me = me;
    this.friends = [];
    this.incoming = [];
    this.outgoing = [];
    this.blocked = [];
    this.loaded = false;
    this.guestBlocked = false;
    this.peers.clear();
  },

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  },

  changed() {
    for (const fn of this.listeners) fn();
  },

  /** Loads friends, requests (registered users only) and blocks. */
  async load() {
    const registered = this.me && !this.me.guest;
    const [friends, requests, blocks] = await Promise.all([
      registered ? Api.friends().catch(() => null) : null,
      registered ? Api.friendRequests().catch(() => null) : null,
      // A guest has blocked no one until they do (saves a request on every page load).
      registered || this.guestBlocked ? Api.blocks().catch(() => null) : null,
    ]);
    if (friends) this.friends = friends.friends;
    if (requests) {
      this.incoming = requests.incoming;
      this.outgoing = requests.outgoing;
    }
    if (blocks) this.blocked = blocks.blocks;
    this.loaded = true;
    this.changed();
  },

  isFriend(id) {
    return this.friends.some((f) => f.id === id);
  },
  isBlocked(id) {
    return this.blocked.some((u) => u.id === id);
  },
  incomingFrom(id) {
    return this.incoming.find((r) => r.from === id);
  },
  outgoingTo(id) {
    return this.outgoing.find((r) => r.to === id);
  },

  /** Sends (or, when they had asked already, completes) a friend request. */
  async request(userId) {
    const req = await Api.friendRequest(userId);
    if (req.user) knowUser(req.user);
    if (req.status === "accepted") await this.load();
    else {
      this.outgoing = [...this.outgoing.filter((r) => r.id !== req.id), req];
      this.changed();
    }
    return req;
  },

  async accept(id) {
    const req = await Api.acceptRequest(id);
    this.incoming = this.incoming.filter((r) => r.id !== id);
    await this.load();
    return req;
  },

  async decline(id) {
    await Api.declineRequest(id);
    this.incoming = this.incoming.filter((r) => r.id !== id);
    this.changed();
  },

  async cancel(id) {
    await Api.cancelRequest(id);
    this.outgoing = this.outgoing.filter((r) => r.id !== id);
    this.changed();
  },

  async unfriend(userId) {
    await Api.unfriend(userId);
    this.friends = this.friends.filter((f) => f.id !== userId);
    this.changed();
  },

  async block(userId) {
    await Api.block(userId);
    this.guestBlocked = true;
    await this.load();
  },

  async unblock(userId) {
    await Api.unblock(userId);
    this.blocked = this.blocked.filter((u) => u.id !== userId);
    this.changed();
  },

  /** A `friend.*` event from `/user/queue/events`; whether it was one. */
  onEvent(ev) {
    switch (ev.type) {
      case "friend.request":
        if (ev.request.user) knowUser(ev.request.user);
        this.incoming = [...this.incoming.filter((r) => r.id !== ev.request.id), ev.request];
        break;
      case "friend.accepted":
        this.incoming = this.incoming.filter((r) => r.id !== ev.request.id);
        this.outgoing = this.outgoing.filter((r) => r.id !== ev.request.id);
        // The list carries `online`: ask for it rather than guess.
        this.load();
        break;
      case "friend.removed":
        this.friends = this.friends.filter((f) => f.id !== ev.user_id);
        break;
      case "friend.cancelled":
        this.incoming = this.incoming.filter((r) => r.id !== ev.request_id);
        break;
      default:
        return false;
    }
    this.changed();
    return true;
  },

  /** The other member of direct room `room` (from its members; cached). */
  peer(room) {
    if (room.peer) return Promise.resolve(room.peer);
    let p = this.peers.get(room.id);
    if (!p) {
      p = Api.members(room.id)
        .then((res) => res.members.find((m) => m.id !== this.me.id) || null)
        .catch(() => null);
      this.peers.set(room.id, p);
      p.then((m) => m || this.peers.delete(room.id));
    }
    return p;
  },
};

// ---------- guest upgrade ----------

let upgradeHandler = null;
/**
 * `{before(), done(res), failed()}` from the app: `before` runs as the request
 * goes (the old token may be refused from then on), `done` after it worked
 * ({user, token}: the app swaps the token), `failed` when it did not.
 */
export function setUpgradeHandler(handler) {
  upgradeHandler = handler;
}

/** Turns the signed-in guest into a registered user; resolves with the new user. */
export async function upgrade(username, password) {
  upgradeHandler?.before?.();
  let res;
  try {
    res = await Api.upgrade(username, password);
  } catch (e) {
    upgradeHandler?.failed?.();
    throw e;
  }
  await upgradeHandler?.done?.(res);
  return res.user;
}

/** The guest upgrade form (username, password); `onDone(user)` after it worked. */
export function upgradeForm(onDone, { intro } = {}) {
  const uid = `up-${Math.random().toString(36).slice(2, 8)}`;
  const user = h("input", { id: `${uid}-user`, required: true, minlength: "3", maxlength: "32", autocomplete: "username", "data-testid": "upgrade-username" });
  const pass = h("input", {
    id: `${uid}-pass`,
    type: "password",
    required: true,
    minlength: "8",
    maxlength: "128",
    autocomplete: "new-password",
    "data-testid": "upgrade-password",
  });
  const err = h("p.form-error", { role: "alert", "data-testid": "upgrade-error" });
  const btn = h("button.primary", { type: "submit", "data-testid": "upgrade-submit" }, t("upgrade_submit"));
  const form = h(
    "form.upgrade-form",
    {
      "data-testid": "upgrade-form",
      onsubmit: async (e) => {
        e.preventDefault();
        btn.disabled = true;
        err.textContent = "";
        try {
          const u = await upgrade(user.value.trim(), pass.value);
          onDone?.(u);
        } catch (x) {
          err.textContent = x instanceof ApiError && x.status === 0 ? t("error_network") : errorText(x);
          btn.disabled = false;
        }
      },
    },
    h("h3", t("upgrade_title")),
    h("p.hint", intro || t("upgrade_hint")),
    h("label", { for: `${uid}-user` }, t("username")),
    user,
    h("p.hint", t("username_hint")),
    h("label", { for: `${uid}-pass` }, t("password")),
    pass,
    h("p.hint", t("password_hint")),
    err,
    h("div.row", btn),
  );
  return form;
}

let dialog = null;

export function closeDialog() {
  if (!dialog) return;
  dialog.remove();
  dialog = null;
}

/** A modal with the upgrade form; resolves with the user once upgraded, or null if dismissed. */
export function askUpgrade(intro) {
  closeDialog();
  return new Promise((resolve) => {
    const done = (u) => {
      closeDialog();
      resolve(u);
    };
    const box = h(
      "div.dialog",
      { role: "dialog", "aria-modal": "true", "aria-label": t("upgrade_title"), "data-testid": "upgrade-dialog" },
      h("button.ghost.profile-close", { type: "button", "aria-label": t("profile_close"), "data-testid": "upgrade-close", onclick: () => done(null) }, "×"),
      upgradeForm(done, { intro }),
    );
    const backdrop = h("div.backdrop", { onclick: (e) => e.target === backdrop && done(null) }, box);
    backdrop.addEventListener("keydown", (e) => e.key === "Escape" && done(null));
    dialog = backdrop;
    document.body.append(backdrop);
    box.querySelector("input")?.focus();
  });
}

/**
 * Sends a friend request to `userId` as the signed-in user; a guest is offered
 * the upgrade form first. Resolves with the request, or null if not sent.
 */
export async function addFriend(userId) {
  if (people.me.guest) {
    const u = await askUpgrade(t("upgrade_for_friends"));
    if (!u) return null;
  }
  return people.request(userId);
}
