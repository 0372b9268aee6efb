// Issue 13 (people) in English and Korean, in two browsers against the real
// server: the profile editor saves a name, a status message and the DM policy,
// explains a refused name and a non-image avatar in the user's language, and an
// avatar upload shows its progress and then appears (header, editor, and beside
// the user's messages for someone else, who cannot message them since they
// take direct messages from friends only); a friend request reaches the other
// browser live, is accepted, and both see each other in the friends list with
// an online dot (a cancelled request leaves the target's list live, a declined
// one is gone for both); a direct room started from the friends page carries messages
// both ways and is listed with the peer's name; blocking from the profile card
// turns the blocked user's messages into placeholders (history and live, seqs
// without gaps) and unblocking brings them back; the upgrade form turns a guest
// into a registered user (new token, the old one refused, the socket live again,
// still in their room), who can then add a friend; and "Add friend" in a random
// chat offers a guest the upgrade form first, then sends the request.

import assert from "node:assert/strict";
import { test } from "node:test";
import { useServerAndBrowser, openPage, asGuest, signUp, say, screenshot, unlabelledControls, stompFrames, noHorizontalOverflow, PHONE, DESKTOP } from "./harness.mjs";

const env = useServerAndBrowser();

const LANGS = [
  {
    locale: "en-US",
    saved: "Profile saved.",
    badName: "the display name must be 1–64 characters",
    notImage: "this file is not an image",
    hidden: "Message from a blocked user",
    requestToast: (name) => `${name} sent you a friend request.`,
    requestSent: "Request sent",
    online: "online",
    upgradeTitle: "Create an account",
    guestBadge: "guest",
    directSub: "Direct message",
    taken: "this username is taken; choose another",
    noSuchUser: "there is no user with that username",
    notAllowed: "this person cannot be reached",
  },
  {
    locale: "ko-KR",
    saved: "프로필을 저장했습니다.",
    badName: "표시 이름은 1–64자여야 합니다",
    notImage: "이미지 파일이 아닙니다",
    hidden: "차단한 사용자의 메시지",
    requestToast: (name) => `${name} 님이 친구 요청을 보냈습니다.`,
    requestSent: "요청 보냄",
    online: "접속 중",
    upgradeTitle: "계정 만들기",
    guestBadge: "게스트",
    directSub: "1:1 메시지",
    taken: "이미 사용 중인 사용자 이름입니다. 다른 이름을 고르세요",
    noSuchUser: "그 사용자 이름을 가진 사용자가 없습니다",
    notAllowed: "이 사용자에게 연락할 수 없습니다",
  },
];

/** Refused requests the tests make on purpose are logged by the browser. */
const expected = (x) => !/status of (400|401|403|404|409|413|422)/.test(x);

const tokenOf = (page) => page.evaluate(() => localStorage.getItem("qt.token"));
const meOf = async (page) => env.server.api("GET", "/me", undefined, await tokenOf(page));

async function open(locale, viewport = DESKTOP) {
  const p = await openPage(env.browser, env.server, { locale, viewport });
  p.page.on("dialog", (d) => d.accept());
  return p;
}

async function closeAll(...pages) {
  for (const p of pages) {
    assert.deepEqual(p.problems.filter(expected), []);
    await p.context.close();
  }
}

/** A real JPEG from the page's canvas encoder; noise makes it big enough to watch it upload. */
async function canvasJpeg(page, w, h) {
  const bytes = await page.evaluate(
    async ([w, h]) => {
      const c = document.createElement("canvas");
      c.width = w;
      c.height = h;
      const g = c.getContext("2d");
      const img = g.createImageData(w, h);
      let x = 12345;
      for (let i = 0; i < img.data.length; i += 4) {
        x = (x * 1103515245 + 12345) >>> 0;
        img.data[i] = x & 255;
        img.data[i + 1] = (x >>> 8) & 255;
        img.data[i + 2] = (i / 4 / w) % 256;
        img.data[i + 3] = 255;
      }
      g.putImageData(img, 0, 0);
      const blob = await new Promise((r) => c.toBlob(r, "image/jpeg", 0.92));
      return [...new Uint8Array(await blob.arrayBuffer())];
    },
    [w, h],
  );
  return Buffer.from(bytes);
}

/** Records every value the avatar progress bar shows, from now on. */
async function recordProgress(page) {
  await page.evaluate(() => {
    window.__progress = [];
    const seen = (el) => el.matches?.("[data-testid=avatar-progress]") && window.__progress.push(Number(el.getAttribute("aria-valuenow")));
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "attributes") seen(r.target);
        for (const n of r.addedNodes || []) if (n.querySelectorAll) [n, ...n.querySelectorAll("[data-testid=avatar-progress]")].forEach(seen);
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["aria-valuenow"] });
  });
}

async function throttleUploads(page, bytesPerSecond) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond });
  return cdp;
}

/** A public room made by A's UI and joined by B's UI; both have it open. */
async function sharedRoom(a, b, name) {
  await a.page.getByTestId("new-room").click();
  await a.page.getByTestId("room-name").fill(name);
  await a.page.getByTestId("create-submit").click();
  await a.page.getByTestId("composer").waitFor();
  const roomId = Number(await a.page.getByTestId("chat").getAttribute("data-room"));
  await b.page.evaluate((id) => (location.hash = `#/rooms/${id}`), roomId);
  await b.page.getByTestId("join").click();
  await b.page.getByTestId("composer").waitFor();
  return roomId;
}

/** A sends B a friend request from the friends page (by username); B accepts it live. */
async function befriend(a, b, bUsername, bName, L) {
  await a.page.getByTestId("nav-friends").click();
  await a.page.getByTestId("add-by-username").fill(bUsername);
  await a.page.getByTestId("add-by-username-submit").click();
  await a.page.locator("[data-testid=outgoing]", { hasText: bName }).waitFor();
  await b.page.locator(".toast", { hasText: L.requestToast(await a.page.locator("a.me .me-name").textContent()) }).waitFor();
  await b.page.locator("[data-testid=friends-badge]:not([hidden])", { hasText: "1" }).waitFor();
  await b.page.getByTestId("nav-friends").click();
  await b.page.locator("[data-testid=incoming]").getByTestId("accept").click();
}

for (const [i, L] of LANGS.entries()) {
  test(`${L.locale}: profile editor: name, status, DM policy, refusals explained, avatar upload with progress`, async () => {
    const a = await open(L.locale);
    const b = await open(L.locale);
    await signUp(a.page, `painter${i}`, undefined, `Painter ${i}`);
    await signUp(b.page, `viewer${i}`, undefined, `Viewer ${i}`);

    await a.page.getByTestId("me").click();
    await a.page.getByTestId("profile-page").waitFor();
    // A name the server refuses (blank after trimming) is explained in the user's language.
    await a.page.getByTestId("pf-display-name").fill("   ");
    await a.page.getByTestId("profile-save").click();
    await a.page.locator("[data-testid=profile-error]", { hasText: L.badName }).waitFor();

    await a.page.getByTestId("pf-display-name").fill(`화가 Painter ${i}`);
    await a.page.getByTestId("pf-status").fill(`painting today ${i}`);
    await a.page.getByTestId("pf-dm-policy").selectOption("friends");
    await a.page.getByTestId("profile-save").click();
    await a.page.locator("[data-testid=profile-saved]", { hasText: L.saved }).waitFor();
    assert.equal(await a.page.locator("a.me .me-name").textContent(), `화가 Painter ${i}`);
    const saved = await meOf(a.page);
    assert.equal(saved.display_name, `화가 Painter ${i}`);
    assert.equal(saved.status_message, `painting today ${i}`);
    assert.equal(saved.dm_policy, "friends");
    assert.equal(saved.avatar_url, undefined);
    // No avatar yet: the initial stands in.
    assert.equal(await a.page.getByTestId("my-avatar").getByTestId("avatar").textContent(), "화");

    // Not an image: refused when set as the avatar, in the user's language.
    await a.page.getByTestId("avatar-input").setInputFiles({ name: `notes-${i}.txt`, mimeType: "text/plain", buffer: Buffer.from("just words, not a picture\n".repeat(20)) });
    await a.page.locator("[data-testid=avatar-error]", { hasText: L.notImage }).waitFor();
    assert.equal((await meOf(a.page)).avatar_url, undefined);

    // A photo, uploaded slowly enough to watch the bar move.
    const jpeg = await canvasJpeg(a.page, 640, 640);
    assert.ok(jpeg.length > 150_000, `fixture size ${jpeg.length}`);
    await recordProgress(a.page);
    const cdp = await throttleUploads(a.page, 120_000);
    await a.page.getByTestId("avatar-input").setInputFiles({ name: `me-${i}.jpg`, mimeType: "image/jpeg", buffer: jpeg });
    await a.page.getByTestId("avatar-progress").waitFor();
    await a.page.waitForFunction(() => window.__progress.some((v) => v > 0 && v < 100));
    await screenshot(a.page, `people-avatar-progress-${L.locale}`);
    await a.page.locator("[data-testid=my-avatar] [data-testid=avatar][data-has-image=true] img").waitFor();
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const values = await a.page.evaluate(() => window.__progress);
    assert.ok(values.filter((v) => v > 0 && v < 100).length >= 2, `intermediate progress values: ${values.join(",")}`);
    assert.equal(await a.page.getByTestId("avatar-progress").count(), 0, "the bar goes away once done");
    assert.match((await meOf(a.page)).avatar_url, /^\/api\/v1\/avatars\//);
    // The header shows it too (the small size), through a blob: URL.
    const src = await a.page.locator("a.me [data-testid=avatar] img").getAttribute("src");
    assert.match(src, /^blob:/);
    assert.deepEqual(await unlabelledControls(a.page), []);
    await screenshot(a.page, `people-profile-${L.locale}`);

    // Someone else sees the avatar beside A's message and the status on A's card.
    await sharedRoom(a, b, `Gallery ${i}`);
    await say(a.page, `look at my photo ${i}`);
    const msg = b.page.locator("li.msg.theirs", { hasText: `look at my photo ${i}` });
    await msg.locator("[data-testid=author] [data-testid=avatar][data-has-image=true] img").waitFor();
    await msg.getByTestId("author").click();
    const card = b.page.getByTestId("profile-card");
    await card.getByTestId("profile-status").filter({ hasText: `painting today ${i}` }).waitFor();
    await card.locator("[data-testid=avatar][data-has-image=true]").waitFor();
    // A takes direct messages from friends only: B is told so, in B's language.
    await card.getByTestId("profile-message").click();
    await b.page.locator(".toast", { hasText: L.notAllowed }).waitFor();
    assert.equal((await env.server.api("GET", "/rooms?kind=direct", undefined, await tokenOf(b.page))).rooms.length, 0);
    await b.page.keyboard.press("Escape");
    // B's own message shows B's initial (B has no avatar) in A's view.
    await say(b.page, `nice ${i}`);
    const fromB = a.page.locator("li.msg.theirs", { hasText: `nice ${i}` });
    assert.equal(await fromB.locator("[data-testid=author] [data-testid=avatar]").textContent(), "V");

    // Remove the photo: back to the initial.
    await a.page.getByTestId("me").click();
    await a.page.getByTestId("avatar-remove").click();
    await a.page.locator("[data-testid=my-avatar] [data-testid=avatar]:not([data-has-image])").waitFor();
    assert.equal((await meOf(a.page)).avatar_url, undefined);
    await closeAll(a, b);
  });

  test(`${L.locale}: a friend request arrives live, is accepted; both list each other online; a DM carries messages both ways`, async () => {
    const a = await open(L.locale);
    const b = await open(L.locale);
    await signUp(a.page, `asker${i}`, undefined, `Asker ${i}`);
    await signUp(b.page, `answerer${i}`, undefined, `답변자 ${i}`);
    await befriend(a, b, `answerer${i}`, `답변자 ${i}`, L);

    // Both friends lists show the other, online; A's updates without a reload.
    const inA = a.page.locator("[data-testid=friends-list] [data-testid=friend]", { hasText: `답변자 ${i}` });
    const inB = b.page.locator("[data-testid=friends-list] [data-testid=friend]", { hasText: `Asker ${i}` });
    await inA.waitFor();
    await inB.waitFor();
    assert.equal(await inA.getAttribute("data-online"), "true");
    assert.equal(await inB.getAttribute("data-online"), "true");
    await inA.locator("[data-testid=online-dot].on").waitFor();
    assert.equal(await inA.locator(".sr").textContent(), L.online);
    assert.equal(await a.page.locator("[data-testid=outgoing]").count(), 0);
    assert.equal(await b.page.locator("[data-testid=incoming]").count(), 0);
    await b.page.locator("[data-testid=friends-badge][hidden]").waitFor({ state: "attached" });
    await screenshot(b.page, `people-friends-${L.locale}`);
    assert.deepEqual(await unlabelledControls(b.page), []);

    // A starts a direct room from the friends page and writes.
    await inA.getByTestId("friend-message").click();
    await a.page.getByTestId("composer").waitFor();
    await a.page.getByTestId("direct-peer").filter({ hasText: `답변자 ${i}` }).waitFor();
    assert.equal(await a.page.getByTestId("room-title").textContent(), `답변자 ${i}`);
    await say(a.page, `hi friend ${i}`);
    await a.page.locator("li.msg.mine[data-seq]", { hasText: `hi friend ${i}` }).waitFor();
    const dmA = a.page.locator("[data-testid=room-item]", { has: a.page.getByTestId("direct-badge") });
    await dmA.getByTestId("direct-name").filter({ hasText: `답변자 ${i}` }).waitFor();
    assert.equal(await dmA.locator(".room-line.sub span").first().textContent(), L.directSub);

    // B opens the same room from its friends page: the message is there; the reply reaches A live.
    await inB.getByTestId("friend-message").click();
    await b.page.locator("li.msg.theirs", { hasText: `hi friend ${i}` }).waitFor();
    assert.equal(await b.page.getByTestId("room-title").textContent(), `Asker ${i}`);
    const roomA = await a.page.getByTestId("chat").getAttribute("data-room");
    assert.equal(await b.page.getByTestId("chat").getAttribute("data-room"), roomA, "one direct room for the pair");
    await say(b.page, `반가워요 ${i}`);
    await a.page.locator("li.msg.theirs", { hasText: `반가워요 ${i}` }).waitFor();
    await screenshot(a.page, `people-direct-${L.locale}`);

    // Unfriend: gone from both lists (B's live).
    await a.page.getByTestId("nav-friends").click();
    await a.page.locator("[data-testid=friend]", { hasText: `답변자 ${i}` }).getByTestId("unfriend").click();
    await a.page.locator("[data-testid=friend]").waitFor({ state: "detached" });
    await b.page.getByTestId("nav-friends").click();
    await b.page.locator("[data-testid=friends-list] [data-testid=friend]").waitFor({ state: "detached" });
    await closeAll(a, b);
  });

  test(`${L.locale}: a cancelled request disappears live for the target; a declined one is gone for both`, async () => {
    const a = await open(L.locale);
    const b = await open(L.locale, PHONE);
    await signUp(a.page, `hopeful${i}`, undefined, `Hopeful ${i}`);
    await signUp(b.page, `choosy${i}`, undefined, `Choosy ${i}`);
    await b.page.getByTestId("nav-friends").click();
    await b.page.getByTestId("friends-page").waitFor();

    await a.page.getByTestId("nav-friends").click();
    await a.page.getByTestId("add-by-username").fill(`choosy${i}`);
    await a.page.getByTestId("add-by-username-submit").click();
    // B's open friends page shows it without a reload.
    const incoming = b.page.locator("[data-testid=incoming]", { hasText: `Hopeful ${i}` });
    await incoming.waitFor();
    // (On a phone the sidebar with the badge is out of view, but the count is there.)
    await b.page.locator("[data-testid=friends-badge]:not([hidden])", { hasText: "1" }).waitFor({ state: "attached" });
    assert.ok(await noHorizontalOverflow(b.page), "the 390 px friends page scrolls sideways");
    await screenshot(b.page, `people-request-phone-${L.locale}`);
    await a.page.locator("[data-testid=outgoing]", { hasText: `Choosy ${i}` }).getByTestId("cancel-request").click();
    await a.page.locator("[data-testid=outgoing]").waitFor({ state: "detached" });
    await incoming.waitFor({ state: "detached" });
    await b.page.locator("[data-testid=friends-badge][hidden]").waitFor({ state: "attached" });

    // Asked again, declined: no request left on either side, and no friendship.
    await a.page.getByTestId("add-by-username").fill(`choosy${i}`);
    await a.page.getByTestId("add-by-username-submit").click();
    await incoming.getByTestId("decline").click();
    await incoming.waitFor({ state: "detached" });
    const tokA = await tokenOf(a.page);
    const reqs = await env.server.api("GET", "/friends/requests", undefined, tokA);
    assert.deepEqual([reqs.incoming.length, reqs.outgoing.length], [0, 0]);
    assert.deepEqual((await env.server.api("GET", "/friends", undefined, tokA)).friends, []);
    assert.equal(await b.page.locator("[data-testid=friends-list] [data-testid=friend]").count(), 0);
    // An unknown username is explained in the user's language.
    await a.page.getByTestId("add-by-username").fill(`nobody_here_${i}`);
    await a.page.getByTestId("add-by-username-submit").click();
    await a.page.locator("[data-testid=add-friend-error]", { hasText: L.noSuchUser }).waitFor();
    await closeAll(a, b);
  });

  test(`${L.locale}: block from the profile card hides their messages (history and live, no seq gaps); unblock shows them again`, async () => {
    const a = await open(L.locale);
    const b = await open(L.locale);
    await signUp(a.page, `blocker${i}`, undefined, `Blocker ${i}`);
    await signUp(b.page, `noisy${i}`, undefined, `Noisy ${i}`);
    await sharedRoom(a, b, `Commons ${i}`);
    await say(b.page, `before the block ${i}`);
    const before = a.page.locator("li.msg.theirs", { hasText: `before the block ${i}` });
    await before.waitFor();

    await before.getByTestId("author").click();
    const card = a.page.getByTestId("profile-card");
    await card.getByTestId("profile-block").click();
    // The history is reloaded: B's message is now a placeholder, in A's language.
    await a.page.locator("[data-testid=hidden-message]", { hasText: L.hidden }).first().waitFor();
    assert.equal(await a.page.locator("li.msg", { hasText: `before the block ${i}` }).count(), 0);
    const hiddenBefore = await a.page.locator("[data-testid=hidden-message]").count();
    await say(b.page, `after the block ${i}`);
    await b.page.locator("li.msg.mine[data-seq]", { hasText: `after the block ${i}` }).waitFor();
    await say(a.page, `can anyone hear me ${i}`);
    await a.page.locator("li.msg.mine[data-seq]", { hasText: `can anyone hear me ${i}` }).waitFor();
    assert.equal(await a.page.locator("[data-testid=hidden-message]").count(), hiddenBefore + 1);
    assert.equal(await a.page.getByText(`after the block ${i}`).count(), 0);
    const seqs = await a.page.$$eval("[data-testid=messages] li[data-seq]", (els) => els.map((e) => Number(e.dataset.seq)));
    for (let k = 1; k < seqs.length; k++) assert.equal(seqs[k], seqs[k - 1] + 1, `seqs without gaps: ${seqs}`);
    // The server has the block.
    const blocks = await env.server.api("GET", "/blocks", undefined, await tokenOf(a.page));
    assert.deepEqual(blocks.blocks.map((u) => u.username), [`noisy${i}`]);
    await screenshot(a.page, `people-hidden-${L.locale}`);

    // B still sees everything (blocking is one-way in shared rooms).
    await b.page.locator("li.msg.theirs", { hasText: `can anyone hear me ${i}` }).waitFor();

    // Unblock from the card (opened from the members panel): the texts come back.
    await a.page.getByTestId("members-toggle").click();
    const member = a.page.locator("[data-testid=member]", { hasText: `Noisy ${i}` });
    await member.click();
    await a.page.getByTestId("profile-card").getByTestId("profile-blocked").waitFor();
    await a.page.getByTestId("profile-card").getByTestId("profile-unblock").click();
    await a.page.locator("li.msg.theirs", { hasText: `after the block ${i}` }).waitFor();
    await a.page.locator("li.msg.theirs", { hasText: `before the block ${i}` }).waitFor();
    assert.equal(await a.page.locator("[data-testid=hidden-message]").count(), 0);
    await closeAll(a, b);
  });

  test(`${L.locale}: the upgrade form turns a guest into a registered user, who can then add a friend`, async () => {
    const g = await open(L.locale);
    const f = await open(L.locale);
    await signUp(f.page, `welcomer${i}`, undefined, `Welcomer ${i}`);
    await asGuest(g.page, `손님 ${i}`);
    const guestMe = await meOf(g.page);
    assert.equal(guestMe.guest, true);
    const oldToken = await tokenOf(g.page);
    const roomId = await sharedRoom(f, g, `Lobby ${i}`);

    // A guest's friends page says why not, and points at the upgrade.
    await g.page.getByTestId("nav-friends").click();
    await g.page.getByTestId("friends-guest").waitFor();
    await g.page.getByTestId("friends-upgrade").click();
    await g.page.getByTestId("upgrade-card").waitFor();
    assert.equal(await g.page.locator("[data-testid=upgrade-card] h3").textContent(), L.upgradeTitle);
    assert.equal(await g.page.locator("a.me .badge").textContent(), L.guestBadge);

    // A taken username is explained; then it works.
    g.allow(/status of 409/);
    await g.page.getByTestId("upgrade-username").fill(`welcomer${i}`);
    await g.page.getByTestId("upgrade-password").fill("a long enough password");
    await g.page.getByTestId("upgrade-submit").click();
    await g.page.locator("[data-testid=upgrade-error]", { hasText: L.taken }).waitFor();
    // From here on, the STOMP CONNECT frames the page sends are recorded.
    const connects = [];
    g.page.on("websocket", (ws) =>
      ws.on("framesent", (f) => connects.push(...stompFrames(f.payload).filter((x) => x.command === "CONNECT").map((x) => x.headers.Authorization))),
    );
    await g.page.getByTestId("upgrade-username").fill(`former_guest${i}`);
    await g.page.getByTestId("upgrade-submit").click();
    await g.page.locator("[data-testid=profile-page] .profile-who", { hasText: `@former_guest${i}` }).waitFor();
    assert.equal(await g.page.locator("a.me .badge").count(), 0);
    assert.equal(await g.page.getByTestId("upgrade-card").count(), 0);

    // Same user, a new token; the old one is refused.
    const newToken = await tokenOf(g.page);
    assert.notEqual(newToken, oldToken);
    const me = await meOf(g.page);
    assert.equal(me.id, guestMe.id);
    assert.equal(me.guest, false);
    assert.equal(me.username, `former_guest${i}`);
    await assert.rejects(env.server.api("GET", "/me", undefined, oldToken), /401/);

    // The socket connected again with the new token, and the room is still theirs.
    for (let k = 0; k < 50 && !connects.includes(`Bearer ${newToken}`); k++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(connects, [`Bearer ${newToken}`]);
    await g.page.locator("[data-testid=status][data-status=live]").waitFor();
    await g.page.evaluate((id) => (location.hash = `#/rooms/${id}`), roomId);
    await say(g.page, `registered now ${i}`);
    await f.page.locator("li.msg.theirs", { hasText: `registered now ${i}` }).waitFor();
    // A reload keeps the session (the stored token is the new one).
    await g.page.reload();
    await g.page.locator("[data-testid=status][data-status=live]").waitFor();

    // Now "Add friend" works: from the welcomer's card in the room.
    await say(f.page, `welcome ${i}`);
    const welcome = g.page.locator("li.msg.theirs", { hasText: `welcome ${i}` });
    await welcome.getByTestId("author").click();
    await g.page.getByTestId("profile-card").getByTestId("profile-add-friend").click();
    await g.page.getByTestId("profile-card").getByTestId("profile-requested").filter({ hasText: L.requestSent }).waitFor();
    await f.page.locator(".toast", { hasText: L.requestToast(`손님 ${i}`) }).waitFor();
    const reqs = await env.server.api("GET", "/friends/requests", undefined, await tokenOf(f.page));
    assert.deepEqual(reqs.incoming.map((r) => r.from), [me.id]);
    await closeAll(g, f);
  });

  test(`${L.locale}: "Add friend" in a random chat: a guest upgrades first, then the request is sent`, async () => {
    const r = await open(L.locale);
    const g = await open(L.locale);
    await signUp(r.page, `roamer${i}`, undefined, `Roamer ${i}`);
    await asGuest(g.page, `Wanderer ${i}`);
    await r.page.getByTestId("nav-random").click();
    await r.page.getByTestId("match-connect").click();
    await r.page.getByTestId("looking").waitFor();
    await g.page.getByTestId("nav-random").click();
    await g.page.getByTestId("match-connect").click();
    await g.page.locator("[data-testid=random-chat][data-state=matched]").waitFor();
    await r.page.locator("[data-testid=random-chat][data-state=matched]").waitFor();
    // The guest partner gets no button on the registered side (guests cannot be friends).
    assert.equal(await r.page.getByTestId("match-add-friend").count(), 0);

    await g.page.getByTestId("match-add-friend").click();
    const dialog = g.page.getByTestId("upgrade-dialog");
    await dialog.waitFor();
    assert.equal(await dialog.locator("h3").textContent(), L.upgradeTitle);
    await screenshot(g.page, `people-upgrade-dialog-${L.locale}`);
    assert.deepEqual(await unlabelledControls(g.page), []);
    await dialog.getByTestId("upgrade-username").fill(`wanderer${i}`);
    await dialog.getByTestId("upgrade-password").fill("wandering far and wide");
    await dialog.getByTestId("upgrade-submit").click();
    await dialog.waitFor({ state: "detached" });
    await g.page.locator("[data-testid=match-requested]", { hasText: L.requestSent }).waitFor();
    await r.page.locator(".toast", { hasText: L.requestToast(`Wanderer ${i}`) }).waitFor();
    await r.page.locator("[data-testid=friends-badge]:not([hidden])", { hasText: "1" }).waitFor();

    // The chat goes on after the upgrade (the socket reconnected with the new token).
    await say(g.page, `still here ${i}`);
    await r.page.locator("li.msg.theirs", { hasText: `still here ${i}` }).waitFor();

    // The registered side accepts from the friends page.
    await r.page.getByTestId("nav-friends").click();
    await r.page.locator("[data-testid=incoming]", { hasText: `Wanderer ${i}` }).getByTestId("accept").click();
    await r.page.locator("[data-testid=friends-list] [data-testid=friend]", { hasText: `Wanderer ${i}` }).waitFor();
    const friends = await env.server.api("GET", "/friends", undefined, await tokenOf(g.page));
    assert.deepEqual(friends.friends.map((x) => x.display_name), [`Roamer ${i}`]);
    await closeAll(r, g);
  });
}
