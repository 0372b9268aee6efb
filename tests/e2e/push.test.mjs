// Push notifications (contract §8) in the web UI, in English and Korean, in
// Chromium against the real server:
// (a) nothing asks for the notification permission on page load (the prompt
//     comes only from the "Enable notifications" button, and a refusal is
//     explained in the user's language);
// (b) the service worker registers at scope `/` from /sw.js, served as
//     JavaScript under the same strict CSP as the page;
// (c) opting in: with the permission granted, Chromium's own pushManager.subscribe
//     is tried for real (a test context is off the record, so Chromium refuses at
//     once; a normal profile cannot reach the browser maker's push servers from
//     here, so it never answers) and the UI explains the failure; with a stand-in
//     subscription the UI sends the server exactly the subscription's endpoint and
//     keys, made for the server's key (201), and "Turn off" or logging out deletes it;
//     end to end, with the test as the push service: no push while the page is
//     in front, and once it is not the server's encrypted push, decrypted as a
//     browser would, becomes the room's notification;
// (d) a push delivered to the service worker through the DevTools protocol shows
//     one notification per room (title, body, tag, data), a newer one replacing
//     it, and none for the room a focused window already shows;
// (e) a notification's click (dispatched inside the worker: a headless browser
//     cannot click one) closes it and opens its room in the open window;
// (f) the per-room level (All / Mentions only / Off) shows the server's default,
//     persists across a reload and is what the REST API says;
// (g) the tab title counts another user's unread messages, also in the open
//     room while the page is hidden, and clears when the rooms are read;
// (h) the page reports activity on `/app/activity`: focused after CONNECT, then
//     false on a real focus loss (another page in front) and while hidden, true again.
// What a headless test cannot do (a real push service, a real notification
// click, a real new window from a click) is said where it would be.

import assert from "node:assert/strict";
import { createECDH, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { useServerAndBrowser, openPage, signUp, stompFrames, CHROMIUM, DESKTOP } from "./harness.mjs";

// `http://` endpoints (the test's own push receiver) and a short idle time, so
// that "away" takes a second, not a minute.
const env = useServerAndBrowser(["--push-allow-http", "--push-idle-ms", "1000", "--push-delay-ms", "100", "--push-repeat-ms", "0"]);

const LANGS = [
  {
    locale: "en-US",
    lang: "en",
    enable: "Enable notifications",
    disable: "Turn off notifications",
    stateOff: "Get a notification for new messages while you are away from QuickTalk. Your browser will ask for permission.",
    stateOn: "Notifications are on in this browser.",
    denied: "Notifications are blocked for this site. Allow them in your browser's site settings, then try again.",
    unavailable: /^Your browser's push service is not available/,
    timeout: "Your browser's push service did not answer. Check your connection and try again.",
    levels: ["All messages", "Mentions only", "Off"],
    room: "Lobby",
    body: "hello @there",
    sender: "Sam",
    away: "are you there?",
  },
  {
    locale: "ko-KR",
    lang: "ko",
    enable: "알림 켜기",
    disable: "알림 끄기",
    stateOff: "QuickTalk을 보고 있지 않을 때 새 메시지 알림을 받으세요. 브라우저가 권한을 물어봅니다.",
    stateOn: "이 브라우저에서 알림이 켜져 있습니다.",
    denied: "이 사이트의 알림이 차단되어 있습니다. 브라우저의 사이트 설정에서 허용한 뒤 다시 시도하세요.",
    unavailable: /^브라우저의 푸시 서비스를 사용할 수 없습니다/,
    timeout: "브라우저의 푸시 서비스가 응답하지 않습니다. 연결을 확인하고 다시 시도하세요.",
    levels: ["모든 메시지", "멘션만", "끄기"],
    room: "휴게실",
    body: "안녕하세요 @누구",
    sender: "민수",
    away: "거기 있어요?",
  },
];

let n = 0;
const unique = (base) => `${base}${++n}${Date.now() % 100000}`;

/** Counts permission prompts and subscribe calls from the first script on. */
function countAsks() {
  window.__asks = 0;
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...a) => {
    window.__asks += 1;
    return ask(...a);
  };
  window.__subscribes = 0;
  const sub = PushManager.prototype.subscribe;
  PushManager.prototype.subscribe = function (...a) {
    window.__subscribes += 1;
    return sub.apply(this, a);
  };
}

async function open(l, { grant = false, init = [] } = {}) {
  const p = await openPage(env.browser, env.server, {
    locale: l.locale,
    setup: async (context) => {
      if (grant) await context.grantPermissions(["notifications"], { origin: env.server.url });
      await context.addInitScript(countAsks);
      for (const [fn, arg] of init) await context.addInitScript(fn, arg);
    },
  });
  return p;
}

async function done(...pages) {
  for (const p of pages) {
    assert.deepEqual(p.problems, []);
    await p.context.close();
  }
}

const tokenOf = (page) => page.evaluate(() => localStorage.getItem("qt.token"));
const api = (method, p, body, token) => env.server.api(method, p, body, token);

async function room(token, name) {
  return api("POST", "/rooms", { name, visibility: "public" }, token);
}

async function goto(page, hash) {
  await page.evaluate((h) => (location.hash = h), hash);
}

/** The page's service worker registration, once active. */
async function registration(page) {
  return page.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    return { scope: reg.scope, script: reg.active?.scriptURL };
  });
}

async function notifications(page) {
  return page.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    return (await reg.getNotifications()).map((x) => ({ title: x.title, body: x.body, tag: x.tag, data: x.data }));
  });
}

/** Delivers `payload` to the page's service worker as a push message (DevTools protocol). */
async function pusher(page) {
  const cdp = await page.context().newCDPSession(page);
  const regs = new Map();
  cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => {
    for (const r of e.registrations) if (!r.isDeleted) regs.set(r.scopeURL, r.registrationId);
  });
  await cdp.send("ServiceWorker.enable");
  await registration(page);
  const scope = env.server.url + "/";
  for (let i = 0; i < 50 && !regs.has(scope); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(regs.has(scope), `no registration for ${scope}: ${[...regs.keys()]}`);
  return (payload) =>
    cdp.send("ServiceWorker.deliverPushMessage", { origin: env.server.url, registrationId: regs.get(scope), data: JSON.stringify(payload) });
}

/**
 * The notifications tagged `tag` (matching `pred`), once shown. `again()`, if
 * given, delivers the push once more after 3 s without one: on a loaded machine
 * a push delivered through the DevTools protocol is now and then never shown
 * (seen with three test runs at once on two cores, about one delivery in
 * thirty; the repeated delivery arrived each time; the cause is not known).
 */
async function waitNotification(page, tag, pred = () => true, again = null) {
  const until = Date.now() + 8000;
  let retried = !again;
  const start = Date.now();
  while (Date.now() < until) {
    const found = (await notifications(page)).filter((x) => x.tag === tag && pred(x));
    if (found.length) return found;
    if (!retried && Date.now() - start > 3000) {
      retried = true;
      console.log(`push for ${tag} not shown after 3 s: delivered again`);
      await again();
    }
    await page.waitForTimeout(100);
  }
  assert.fail(`no notification tagged ${tag}: ${JSON.stringify(await notifications(page))}`);
}

/** A browser's subscription keys (what Chromium would make) for the stand-in below. */
function browserKeys(endpoint) {
  const ecdh = createECDH("prime256v1");
  const p256dh = ecdh.generateKeys();
  const auth = randomBytes(16);
  return { ecdh, endpoint, p256dh: p256dh.toString("base64url"), auth: auth.toString("base64url"), authBytes: auth, publicBytes: p256dh };
}

/**
 * In place of the browser's push service (there is none reachable here):
 * PushManager answers with the subscription `f` (runs in the page).
 */
function standInPushService(f) {
  let current = null;
  PushManager.prototype.subscribe = async function (opts) {
    window.__subscribes += 1;
    window.__subscribeOptions = { userVisibleOnly: opts.userVisibleOnly, key: Array.from(new Uint8Array(opts.applicationServerKey)) };
    const key = opts.applicationServerKey;
    current = {
      endpoint: f.endpoint,
      options: { userVisibleOnly: true, applicationServerKey: key.buffer ?? key },
      toJSON: () => ({ endpoint: f.endpoint, expirationTime: null, keys: { p256dh: f.p256dh, auth: f.auth } }),
      unsubscribe: async () => ((current = null), true),
    };
    return current;
  };
  PushManager.prototype.getSubscription = async () => current;
}

/** RFC 8291 (aes128gcm, one record): what the browser would decrypt. */
function decryptPush(body, keys) {
  const salt = body.subarray(0, 16);
  const idlen = body[20];
  const serverKey = body.subarray(21, 21 + idlen);
  const ciphertext = body.subarray(21 + idlen);
  const secret = keys.ecdh.computeSecret(serverKey);
  const info = Buffer.concat([Buffer.from("WebPush: info\0"), keys.publicBytes, serverKey]);
  const ikm = Buffer.from(hkdfSync("sha256", secret, keys.authBytes, info, 32));
  const cek = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const d = createDecipheriv("aes-128-gcm", cek, nonce);
  d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const padded = Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]);
  let end = padded.length - 1;
  while (end > 0 && padded[end] === 0) end--;
  assert.equal(padded[end], 2, "last record delimiter");
  return padded.subarray(0, end).toString("utf8");
}

/** The test's push service: records what the server POSTs to it. */
async function pushReceiver() {
  const got = [];
  const waiting = [];
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      got.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(201).end();
      for (const w of waiting.splice(0)) w();
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    got,
    async next(ms) {
      if (!got.length) await new Promise((r) => (waiting.push(r), setTimeout(r, ms)));
      return got.shift() ?? null;
    },
    close: () => new Promise((r) => srv.close(r)),
  };
}

for (const l of LANGS) {
  test(`${l.lang}: no permission prompt on page load; the prompt comes from the button and a refusal is explained`, async () => {
    const a = await open(l);
    await signUp(a.page, unique("pa"));
    const { id } = await room(await tokenOf(a.page), l.room);
    await goto(a.page, `#/rooms/${id}`);
    await a.page.getByTestId("notify-level").waitFor();
    await goto(a.page, "#/profile");
    await a.page.locator("[data-testid=push-state][data-state=off]").waitFor();
    await a.page.reload();
    await a.page.locator("[data-testid=push-state][data-state=off]").waitFor();
    assert.equal(await a.page.getByTestId("push-state").textContent(), l.stateOff);
    // The service worker is registered meanwhile: that asks nothing.
    await registration(a.page);
    await a.page.waitForTimeout(300);
    assert.deepEqual(await a.page.evaluate(() => [window.__asks, window.__subscribes, Notification.permission]), [0, 0, "default"]);

    // The button asks; headless Chromium answers "denied" (no one to ask), which is explained.
    const toggle = a.page.getByTestId("push-toggle");
    assert.equal(await toggle.textContent(), l.enable);
    await toggle.click();
    await a.page.locator("[data-testid=push-error][data-code=denied]").waitFor();
    assert.equal(await a.page.getByTestId("push-error").textContent(), l.denied);
    assert.equal(await a.page.locator("[data-testid=push-state]").getAttribute("data-state"), "blocked");
    assert.deepEqual(await a.page.evaluate(() => [window.__asks, window.__subscribes]), [1, 0]);
    await done(a);
  });

  test(`${l.lang}: the service worker registers at scope / from /sw.js under the strict CSP`, async () => {
    const a = await open(l);
    await signUp(a.page, unique("pb"));
    const reg = await registration(a.page);
    assert.equal(reg.scope, env.server.url + "/");
    assert.equal(reg.script, env.server.url + "/sw.js");
    assert.ok(a.context.serviceWorkers().some((w) => w.url() === env.server.url + "/sw.js"));
    const page = await fetch(env.server.url + "/");
    const sw = await fetch(env.server.url + "/sw.js");
    assert.equal(sw.status, 200);
    assert.match(sw.headers.get("content-type"), /^text\/javascript/);
    const csp = page.headers.get("content-security-policy");
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /worker-src 'self'/);
    assert.equal(sw.headers.get("content-security-policy"), csp);
    assert.equal(sw.headers.get("x-content-type-options"), "nosniff");
    // Only at the root, where its scope covers the app.
    assert.equal((await fetch(env.server.url + "/assets/sw.js")).status, 404);
    // The problems check (no CSP violation, nothing fetched elsewhere) runs in done().
    await done(a);
  });

  test(`${l.lang}: opting in with Chromium's own push service fails in a test context, and the UI says why`, async () => {
    const a = await open(l, { grant: true });
    // Chromium's own explanation, logged when a context off the record subscribes.
    a.allow(/Push API in incognito/);
    const posts = [];
    a.page.on("request", (r) => r.url().endsWith("/api/v1/push/subscriptions") && posts.push(r.method()));
    await signUp(a.page, unique("pc"));
    await goto(a.page, "#/profile");
    await a.page.locator("[data-testid=push-state][data-state=off]").waitFor();
    await a.page.getByTestId("push-toggle").click();
    await a.page.locator("[data-testid=push-error][data-code=unavailable]").waitFor();
    assert.match(await a.page.getByTestId("push-error").textContent(), l.unavailable);
    assert.equal(await a.page.locator("[data-testid=push-state]").getAttribute("data-state"), "off");
    assert.deepEqual(await a.page.evaluate(() => [window.__asks, window.__subscribes]), [1, 1]);
    assert.deepEqual(posts, []);
    await done(a);
  });

  test(`${l.lang}: opting in with a normal profile: Chromium's push service cannot be reached from here, and the UI gives up with an explanation`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "qt-push-profile-"));
    const context = await chromium.launchPersistentContext(dir, {
      executablePath: CHROMIUM,
      headless: true,
      locale: l.locale,
      viewport: DESKTOP,
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
    try {
      await context.grantPermissions(["notifications"], { origin: env.server.url });
      const page = context.pages()[0] || (await context.newPage());
      const problems = [];
      page.on("pageerror", (e) => problems.push(e.message));
      const posts = [];
      page.on("response", (r) => r.url().endsWith("/api/v1/push/subscriptions") && posts.push(r.status()));
      // The page's clock is ours, so the UI's give-up delay need not be waited for.
      await page.clock.install();
      await page.goto(env.server.url + "/");
      await signUp(page, unique("pp"));
      await goto(page, "#/profile");
      await page.locator("[data-testid=push-state][data-state=off]").waitFor();
      await page.getByTestId("push-toggle").click();
      await page.locator("[data-testid=push-state][data-state=working]").waitFor();
      await page.waitForTimeout(2000);
      await page.clock.fastForward(16000);
      await page.locator("[data-testid=push-state]:not([data-state=working])").waitFor();
      const state = await page.getByTestId("push-state").getAttribute("data-state");
      if (state === "on") {
        // A machine that reaches the push service: the server got the subscription.
        assert.deepEqual(posts, [201]);
      } else {
        const code = await page.getByTestId("push-error").getAttribute("data-code");
        assert.ok(code === "timeout" || code === "unavailable", `error ${code}`);
        const text = await page.getByTestId("push-error").textContent();
        if (code === "timeout") assert.equal(text, l.timeout);
        else assert.match(text, l.unavailable);
        assert.deepEqual(posts, []);
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${l.lang}: opting in sends the server the subscription made for its key; turning off or logging out deletes it`, async () => {
    const keys = browserKeys(`http://127.0.0.1:9/push/${unique("sub")}`);
    const fake = { endpoint: keys.endpoint, p256dh: keys.p256dh, auth: keys.auth };
    const a = await open(l, { grant: true, init: [[standInPushService, fake]] });
    const calls = [];
    a.page.on("response", async (r) => {
      if (!r.url().endsWith("/api/v1/push/subscriptions")) return;
      calls.push({ method: r.request().method(), status: r.status(), body: r.request().postDataJSON() });
    });
    await signUp(a.page, unique("pd"));
    await goto(a.page, "#/profile");
    const toggle = a.page.getByTestId("push-toggle");
    await a.page.locator("[data-testid=push-state][data-state=off]").waitFor();
    await toggle.click();
    await a.page.locator("[data-testid=push-state][data-state=on]").waitFor();
    assert.equal(await a.page.getByTestId("push-state").textContent(), l.stateOn);
    assert.equal(await toggle.textContent(), l.disable);
    assert.equal(await a.page.getByTestId("push-error").textContent(), "");
    const { public_key } = await api("GET", "/push/key", undefined, await tokenOf(a.page));
    const opts = await a.page.evaluate(() => window.__subscribeOptions);
    assert.equal(opts.userVisibleOnly, true);
    assert.equal(Buffer.from(opts.key).toString("base64url"), public_key.replace(/=+$/, ""));
    assert.equal(opts.key.length, 65);
    assert.deepEqual(calls, [{ method: "POST", status: 201, body: { endpoint: fake.endpoint, keys: { p256dh: fake.p256dh, auth: fake.auth } } }]);

    await toggle.click();
    await a.page.locator("[data-testid=push-state][data-state=off]").waitFor();
    assert.equal(calls.length, 2);
    assert.equal(calls[1].method, "DELETE");
    assert.ok([200, 204].includes(calls[1].status), `DELETE answered ${calls[1].status}`);
    assert.deepEqual(calls[1].body, { endpoint: fake.endpoint });
    assert.deepEqual(await a.page.evaluate(() => [window.__asks, window.__subscribes]), [1, 1]);

    // On again, then logging out: this browser stops getting this user's pushes.
    await toggle.click();
    await a.page.locator("[data-testid=push-state][data-state=on]").waitFor();
    const gone = a.page.waitForResponse((r) => r.url().endsWith("/api/v1/push/subscriptions") && r.request().method() === "DELETE");
    await a.page.getByTestId("logout").click();
    await a.page.getByTestId("entry").waitFor();
    assert.ok([200, 204].includes((await gone).status()));
    assert.deepEqual(calls.slice(2).map((c) => c.method), ["POST", "DELETE"]);
    assert.deepEqual(calls[3].body, { endpoint: fake.endpoint });
    await done(a);
  });

  test(`${l.lang}: a push shows one notification per room, replaced by newer ones, none for the room in front`, async () => {
    const a = await open(l, { grant: true });
    await signUp(a.page, unique("pe"));
    const token = await tokenOf(a.page);
    const r1 = await room(token, l.room);
    const r2 = await room(token, `${l.room} 2`);
    const push = await pusher(a.page);
    const p1 = { room_id: r1.id, seq: 3, title: l.room, body: l.body };
    await push(p1);
    const [first] = await waitNotification(a.page, `room-${r1.id}`, undefined, () => push(p1));
    assert.deepEqual(first, { title: l.room, body: l.body, tag: `room-${r1.id}`, data: { room_id: r1.id, seq: 3 } });
    // A newer message of the same room replaces it.
    const p2 = { room_id: r1.id, seq: 4, title: l.room, body: `${l.body} 2` };
    await push(p2);
    await waitNotification(a.page, `room-${r1.id}`, (x) => x.data.seq === 4, () => push(p2));
    const mine = (await notifications(a.page)).filter((x) => x.tag === `room-${r1.id}`);
    assert.deepEqual(mine.map((x) => x.body), [`${l.body} 2`]);

    // The page (focused, visible) shows room 2: a push for it shows nothing, one for room 1 still does.
    await goto(a.page, `#/rooms/${r2.id}`);
    await a.page.locator(`[data-testid=chat][data-room="${r2.id}"] [data-testid=room-title]`, { hasText: `${l.room} 2` }).waitFor();
    await push({ room_id: r2.id, seq: 1, title: `${l.room} 2`, body: "x" });
    const p3 = { room_id: r1.id, seq: 5, title: l.room, body: `${l.body} 3` };
    await push(p3);
    await waitNotification(a.page, `room-${r1.id}`, (x) => x.data.seq === 5, () => push(p3));
    await a.page.waitForTimeout(300);
    assert.deepEqual((await notifications(a.page)).map((x) => x.tag), [`room-${r1.id}`]);
    await done(a);
  });

  test(`${l.lang}: clicking a notification opens its room in the open window`, async () => {
    const a = await open(l, { grant: true });
    await signUp(a.page, unique("pf"));
    const r = await room(await tokenOf(a.page), l.room);
    const push = await pusher(a.page);
    await goto(a.page, "#/");
    const p = { room_id: r.id, seq: 2, title: l.room, body: l.body };
    await push(p);
    await waitNotification(a.page, `room-${r.id}`, undefined, () => push(p));
    // A headless browser cannot click a notification: the click is dispatched in
    // the worker, to its real `notificationclick` listener, with the real notification.
    const worker = a.context.serviceWorkers().find((w) => w.url() === env.server.url + "/sw.js");
    assert.ok(worker, "service worker not seen");
    await worker.evaluate(async (tag) => {
      const [shown] = await self.registration.getNotifications({ tag });
      self.dispatchEvent(new NotificationEvent("notificationclick", { notification: shown }));
    }, `room-${r.id}`);
    await a.page.waitForFunction((h) => location.hash === h, `#/rooms/${r.id}`);
    await a.page.locator(`[data-testid=chat][data-room="${r.id}"] [data-testid=room-title]`, { hasText: l.room }).waitFor();
    assert.deepEqual(await notifications(a.page), []);
    await done(a);
  });

  test(`${l.lang}: end to end: no push while the page is in front; once it is not, the server's encrypted push becomes the room's notification`, async () => {
    const receiver = await pushReceiver();
    try {
      const keys = browserKeys(`${receiver.url}/push/${unique("e2e")}`);
      const a = await open(l, { grant: true, init: [[standInPushService, { endpoint: keys.endpoint, p256dh: keys.p256dh, auth: keys.auth }]] });
      await signUp(a.page, unique("pn"));
      const token = await tokenOf(a.page);
      await goto(a.page, "#/profile");
      await a.page.locator("[data-testid=push-state][data-state=off]").waitFor();
      await a.page.getByTestId("push-toggle").click();
      await a.page.locator("[data-testid=push-state][data-state=on]").waitFor();
      const b = await api("POST", "/auth/signup", { username: unique("po"), password: "correct horse battery", display_name: l.sender });
      const dm = await api("POST", "/direct", { user_id: (await api("GET", "/me", undefined, token)).id }, b.token);
      const push = await pusher(a.page);
      await goto(a.page, "#/");

      // In front (focused and visible): active, so no push even after the idle time.
      await new Promise((r) => setTimeout(r, 1500));
      await api("POST", `/rooms/${dm.id}/messages`, { text: "first" }, b.token);
      assert.equal(await receiver.next(2500), null, "pushed while the page was in front");

      // Another page comes to the front: the page says so, and after the idle time the server pushes.
      const cdp = await a.context.newCDPSession(a.page);
      await cdp.send("Emulation.setFocusEmulationEnabled", { enabled: false });
      const other = await a.context.newPage();
      await other.goto("about:blank");
      await new Promise((r) => setTimeout(r, 1500));
      const sent = await api("POST", `/rooms/${dm.id}/messages`, { text: l.away }, b.token);
      // The pushes that come now (the server may also push the earlier unread
      // message of this room once the user is away): decrypted as a browser would.
      const payloads = [];
      for (let got = await receiver.next(10000); got; got = await receiver.next(payloads.some((p) => p.seq === sent.seq) ? 0 : 10000)) {
        assert.equal(got.headers["content-encoding"], "aes128gcm");
        assert.match(got.headers.authorization, /^vapid t=.+, k=.+/);
        assert.ok(Number(got.headers.ttl) > 0);
        assert.ok(got.headers.topic, "no Topic: pushes of one room would not collapse");
        payloads.push(JSON.parse(decryptPush(got.body, keys)));
        if (payloads.some((p) => p.seq === sent.seq)) break;
      }
      const payload = payloads.find((p) => p.seq === sent.seq);
      assert.ok(payload, `no push for the message sent while away: ${JSON.stringify(payloads)}`);
      assert.equal(payload.room_id, dm.id);
      assert.equal(payload.title, l.sender);
      assert.equal(payload.body, l.away);

      // What the browser's push service would hand the worker: the decrypted payload.
      await push(payload);
      const [shown] = await waitNotification(a.page, `room-${dm.id}`, undefined, () => push(payload));
      assert.equal(shown.title, l.sender);
      assert.equal(shown.body, payload.body);
      assert.deepEqual(shown.data, { room_id: dm.id, seq: payload.seq });
      await other.close();
      await cdp.send("Emulation.setFocusEmulationEnabled", { enabled: true });
      await done(a);
    } finally {
      await receiver.close();
    }
  });

  test(`${l.lang}: the room's notification level shows the default, persists across a reload, and is what the server has`, async () => {
    const a = await open(l);
    const username = unique("pg");
    await signUp(a.page, username);
    const token = await tokenOf(a.page);
    const r = await room(token, l.room);
    await goto(a.page, `#/rooms/${r.id}`);
    const sel = a.page.locator("[data-testid=notify-level][data-loaded=true]");
    await sel.waitFor();
    assert.deepEqual(await sel.locator("option").allTextContents(), l.levels);
    assert.equal(await sel.inputValue(), "mentions");
    await sel.selectOption("none");
    await a.page.waitForFunction(() => !document.querySelector("[data-testid=notify-level]").disabled);
    assert.deepEqual(await api("GET", `/rooms/${r.id}/notifications`, undefined, token), { level: "none" });
    await a.page.reload();
    await a.page.locator("[data-testid=notify-level][data-loaded=true]").waitFor();
    assert.equal(await a.page.locator("[data-testid=notify-level]").inputValue(), "none");
    await a.page.locator("[data-testid=notify-level]").selectOption("all");
    await a.page.waitForFunction(() => !document.querySelector("[data-testid=notify-level]").disabled);
    assert.deepEqual(await api("GET", `/rooms/${r.id}/notifications`, undefined, token), { level: "all" });

    // A direct room's default is "all", as the server says.
    const other = await api("POST", "/auth/signup", { username: unique("ph"), password: "correct horse battery" });
    const dm = await api("POST", "/direct", { user_id: other.user.id }, token);
    await goto(a.page, `#/rooms/${dm.id}`);
    await a.page.locator(`[data-testid=chat][data-room="${dm.id}"] [data-testid=notify-level][data-loaded=true]`).waitFor();
    assert.equal(await a.page.locator("[data-testid=notify-level]").inputValue(), "all");
    await done(a);
  });

  test(`${l.lang}: the tab title counts unread messages from someone else and clears when read`, async () => {
    const a = await open(l);
    await signUp(a.page, unique("pi"));
    const token = await tokenOf(a.page);
    const r1 = await room(token, l.room);
    const r2 = await room(token, `${l.room} 2`);
    const bName = unique("pj");
    const b = await api("POST", "/auth/signup", { username: bName, password: "correct horse battery" });
    await api("POST", `/rooms/${r1.id}/join`, undefined, b.token);
    await api("POST", `/rooms/${r2.id}/join`, undefined, b.token);
    // Listed after a reload; opening both reads their join notices.
    await a.page.reload();
    await a.page.locator(`[data-testid=room-item][data-room-id="${r2.id}"]`).waitFor();
    for (const r of [r1, r2]) {
      await goto(a.page, `#/rooms/${r.id}`);
      await a.page.locator(`[data-testid=chat][data-room="${r.id}"] li[data-kind=join]`, { hasText: bName }).waitFor();
    }
    await goto(a.page, "#/");
    await a.page.waitForFunction(() => document.title === "QuickTalk");
    await api("POST", `/rooms/${r1.id}/messages`, { text: "one" }, b.token);
    await api("POST", `/rooms/${r1.id}/messages`, { text: "two" }, b.token);
    await api("POST", `/rooms/${r2.id}/messages`, { text: "three" }, b.token);
    await a.page.waitForFunction(() => document.title === "(3) QuickTalk");
    // My own message counts for nothing.
    await api("POST", `/rooms/${r1.id}/messages`, { text: "mine" }, token);
    await a.page.waitForTimeout(300);
    assert.equal(await a.page.title(), "(3) QuickTalk");
    // Opening a room reads it (the read cursor moves): only the other one still counts.
    const readOf = (r) => a.page.waitForResponse((res) => res.url().endsWith(`/api/v1/rooms/${r.id}/read`) && res.ok());
    let read = readOf(r1);
    await goto(a.page, `#/rooms/${r1.id}`);
    await read;
    await a.page.waitForFunction(() => document.title === "(1) QuickTalk");
    read = readOf(r2);
    await goto(a.page, `#/rooms/${r2.id}`);
    await read;
    await a.page.waitForFunction(() => document.title === "QuickTalk");

    // The page goes to the background (another tab in front): the open room counts too.
    await a.page.evaluate(() => {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await api("POST", `/rooms/${r2.id}/messages`, { text: "four" }, b.token);
    await a.page.waitForFunction(() => document.title === "(1) QuickTalk");
    read = readOf(r2);
    await a.page.evaluate(() => {
      delete document.visibilityState;
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await read;
    await a.page.waitForFunction(() => document.title === "QuickTalk");
    // Read on the server too: a reload shows nothing unread.
    await a.page.reload();
    await a.page.locator(`[data-testid=room-item][data-room-id="${r2.id}"]`).waitFor();
    await a.page.waitForTimeout(300);
    assert.equal(await a.page.title(), "QuickTalk");
    await done(a);
  });

  test(`${l.lang}: the page reports focus on /app/activity after CONNECT and on every change`, async () => {
    const a = await open(l);
    const frames = [];
    a.page.on("websocket", (ws) => ws.on("framesent", (f) => frames.push(...stompFrames(f.payload))));
    await signUp(a.page, unique("pk"));
    const activity = () => frames.filter((f) => f.command === "SEND" && f.headers.destination === "/app/activity").map((f) => JSON.parse(f.body).focused);
    const waitActivity = async (want) => {
      for (let i = 0; i < 50 && JSON.stringify(activity()) !== JSON.stringify(want); i++) await a.page.waitForTimeout(100);
      assert.deepEqual(activity(), want);
    };
    await waitActivity([true]);
    const connect = frames.findIndex((f) => f.command === "CONNECT" || f.command === "STOMP");
    const first = frames.findIndex((f) => f.headers.destination === "/app/activity");
    assert.ok(connect >= 0 && connect < first);

    // A real focus loss: another page comes to the front.
    const cdp = await a.context.newCDPSession(a.page);
    await cdp.send("Emulation.setFocusEmulationEnabled", { enabled: false });
    const other = await a.context.newPage();
    await other.goto("about:blank");
    await waitActivity([true, false]);
    await a.page.bringToFront();
    await a.page.evaluate(() => window.focus());
    await waitActivity([true, false, true]);
    await other.close();
    await cdp.send("Emulation.setFocusEmulationEnabled", { enabled: true });

    // Hidden (a headless page cannot really be hidden: the state is stood in for).
    await a.page.evaluate(() => {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await waitActivity([true, false, true, false]);
    await a.page.evaluate(() => {
      delete document.visibilityState;
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await waitActivity([true, false, true, false, true]);
    // Every frame is valid JSON with a content type, and nothing is sent twice for no change.
    for (const f of frames.filter((f) => f.headers.destination === "/app/activity")) assert.equal(f.headers["content-type"], "application/json");
    await done(a);
  });
}

