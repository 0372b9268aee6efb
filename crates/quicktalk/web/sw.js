// QuickTalk's service worker (contract §8), served by the binary at /sw.js so
// that its scope is the whole site. It does one thing: Web Push. It has no
// `fetch` handler, so it never sits between the page and the network and
// caches nothing.
//
// `push`: the server's decrypted payload is `{"room_id","seq","title","body"}`.
// Each room has one notification (tag `room-ID`): a newer message replaces the
// older one quietly (`renotify: false`) instead of stacking up. Nothing is shown
// while a focused, visible QuickTalk window already has that room open (the
// window is asked which room it shows). (The
// subscription is `userVisibleOnly`, so a browser may show its own generic
// notice when a push shows nothing; the server pushes only to users who have
// been away for a minute, so that is rare.)
//
// `notificationclick`: closes the notification and brings QuickTalk forward on
// that room: an open window (preferably one already showing the room) is
// focused and told to open it; with no window, a new one opens at
// `/#/rooms/ID`, the app's route for a room.

"use strict";

const ROOM_HASH = (id) => `#/rooms/${id}`;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

/** The push payload, or a neutral one when it is missing or not our JSON. */
function payload(event) {
  let data = null;
  try {
    data = event.data ? event.data.json() : null;
  } catch {
    data = null;
  }
  if (!data || typeof data !== "object") data = {};
  const roomId = Number.isInteger(data.room_id) ? data.room_id : Number.parseInt(data.room_id, 10);
  return {
    roomId: Number.isFinite(roomId) ? roomId : null,
    seq: Number.isFinite(data.seq) ? data.seq : null,
    title: typeof data.title === "string" && data.title ? data.title : "QuickTalk",
    body: typeof data.body === "string" ? data.body : "",
  };
}

/** How long a window has to say which room it shows. */
const ASK_MS = 500;

/** The room a window's URL names (`#/rooms/ID`, the app's route for a room). */
function roomInUrl(client) {
  try {
    const m = /^#\/rooms\/(\d+)$/.exec(new URL(client.url).hash);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * The room a window shows. The page itself is asked (a client's URL is not kept
 * up to date with the hash by every browser); a page that does not answer in
 * time (not signed in, or busy) is judged by its URL.
 */
function roomOf(client) {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(roomInUrl(client)), ASK_MS);
    channel.port1.onmessage = (e) => {
      clearTimeout(timer);
      const id = e.data && e.data.room_id;
      resolve(Number.isInteger(id) ? id : null);
    };
    client.postMessage({ type: "which-room" }, [channel.port2]);
  });
}

function sameOrigin(client) {
  try {
    return new URL(client.url).origin === self.location.origin;
  } catch {
    return false;
  }
}

async function windows() {
  const all = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  return all.filter(sameOrigin);
}

/** Shows the notification for one push, unless the room is already in front of the user. */
async function notify(p) {
  if (p.roomId !== null) {
    const inFront = (await windows()).filter((c) => c.focused && c.visibilityState === "visible");
    const shown = await Promise.all(inFront.map(roomOf));
    if (shown.includes(p.roomId)) return;
  }
  await self.registration.showNotification(p.title, {
    body: p.body,
    tag: p.roomId !== null ? `room-${p.roomId}` : "quicktalk",
    renotify: false,
    data: { room_id: p.roomId, seq: p.seq },
  });
}

self.addEventListener("push", (event) => {
  event.waitUntil(notify(payload(event)));
});

/**
 * Brings QuickTalk forward on room `roomId`. Returns what it did:
 * `"focused"` (an open window was told to open the room) or `"opened"` (a new window).
 */
async function openRoom(roomId) {
  const list = await windows();
  const shown = await Promise.all(list.map(roomOf));
  const target = list.find((c, i) => roomId !== null && shown[i] === roomId) || list.find((c) => c.focused) || list[0];
  if (target) {
    try {
      await target.focus();
    } catch {
      // Focusing needs the click's permission; the room still opens in that window.
    }
    target.postMessage({ type: "open-room", room_id: roomId });
    return "focused";
  }
  await self.clients.openWindow(roomId !== null ? `/${ROOM_HASH(roomId)}` : "/");
  return "opened";
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const roomId = Number.isInteger(data.room_id) ? data.room_id : null;
  const done = openRoom(roomId).catch(() => {});
  // A click made by a script (the browser tests dispatch one: a headless browser
  // cannot click a notification) may not extend the worker's life.
  if (event.isTrusted) event.waitUntil(done);
});
