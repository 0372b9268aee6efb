// Notifications (contract §8) on the page's side: the service worker
// (/sw.js, registered once signed in: registering asks nothing of the user),
// the opt-in card on the profile page (the browser's permission prompt appears
// only when the user presses "Enable notifications", never on page load), the
// per-room level selector in the room header, the room a clicked notification
// asks for, and the unread count in the tab title. Activity (focus) reporting
// lives in live.js; app.js feeds it.

import { Api } from "./api.js";
import { h } from "./dom.js";
import { t, errorText } from "./i18n.js";

/** How long pushManager.subscribe may take before the UI gives up on the push service. */
export const SUBSCRIBE_TIMEOUT_MS = 15000;
export const LEVELS = ["all", "mentions", "none"];

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window && window.isSecureContext;
}

let registration = null;
let openRoomHandler = null;

let shownRoom = () => null;

/**
 * Registers the service worker and listens to it: a clicked notification sends
 * `{type: "open-room", room_id}`, and `onOpenRoom(id)` shows that room; before
 * showing a notification the worker asks `{type: "which-room"}` (answered on the
 * message's port with `{room_id}` from `currentRoom()`, the room on screen or null).
 */
export function initNotifications(onOpenRoom, currentRoom) {
  openRoomHandler = onOpenRoom;
  shownRoom = currentRoom;
  if (!("serviceWorker" in navigator) || registration) return;
  registration = navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => null);
  navigator.serviceWorker.addEventListener("message", (e) => {
    const m = e.data || {};
    if (m.type === "which-room") {
      e.ports[0]?.postMessage({ room_id: shownRoom() ?? null });
    } else if (m.type === "open-room") {
      window.focus();
      if (Number.isInteger(m.room_id)) openRoomHandler?.(m.room_id);
    }
  });
  // Keep the server's copy of this browser's subscription current (it may have
  // been removed after the push service refused it, or made by another login).
  resync();
}

async function readyRegistration() {
  if (!registration) return null;
  const reg = await registration;
  return reg ? navigator.serviceWorker.ready : null;
}

/** Once a day per subscription is enough (the server limits how often a user subscribes). */
const SYNCED = "qt.push.synced";
const syncMark = (sub) => `${sub.endpoint} ${new Date().toISOString().slice(0, 10)}`;

async function resync() {
  if (!pushSupported() || Notification.permission !== "granted") return;
  try {
    const reg = await readyRegistration();
    const sub = reg && (await reg.pushManager.getSubscription());
    if (!sub || localStorage.getItem(SYNCED) === syncMark(sub)) return;
    await Api.pushSubscribe(subscriptionBody(sub));
    localStorage.setItem(SYNCED, syncMark(sub));
  } catch {
    /* best effort; the card shows the state when opened */
  }
}

/** What the server stores: the endpoint and the two keys (`expirationTime` left out). */
function subscriptionBody(sub) {
  const j = sub.toJSON();
  return { endpoint: j.endpoint, keys: { p256dh: j.keys?.p256dh, auth: j.keys?.auth } };
}

/** A failure explained to the user: `code` picks the sentence (push_err_*). */
class PushError extends Error {
  constructor(code, cause) {
    super(code);
    this.code = code;
    this.cause = cause;
  }
}

function applicationServerKey(b64url) {
  const s = b64url.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(s + "=".repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function sameKey(sub, key) {
  const have = sub.options?.applicationServerKey;
  if (!have) return true;
  const a = new Uint8Array(have);
  return a.length === key.length && a.every((x, i) => x === key[i]);
}

function timeout(promise, ms) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new PushError("timeout")), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Permission (asked now: this runs from the user's click), subscription, and the server's copy. */
async function enablePush() {
  if (!pushSupported()) throw new PushError("unsupported");
  // First thing in the click handler, while the click still counts as the user's gesture.
  const permission = await Notification.requestPermission();
  if (permission === "denied") throw new PushError("denied");
  if (permission !== "granted") throw new PushError("dismissed");
  let key;
  try {
    key = applicationServerKey((await Api.pushKey()).public_key);
  } catch (e) {
    throw new PushError(e.status === 404 ? "server_off" : "server", e);
  }
  const reg = await readyRegistration();
  if (!reg) throw new PushError("unsupported");
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub, key)) {
    // Made for another server key: it could not carry this server's pushes.
    await sub.unsubscribe().catch(() => {});
    sub = null;
  }
  if (!sub) {
    try {
      sub = await timeout(reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }), SUBSCRIBE_TIMEOUT_MS);
    } catch (e) {
      if (e instanceof PushError) throw e;
      // Chromium answers AbortError when it has no push service to register with
      // (a private window, or no connection to it); NotAllowedError when blocked.
      throw new PushError(e.name === "NotAllowedError" && Notification.permission !== "granted" ? "denied" : "unavailable", e);
    }
  }
  try {
    await Api.pushSubscribe(subscriptionBody(sub));
    localStorage.setItem(SYNCED, syncMark(sub));
  } catch (e) {
    throw new PushError("server", e);
  }
}

async function disablePush() {
  const reg = await readyRegistration();
  const sub = reg && (await reg.pushManager.getSubscription());
  if (!sub) return;
  try {
    await Api.pushUnsubscribe(sub.endpoint);
  } catch (e) {
    if (e.status !== 404) throw new PushError("server", e);
  }
  await sub.unsubscribe().catch(() => {});
  localStorage.removeItem(SYNCED);
}

/**
 * Logging out: this browser stops getting the user's pushes. `token` is the
 * session's, taken before it is forgotten. Best effort, nothing waits for it.
 */
export async function forgetPush(token) {
  try {
    if (!pushSupported() || !token) return;
    const reg = await readyRegistration();
    const sub = reg && (await reg.pushManager.getSubscription());
    if (!sub) return;
    await fetch("/api/v1/push/subscriptions", {
      method: "DELETE",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ endpoint: sub.endpoint }),
    }).catch(() => {});
    await sub.unsubscribe();
    localStorage.removeItem(SYNCED);
  } catch {
    /* nothing to undo */
  }
}

/** The "Notifications" card of the profile page. */
export function notificationsCard() {
  const state = h("p.push-state", { role: "status", "data-testid": "push-state" });
  const err = h("p.form-error", { role: "alert", "data-testid": "push-error" });
  const button = h("button", { type: "button", "data-testid": "push-toggle" });
  const card = h("div.card", { "data-testid": "push-card" }, h("h3", t("push_title")), state, err, h("div.row", button));
  let on = false;
  const show = (s) => {
    state.dataset.state = s;
    state.textContent = t(`push_state_${s}`);
    on = s === "on";
    button.hidden = s === "unsupported";
    button.className = on ? "ghost" : "primary";
    button.textContent = t(on ? "push_disable" : "push_enable");
  };
  const refresh = async () => {
    if (!pushSupported()) return show("unsupported");
    if (Notification.permission === "denied") return show("blocked");
    try {
      const reg = Notification.permission === "granted" ? await readyRegistration() : null;
      const sub = reg && (await reg.pushManager.getSubscription());
      show(sub ? "on" : "off");
    } catch {
      show("off");
    }
  };
  button.addEventListener("click", async () => {
    err.textContent = "";
    delete err.dataset.code;
    button.disabled = true;
    const turningOn = !on;
    if (turningOn) show("working");
    try {
      if (turningOn) await enablePush();
      else await disablePush();
      await refresh();
    } catch (e) {
      const code = e instanceof PushError ? e.code : "server";
      err.dataset.code = code;
      const why = code === "server" && e.cause ? errorText(e.cause) : "";
      err.textContent = t(`push_err_${code}`, { reason: why });
      await refresh();
    }
    button.disabled = false;
  });
  refresh();
  return card;
}

/**
 * The room's notification level (All / Mentions only / Off) for the room
 * header: it reads the server's setting and writes every change back.
 */
export function levelSelect(room, toast) {
  const sel = h(
    "select.notify-level",
    { "data-testid": "notify-level", "aria-label": t("notify_level"), title: t("notify_level"), disabled: true },
    LEVELS.map((l) => h("option", { value: l }, t(`notify_${l}`))),
  );
  let current = null;
  Api.notificationLevel(room.id)
    .then((res) => {
      current = res.level;
      sel.value = current;
      sel.disabled = false;
      sel.dataset.loaded = "true";
    })
    .catch(() => {
      // This server sends no notifications: nothing to choose.
      sel.hidden = true;
    });
  sel.addEventListener("change", async () => {
    const want = sel.value;
    sel.disabled = true;
    try {
      current = (await Api.setNotificationLevel(room.id, want)).level;
      sel.value = current;
      toast(t("notify_level_saved", { level: t(`notify_${current}`) }));
    } catch (e) {
      sel.value = current;
      toast(t("error_generic", { message: errorText(e) }));
    }
    sel.disabled = false;
  });
  return h("label.notify-control", h("span.sr", t("notify_level")), sel);
}

/** The tab title: `(N) QuickTalk` while N messages are unread, else just the name. */
export function setTitleBadge(n) {
  const name = t("app_name");
  const want = n > 0 ? `(${n > 999 ? "999+" : n}) ${name}` : name;
  if (document.title !== want) document.title = want;
}
