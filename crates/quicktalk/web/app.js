// QuickTalk web app: entry (guest / log in / sign up), the shell (header with
// connection status and language, rooms sidebar), routing by location hash
// (#/, #/rooms/ID, #/rooms/ID/at/SEQ for a search hit, #/random, #/moderation), random chat, and the screens a
// moderation decision leads to (a ban; a matching cool-down). Rooms'
// conversations live in chat.js, the moderator page in moderation.js, the socket
// in live.js, REST in api.js, strings in i18n.js, push notifications (service
// worker, opt-in, per-room level, title badge) in notify.js, history search in search.js.

import { Api, ApiError, getToken, setToken, setBannedHandler, moderates } from "./api.js";
import { ChatView, formatTime, policySelect } from "./chat.js";
import { h, clear } from "./dom.js";
import { t, errorText, setLanguage, initialLanguage, language, locale, LANGUAGES } from "./i18n.js";
import { guestTag } from "./profile.js";
import { Live } from "./live.js";
import { renderModeration } from "./moderation.js";
import { signer } from "./attachments.js";
import { people, avatar, setUpgradeHandler, addFriend, closeDialog, knowUser } from "./people.js";
import { renderProfileEditor, renderFriends } from "./people_views.js";
import { initNotifications, notificationsCard, forgetPush, setTitleBadge } from "./notify.js";
import { openSearch, closeSearch, forgetSearch } from "./search.js";

const root = document.getElementById("app");

const app = {
  me: null,
  live: null,
  status: "connecting",
  rooms: new Map(),
  chat: null, // the mounted ChatView
  route: { name: "none" },
  match: { state: "idle", roomId: null, partner: null, reason: null, reported: false },
  // Until when matching is refused (a `cooldown` error), ms since the epoch.
  cooldownUntil: 0,
  banned: null, // the `banned` error once the server said so
  matchPrefs: { interests: "", lang: "" },
  roomsTimer: null,
};

// ---------- boot ----------

setLanguage(initialLanguage());
setBannedHandler((e) => showBanned(e));
window.addEventListener("hashchange", () => route());
document.addEventListener("visibilitychange", () => app.chat?.maybeRead());
window.addEventListener("focus", () => app.me && refreshRooms());
// Activity (contract §8): the user is here while the page is visible and focused.
const focusedNow = () => document.visibilityState === "visible" && document.hasFocus();
const reportActivity = () => {
  app.live?.setFocused(focusedNow());
  renderTitle();
};
for (const ev of ["focus", "blur", "pageshow", "pagehide"]) window.addEventListener(ev, reportActivity);
document.addEventListener("visibilitychange", reportActivity);
boot();

async function boot() {
  if (!getToken()) return renderEntry();
  try {
    app.me = await Api.me();
  } catch (e) {
    if (e instanceof ApiError && e.code === "banned") return;
    if (e instanceof ApiError && e.status === 401) {
      setToken(null);
      return renderEntry();
    }
    return renderEntry(t("error_network"));
  }
  start();
}

function start() {
  people.reset(app.me);
  knowUser(app.me);
  people.hooks = { openDirect, toast };
  setUpgradeHandler({ before: () => app.live?.expectReauth(true), done: upgraded, failed: () => app.live?.expectReauth(false) });
  let blockedSig = null;
  people.onChange(() => {
    renderFriendsBadge();
    // Someone was blocked or unblocked: the open room's history changes (hidden messages).
    const sig = people.blocked.map((u) => u.id).sort().join(",");
    if (blockedSig !== null && sig !== blockedSig && app.route.name === "room" && app.chat) reopen(app.route.id);
    if (people.loaded) blockedSig = sig;
    const p = app.match.partner;
    if (app.route.name === "random" && p && (app.match.state === "matched" || app.match.state === "ended") && app.match.friendKey !== friendKey(p)) renderMatchChat();
  });
  app.live = new Live(getToken(), {
    onStatus: (s) => {
      app.status = s;
      renderStatus();
    },
    onRoomEvent,
    onUserEvent,
    onError: onAppError,
    onSendFailed,
    onReceipt: () => {},
    onAuthFailed: () => logout(),
    // CONNECT refused or the socket closed because of a ban: ask REST why
    // (the reply's `banned` error shows the ban screen).
    onBanned: () => Api.me().catch(() => {}),
  });
  app.live.setFocused(focusedNow());
  // A clicked notification asks for its room.
  initNotifications(
    (id) => (location.hash = `#/rooms/${id}`),
    () => app.chat?.room.id ?? null,
  );
  app.route = { name: "none" };
  renderShell();
  refreshRooms();
  people.load();
  clearInterval(app.roomsTimer);
  app.roomsTimer = setInterval(() => (refreshRooms(), people.load()), 30000);
  route();
}

/** The guest became a registered user: the new token replaces the old one
 *  (which stopped working), the socket reconnects with it, the rooms resume. */
async function upgraded(res) {
  setToken(res.token);
  for (const k of ["status_message", "avatar_url"]) delete app.me[k];
  Object.assign(app.me, res.user);
  app.live?.reauth(res.token);
  signer.clear();
  people.me = app.me;
  knowUser(app.me);
  renderMe();
  await people.load();
}

function logout() {
  forgetSearch();
  app.banned = null;
  app.live?.stop();
  app.live = null;
  clearInterval(app.roomsTimer);
  app.chat?.destroy();
  app.chat = null;
  app.me = null;
  app.rooms.clear();
  signer.clear();
  closeDialog();
  people.reset(null);
  people.listeners.clear();
  app.match = { state: "idle", roomId: null, partner: null, reason: null, reported: false };
  // This browser stops getting the pushes of the user who leaves.
  forgetPush(getToken());
  setToken(null);
  setTitleBadge(0);
  history.replaceState(null, "", "#/");
  renderEntry();
}

// ---------- entry ----------

function renderEntry(error) {
  let tab = "guest";
  const body = h("div.entry-body");
  const tabs = h("div.tabs", { role: "tablist" });
  const err = h("p.form-error", { role: "alert", "data-testid": "entry-error" }, error || "");
  const show = (name) => {
    tab = name;
    for (const b of tabs.children) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
    clear(body, tab === "guest" ? guestForm() : accountForm(tab));
    err.textContent = "";
  };
  for (const name of ["guest", "login", "signup"]) {
    tabs.append(
      h("button", { type: "button", role: "tab", dataset: { tab: name }, "data-testid": `tab-${name}`, onclick: () => show(name) }, t(`tab_${name}`)),
    );
  }
  const submitting = async (form, fn) => {
    const btn = form.querySelector("button[type=submit]");
    btn.disabled = true;
    err.textContent = "";
    try {
      const res = await fn();
      setToken(res.token);
      app.me = res.user;
      start();
    } catch (e) {
      err.textContent = e.status === 0 ? t("error_network") : errorText(e);
      btn.disabled = false;
    }
  };
  const guestForm = () => {
    const nick = h("input", { id: "nickname", name: "nickname", maxlength: "64", autocomplete: "nickname", "data-testid": "nickname" });
    const form = h(
      "form.entry-form",
      { onsubmit: (e) => (e.preventDefault(), submitting(form, () => Api.guest(nick.value.trim()))) },
      h("h2", t("guest_title")),
      h("p.hint", t("guest_hint")),
      h("label", { for: "nickname" }, t("nickname")),
      nick,
      h("button.primary.wide", { type: "submit", "data-testid": "guest-submit" }, t("continue_guest")),
    );
    return form;
  };
  const accountForm = (kind) => {
    const user = h("input", { id: "username", name: "username", required: true, autocomplete: "username", minlength: "3", maxlength: "32", "data-testid": "username" });
    const pass = h("input", {
      id: "password",
      name: "password",
      type: "password",
      required: true,
      minlength: kind === "signup" ? "8" : undefined,
      maxlength: "128",
      autocomplete: kind === "signup" ? "new-password" : "current-password",
      "data-testid": "password",
    });
    const display = kind === "signup" ? h("input", { id: "display", name: "display_name", maxlength: "64", autocomplete: "name", "data-testid": "display-name" }) : null;
    const form = h(
      "form.entry-form",
      {
        onsubmit: (e) => {
          e.preventDefault();
          submitting(form, () =>
            kind === "signup" ? Api.signup(user.value.trim(), pass.value, display.value.trim()) : Api.login(user.value.trim(), pass.value),
          );
        },
      },
      h("label", { for: "username" }, t("username")),
      user,
      kind === "signup" ? h("p.hint", t("username_hint")) : null,
      h("label", { for: "password" }, t("password")),
      pass,
      kind === "signup" ? h("p.hint", t("password_hint")) : null,
      display ? [h("label", { for: "display" }, t("display_name")), display] : null,
      h("button.primary.wide", { type: "submit", "data-testid": `${kind}-submit` }, t(kind)),
    );
    return form;
  };
  clear(
    root,
    h(
      "main.entry",
      { "data-testid": "entry" },
      h(
        "div.entry-card",
        h("div.entry-top", h("h1.brand", logo(), t("app_name")), languageSelect(() => renderEntry())),
        h("p.tagline", t("tagline")),
        tabs,
        err,
        body,
      ),
    ),
  );
  show(tab);
}

function logo() {
  return h("span.logo", { "aria-hidden": "true" }, "●");
}

function languageSelect(onChange) {
  const sel = h(
    "select.lang",
    { "aria-label": t("language"), "data-testid": "language" },
    LANGUAGES.map((l) => h("option", { value: l, selected: l === language() }, t(`lang_${l}`))),
  );
  sel.addEventListener("change", () => {
    setLanguage(sel.value);
    onChange();
  });
  return sel;
}

// ---------- shell ----------

let els = {};

function renderShell() {
  els.status = h("span.status", { role: "status", "data-testid": "status" });
  els.roomList = h("ul.room-list", { "data-testid": "room-list", "aria-label": t("rooms") });
  els.createSlot = h("div.create-slot");
  els.main = h("div.main", { "data-testid": "main" });
  els.toasts = h("div.toasts", { role: "alert", "aria-live": "assertive" });
  els.me = h("a.me", { href: "#/profile", "data-testid": "me" });
  els.friendsBadge = h("span.unread", { hidden: true, "data-testid": "friends-badge" });
  const me = app.me;
  clear(
    root,
    h(
      "div.app",
      { "data-testid": "app" },
      h(
        "header.topbar",
        h("a.brand", { href: "#/", "aria-label": t("app_name") }, logo(), h("span.brand-text", t("app_name"))),
        els.status,
        h("div.spacer"),
        h(
          "button.ghost.search-open",
          { type: "button", "data-testid": "open-search", title: t("search_all"), "aria-label": t("search_all"), onclick: (e) => showSearch(null, e.currentTarget) },
          h("span", { "aria-hidden": "true" }, "🔍"),
          h("span.search-open-label", t("search")),
        ),
        languageSelect(() => rerender()),
        els.me,
        h("button.ghost", { type: "button", "data-testid": "logout", onclick: () => logout() }, t("logout")),
      ),
      h(
        "nav.sidebar",
        { "aria-label": t("rooms") },
        h(
          "a.random-entry",
          { href: "#/random", "data-testid": "nav-random" },
          h("span.random-icon", { "aria-hidden": "true" }, "⚡"),
          h("span", h("strong", t("random_chat")), h("small", t("random_sub"))),
        ),
        h(
          "div.rooms-head",
          h("h2", t("rooms")),
          h("button.ghost", { type: "button", "data-testid": "new-room", onclick: () => showCreate() }, "+ " + t("create_room")),
        ),
        els.createSlot,
        els.roomList,
        h(
          "a.friends-entry",
          { href: "#/friends", "data-testid": "nav-friends" },
          h("span", { "aria-hidden": "true" }, "👥 "),
          h("span.grow", t("friends")),
          els.friendsBadge,
        ),
        moderates(me)
          ? h("a.mod-entry", { href: "#/moderation", "data-testid": "nav-moderation" }, h("span", { "aria-hidden": "true" }, "🛡 "), t("moderation"))
          : null,
      ),
      els.main,
      els.toasts,
    ),
  );
  renderStatus();
  renderMe();
  renderFriendsBadge();
  renderRooms();
}

/** The header's "me": avatar, name and guest badge; a link to the profile editor. */
function renderMe() {
  if (!els.me) return;
  const me = app.me;
  els.me.title = t("signed_in_as", { name: me.display_name });
  els.me.setAttribute("aria-label", t("my_profile") + ": " + me.display_name);
  clear(els.me, avatar(me), h("span.me-name", me.display_name), me.guest ? h("span.badge", t("guest_badge")) : null);
}

function renderFriendsBadge() {
  if (!els.friendsBadge) return;
  const n = people.incoming.length;
  els.friendsBadge.hidden = n === 0;
  els.friendsBadge.textContent = String(n);
  els.friendsBadge.setAttribute("aria-label", t("requests_pending", { n }));
}

/** Opens (creating if needed) the direct room with `userId`. */
async function openDirect(userId) {
  const room = await Api.direct(userId);
  if (room.peer) {
    knowUser(room.peer);
    people.peers.set(room.id, Promise.resolve(room.peer));
  }
  roomChanged({ ...room, member: true, unread: app.rooms.get(room.id)?.unread ?? 0 });
  location.hash = `#/rooms/${room.id}`;
}

function rerender() {
  closeSearch();
  renderShell();
  const keep = app.route;
  app.route = { name: "none" };
  app.chat?.destroy();
  app.chat = null;
  route(keep);
}

function renderStatus() {
  if (!els.status) return;
  els.status.dataset.status = app.status;
  els.status.textContent = t(`status_${app.status}`);
}

function toast(text) {
  const el = h("div.toast", text);
  els.toasts?.append(el);
  setTimeout(() => el.remove(), 5000);
}

// ---------- rooms ----------

async function refreshRooms() {
  if (!app.me) return;
  try {
    const res = await Api.rooms();
    const seen = new Set();
    for (const r of res.rooms) {
      seen.add(r.id);
      const old = app.rooms.get(r.id);
      // Live counts are newer than a list fetched before they arrived.
      if (old && old.last_seq > r.last_seq) Object.assign(r, { last_seq: old.last_seq, unread: old.unread, last_message_at: old.last_message_at });
      app.rooms.set(r.id, r);
      if (r.member) app.live.watch(r.id, r.last_seq);
    }
    for (const id of [...app.rooms.keys()]) if (!seen.has(id)) app.rooms.delete(id);
    renderRooms();
  } catch (e) {
    if (e.status === 401) logout();
  }
}

/** Unread messages across the rooms, for the tab title: the open room counts
 *  only while the page is out of sight (as in the sidebar, it is being read). */
function renderTitle() {
  if (!app.me) return setTitleBadge(0);
  const open = app.route.name === "room" && document.visibilityState === "visible" ? app.route.id : null;
  let n = 0;
  for (const r of app.rooms.values()) if (r.member && r.id !== open) n += r.unread || 0;
  setTitleBadge(n);
}

function renderRooms() {
  if (!els.roomList) return;
  renderTitle();
  const open = app.route.name === "room" ? app.route.id : null;
  const rooms = [...app.rooms.values()]
    .sort((a, b) => String(b.last_message_at || b.created_at).localeCompare(String(a.last_message_at || a.created_at)));
  if (!rooms.length) return clear(els.roomList, h("li.empty", t("no_rooms")));
  clear(
    els.roomList,
    rooms.map((r) => {
      const unread = r.member && r.id !== open ? r.unread || 0 : 0;
      const last = r.last_message_at ? formatTime(new Date(r.last_message_at)) : "";
      return h(
        "li",
        h(
          "a.room-item" + (r.id === open ? ".active" : ""),
          { href: `#/rooms/${r.id}`, "aria-current": r.id === open ? "page" : undefined, "data-testid": "room-item", dataset: { roomId: r.id } },
          h(
            "span.room-line",
            r.kind === "direct" ? directAvatar(r) : null,
            r.kind === "direct" ? directName(r) : h("span.room-name", r.name),
            r.kind === "direct" ? h("span.badge", { "data-testid": "direct-badge" }, t("direct_badge")) : r.visibility === "private" ? h("span.badge", t("private_badge")) : null,
            h("span.room-time", last),
          ),
          h(
            "span.room-line.sub",
            h("span", r.kind === "direct" ? t("direct_sub") : t("members_count", { n: r.member_count })),
            unread ? h("span.unread", { "aria-label": t("unread_label", { n: unread }), "data-testid": "unread" }, String(unread)) : null,
          ),
        ),
      );
    }),
  );
}

/** A direct room's name in the list: the peer's display name once known. */
function directName(r) {
  const el = h("span.room-name", { "data-testid": "direct-name" }, r.peer?.display_name ?? r.peer?.name ?? "");
  if (!r.peer) people.peer(r).then((p) => (el.textContent = p ? p.display_name ?? p.name : r.name));
  return el;
}

function directAvatar(r) {
  const slot = h("span.avatar-slot");
  people.peer(r).then((p) => p && slot.append(avatar(p)));
  return slot;
}

function showCreate() {
  if (els.createSlot.firstChild) return clear(els.createSlot);
  const name = h("input", { id: "room-name", required: true, maxlength: "64", "data-testid": "room-name" });
  const policy = policySelect("room-moderation", "standard");
  policy.addEventListener("change", () => (form.querySelector("[data-testid=policy-hint]").textContent = t(`policy_hint_${policy.value}`)));
  const vis = (v) =>
    h("label.radio", h("input", { type: "radio", name: "visibility", value: v, checked: v === "public", "data-testid": `vis-${v}` }), t(v));
  const form = h(
    "form.create-room",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const visibility = form.querySelector("input[name=visibility]:checked").value;
        try {
          const room = await Api.createRoom(name.value.trim(), visibility, policy.value);
          clear(els.createSlot);
          roomChanged({ ...room, member: true, unread: 0 });
          location.hash = `#/rooms/${room.id}`;
        } catch (err) {
          toast(t("error_generic", { message: errorText(err) }));
        }
      },
    },
    h("label", { for: "room-name" }, t("room_name")),
    name,
    h("fieldset", h("legend", t("visibility")), vis("public"), vis("private")),
    h("label", { for: "room-moderation" }, t("moderation_policy")),
    policy,
    h("p.hint", { "data-testid": "policy-hint" }, t("policy_hint_standard")),
    h(
      "div.row",
      h("button.primary", { type: "submit", "data-testid": "create-submit" }, t("create")),
      h("button.ghost", { type: "button", onclick: () => clear(els.createSlot) }, t("cancel")),
    ),
  );
  clear(els.createSlot, form);
  name.focus();
}

function roomChanged(room) {
  const old = app.rooms.get(room.id) || {};
  const merged = { ...old, ...room };
  app.rooms.set(room.id, merged);
  if (merged.member) app.live.watch(room.id, merged.last_seq || 0);
  renderRooms();
}

function roomLeft(id) {
  app.live.unwatch(id);
  const r = app.rooms.get(id);
  if (r) {
    if (r.visibility === "private") app.rooms.delete(id);
    else Object.assign(r, { member: false, unread: undefined });
  }
  location.hash = "#/";
  refreshRooms();
}

function markedRead(id, seq) {
  const r = app.rooms.get(id);
  if (r && seq >= (r.last_seq || 0)) {
    r.unread = 0;
    renderRooms();
  }
}

// ---------- live events ----------

function onRoomEvent(roomId, ev) {
  if (ev.type === "message") {
    const r = app.rooms.get(roomId);
    if (r) {
      r.last_seq = Math.max(r.last_seq || 0, ev.seq);
      if (ev.kind === "join") r.member_count = (r.member_count || 0) + 1;
      if (ev.kind === "leave") r.member_count = Math.max(0, (r.member_count || 1) - 1);
      r.last_message_at = ev.sent_at;
      const viewing = app.chat && app.chat.room.id === roomId && document.visibilityState === "visible" && app.chat.atBottom();
      const mine = ev.sender && ev.sender.id === app.me.id;
      if (r.member && !mine && !viewing && ev.kind !== "hidden") r.unread = (r.unread || 0) + 1;
      renderRooms();
    }
  }
  if (app.chat && app.chat.room.id === roomId) app.chat.onEvent(ev);
}

function onAppError(err) {
  if (err.code === "cooldown") {
    app.cooldownUntil = Date.now() + (err.retry_after_ms || 0);
    // "Find someone new" after an ended chat was refused: back to the start card.
    if (app.match.state === "ended") Object.assign(app.match, { state: "idle", roomId: null, partner: null });
    if (app.route.name === "random") renderRandom();
    return;
  }
  toast(err.code === "rate_limited" ? t("rate_limited") : t("error_generic", { message: errorText(err) }));
}

/** The server says this user is banned: everything stops, and the screen says
 *  until when and why, in the user's language. */
function showBanned(err, again = false) {
  if (app.banned && !again) return;
  app.banned = err;
  closeSearch();
  app.live?.stop();
  app.live = null;
  clearInterval(app.roomsTimer);
  app.chat?.destroy();
  app.chat = null;
  const d = err.detail || {};
  const until = d.until ? new Date(d.until) : null;
  clear(
    root,
    h(
      "main.entry",
      { "data-testid": "banned" },
      h(
        "div.entry-card",
        h("div.entry-top", h("h1.brand", logo(), t("app_name")), languageSelect(() => showBanned(err, true))),
        h("h2", t("banned_title")),
        h("p", { "data-testid": "banned-until" }, until ? t("banned_until", { when: until.toLocaleString(locale()) }) : t("banned_forever")),
        d.reason ? h("p", { "data-testid": "banned-reason" }, t("banned_reason", { reason: d.reason })) : null,
        h(
          "div.row",
          h("button.primary", { type: "button", "data-testid": "banned-retry", onclick: () => ((app.banned = null), boot()) }, t("banned_retry")),
          h("button.ghost", { type: "button", "data-testid": "banned-logout", onclick: () => logout() }, t("logout")),
        ),
      ),
    ),
  );
}

/** A SEND of ours was rejected (or, `retryable`, could not be confirmed). */
function onSendFailed(clientId, err, retryable) {
  app.chat?.failed(clientId, err, retryable);
}

function onUserEvent(ev) {
  if (ev.type === "direct") {
    // Someone opened a direct room with us: list it (and follow it) at once.
    if (ev.user) knowUser(ev.user);
    refreshRooms();
    return;
  }
  if (people.onEvent(ev)) {
    if (ev.type === "friend.request") {
      const who = ev.request.user?.display_name ?? "?";
      toast(t("friend_request_toast", { name: who }));
    } else if (ev.type === "friend.accepted" && ev.request.from === app.me.id) {
      toast(t("friend_accepted_toast", { name: ev.request.user?.display_name ?? "?" }));
    }
    return;
  }
  const m = app.match;
  switch (ev.type) {
    case "match.waiting":
      Object.assign(m, { state: "waiting", roomId: null, partner: null, reason: null, reported: false });
      break;
    case "match.found":
      Object.assign(m, { state: "matched", roomId: ev.room_id, partner: ev.partner, reason: null, reported: false });
      app.live.watch(ev.room_id, 0);
      if (app.route.name !== "random") location.hash = "#/random";
      break;
    case "match.ended":
      if (m.roomId === ev.room_id || m.state === "matched") {
        Object.assign(m, { state: "ended", roomId: ev.room_id, reason: ev.reason });
      }
      break;
    case "match.idle":
      if (m.state !== "ended") Object.assign(m, { state: "idle", roomId: null, partner: null });
      break;
    default:
      return;
  }
  if (app.route.name === "random") renderRandom();
}

// ---------- routing ----------

function route(next) {
  if (!app.me) return;
  const hash = location.hash || "#/";
  let r = next;
  if (!r) {
    const m = hash.match(/^#\/rooms\/(\d+)(?:\/at\/(\d+))?$/);
    r = m
      ? { name: "room", id: Number(m[1]), at: Number(m[2]) > 0 ? Number(m[2]) : undefined }
      : hash === "#/random"
        ? { name: "random" }
        : hash === "#/moderation"
          ? { name: "moderation" }
          : hash === "#/profile"
            ? { name: "profile" }
            : hash === "#/friends"
              ? { name: "friends" }
              : { name: "home" };
  }
  if (app.route.name === r.name && app.route.id === r.id && app.route.at === r.at && r.name !== "random") return;
  closeSearch();
  app.route = r;
  root.querySelector(".app")?.setAttribute("data-view", r.name);
  if (r.name !== "random" || (app.chat && app.chat.room.id !== app.match.roomId)) {
    // A public room looked at without joining is followed only while open.
    const was = app.chat?.room;
    if (was && !was.member && !app.rooms.get(was.id)?.member) app.live.unwatch(was.id);
    app.chat?.destroy();
    app.chat = null;
  }
  app.stopPage?.();
  app.stopPage = null;
  renderRooms();
  if (r.name === "room") openRoom(r.id, r.at);
  else if (r.name === "profile")
    renderProfileEditor(els.main, { me: app.me, toast, navigate: (hash) => (location.hash = hash), meChanged: () => renderMe(), moreCards: () => notificationsCard() });
  else if (r.name === "friends") app.stopPage = renderFriends(els.main, { me: app.me, toast, navigate: (hash) => (location.hash = hash), openDirect });
  else if (r.name === "random") renderRandom();
  else if (r.name === "moderation") renderModeration(els.main, { me: app.me, toast, navigate: (hash) => (location.hash = hash) });
  else clear(els.main, h("div.placeholder", h("p", t("pick_room"))));
}

function reopen(id) {
  app.chat?.destroy();
  app.chat = null;
  openRoom(id, app.route.name === "room" && app.route.id === id ? app.route.at : undefined);
}

async function openRoom(id, at) {
  clear(els.main, h("div.placeholder", h("p", "…")));
  let room = app.rooms.get(id);
  try {
    if (!room || room.member === undefined) {
      room = { ...(room || {}), ...(await Api.room(id)) };
      app.rooms.set(id, room);
    }
  } catch (e) {
    clear(els.main, h("div.placeholder", h("p", t("error_generic", { message: e.message }))));
    return;
  }
  if (app.route.name !== "room" || app.route.id !== id || app.route.at !== at) return;
  const chat = new ChatView(chatContext(), room, { anchorSeq: at ?? null });
  app.chat = chat;
  clear(els.main, chat.el);
  try {
    await chat.load();
  } catch (e) {
    toast(t("error_generic", { message: e.message }));
  }
}

function chatContext() {
  return {
    me: app.me,
    live: app.live,
    toast,
    navigate: (hash) => (location.hash = hash),
    roomChanged,
    roomLeft,
    markedRead,
    reopen,
    openSearch: (room, opener) => showSearch(room, opener),
    caughtUp,
  };
}

// ---------- search ----------

/** Search in `room` (widened on demand), or in all my rooms when `room` is null. */
function showSearch(room, opener) {
  openSearch({ openHit, roomLabel }, { room: room ? { id: room.id, name: roomLabel(room) } : null, opener });
}

/** Opens a search hit: its room, around the message. */
function openHit(roomId, seq) {
  const target = `#/rooms/${roomId}/at/${seq}`;
  if (location.hash !== target) {
    location.hash = target;
    return;
  }
  // The same hit again: open it afresh.
  app.route = { name: "none" };
  route();
}

/** A room's name as the sidebar shows it (a direct room: the other person). */
function roomLabel(room) {
  const r = app.rooms.get(room.id);
  if (r?.kind === "direct") return r.peer?.display_name ?? r.peer?.name ?? room.name ?? r.name;
  return room.name ?? r?.name ?? "";
}

/** The view of a search hit reached the live end: the address becomes the room's own. */
function caughtUp(id) {
  if (app.route.name !== "room" || app.route.id !== id || app.route.at === undefined) return;
  app.route = { name: "room", id, at: undefined };
  history.replaceState(null, "", `#/rooms/${id}`);
}

// ---------- random chat ----------

function renderRandom() {
  const m = app.match;
  if (m.state === "matched" || m.state === "ended") return renderMatchChat();
  app.chat?.destroy();
  app.chat = null;
  const waiting = m.state === "waiting";
  const interests = h("input", {
    id: "interests",
    value: app.matchPrefs.interests,
    placeholder: t("interests_placeholder"),
    maxlength: "200",
    disabled: waiting || undefined,
    "data-testid": "interests",
  });
  const langSel = h(
    "select",
    { id: "match-lang", disabled: waiting || undefined, "data-testid": "match-lang" },
    h("option", { value: "", selected: app.matchPrefs.lang === "" }, t("any_language")),
    LANGUAGES.map((l) => h("option", { value: l, selected: app.matchPrefs.lang === l }, t(`lang_${l}`))),
  );
  const coolLeft = app.cooldownUntil - Date.now();
  const cooling = coolLeft > 0 && !waiting;
  clearTimeout(app.cooldownTimer);
  if (cooling) app.cooldownTimer = setTimeout(() => app.route.name === "random" && app.match.state !== "matched" && renderRandom(), coolLeft + 50);
  const connect = () => {
    app.matchPrefs = { interests: interests.value, lang: langSel.value };
    if (!app.live.match("connect", prefsBody())) toast(t("error_network"));
  };
  clear(
    els.main,
    h(
      "section.random",
      { "data-testid": "random", "data-state": m.state },
      h("header.chat-header", h("button.back", { type: "button", "aria-label": t("back"), onclick: () => (location.hash = "#/") }, "‹"), h("div.titles", h("h2", t("random_title")))),
      h(
        "div.random-card",
        h("p", t("random_intro")),
        h("label", { for: "interests" }, t("interests")),
        interests,
        h("label", { for: "match-lang" }, t("chat_language")),
        langSel,
        cooling
          ? h(
              "p.match-notice.cooldown",
              { role: "status", "data-testid": "cooldown" },
              t("cooldown", { when: new Date(app.cooldownUntil).toLocaleTimeString(locale(), { hour: "numeric", minute: "2-digit" }) }),
            )
          : null,
        waiting
          ? h(
              "div.looking",
              { "data-testid": "looking" },
              h("span.spinner", { "aria-hidden": "true" }),
              h("div", h("strong", t("looking")), h("p.hint", t("looking_hint"))),
              h("button.ghost", { type: "button", "data-testid": "match-stop", onclick: () => app.live.match("disconnect") }, t("stop")),
            )
          : h("button.primary.wide", { type: "button", "data-testid": "match-connect", disabled: cooling || undefined, onclick: connect }, t("connect")),
      ),
    ),
  );
}

function renderMatchChat() {
  const m = app.match;
  const partnerName = m.partner ? m.partner.name : "?";
  const ended = m.state === "ended";
  const notice = ended
    ? h(
        "div.match-notice",
        { role: "status", "data-testid": "match-ended", dataset: { reason: m.reason } },
        t(`ended_${m.reason}`, { name: partnerName }),
      )
    : null;
  const reportForm = h("form.report", { hidden: true, "data-testid": "report-form" });
  const reason = h("input", { id: "report-reason", maxlength: "500", required: true, "data-testid": "report-reason" });
  reportForm.append(
    h("label", { for: "report-reason" }, t("report_reason")),
    reason,
    h("div.row", h("button.primary", { type: "submit" }, t("report_send")), h("button.ghost", { type: "button", onclick: () => (reportForm.hidden = true) }, t("cancel"))),
  );
  reportForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await Api.report(m.roomId, reason.value.trim());
      m.reported = true;
      if (m.state === "matched") app.live.match("disconnect");
      toast(t("reported"));
      reportForm.hidden = true;
    } catch (err) {
      toast(t("error_generic", { message: err.message }));
    }
  });
  const buttons = ended
    ? [h("button.primary", { type: "button", "data-testid": "match-new", onclick: () => app.live.match("connect", prefsBody()) }, t("find_new"))]
    : [
        h("button.primary", { type: "button", "data-testid": "match-next", onclick: () => app.live.match("next") }, t("next")),
        h("button.ghost", { type: "button", "data-testid": "match-disconnect", onclick: () => app.live.match("disconnect") }, t("disconnect")),
      ];
  const p = m.partner;
  m.friendKey = p ? friendKey(p) : "";
  if (p && p.id !== undefined && !p.guest) buttons.unshift(partnerFriendButton(p));
  if (!m.reported) {
    buttons.push(h("button.ghost.danger", { type: "button", "data-testid": "match-report", onclick: () => ((reportForm.hidden = false), reason.focus()) }, t("report")));
  }
  const header = h(
    "header.chat-header",
    h("button.back", { type: "button", "aria-label": t("back"), onclick: () => (location.hash = "#/") }, "‹"),
    h(
      "div.titles",
      h("div.title-line", h("h2", { "data-testid": "partner" }, partnerName), m.partner?.guest ? guestTag() : null),
      h("span.subtitle", t("matched_with", { name: partnerName })),
    ),
    h("div.actions", buttons),
  );
  if (app.chat && app.chat.room.id === m.roomId) {
    // Same conversation: swap the header and the notice, keep the history.
    app.chat.setReadOnly(ended);
    const section = els.main.querySelector("section.random-chat");
    if (section) {
      clear(section, header, reportForm, notice, app.chat.el);
      section.dataset.state = m.state;
      return;
    }
  }
  app.chat?.destroy();
  const room = { id: m.roomId, name: partnerName, kind: "random", visibility: "private", member: true, member_count: 2, last_seq: 0 };
  const chat = new ChatView(chatContext(), room, { header: h("div"), readOnly: ended });
  app.chat = chat;
  clear(els.main, h("section.random-chat", { "data-testid": "random-chat", "data-state": m.state }, header, reportForm, notice, chat.el));
  chat.load().catch((e) => toast(t("error_generic", { message: e.message })));
}

/** What the partner's friend button depends on. */
function friendKey(p) {
  return `${people.isFriend(p.id)}/${!!people.outgoingTo(p.id)}/${people.me?.guest}`;
}

/** "Add friend" for a registered random-chat partner (a guest is offered the upgrade first). */
function partnerFriendButton(p) {
  if (people.isFriend(p.id)) return h("span.badge", { "data-testid": "match-friends" }, t("friends_already"));
  if (people.outgoingTo(p.id)) return h("span.badge", { "data-testid": "match-requested" }, t("request_sent"));
  const btn = h(
    "button.ghost",
    {
      type: "button",
      "data-testid": "match-add-friend",
      onclick: async () => {
        btn.disabled = true;
        try {
          const req = await addFriend(p.id);
          if (req) toast(t(req.status === "accepted" ? "now_friends" : "request_sent"));
        } catch (e) {
          toast(t("error_generic", { message: errorText(e) }));
        }
        btn.disabled = false;
        if (app.route.name === "random") renderMatchChat();
      },
    },
    t("add_friend"),
  );
  return btn;
}

function prefsBody() {
  const list = app.matchPrefs.interests
    .split(/[,，、]/)
    .map((s) => s.trim())
    .filter(Boolean)
    .slice(0, 10);
  const body = {};
  if (list.length) body.interests = list;
  if (app.matchPrefs.lang) body.lang = app.matchPrefs.lang;
  return body;
}
