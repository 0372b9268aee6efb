// Rooms in two browsers: sign up, create a room, a second user joins from the
// list, messages both ways with join notices, unread badges and online dots,
// reload keeps the session and the history; scroll-back loads older pages.

import assert from "node:assert/strict";
import { test } from "node:test";
import { useServerAndBrowser, openPage, signUp, say, shownMessages, screenshot, PHONE, noHorizontalOverflow, unlabelledControls } from "./harness.mjs";

const env = useServerAndBrowser();

test("sign up, create a room, a second user joins, both chat, reload keeps history", async () => {
  const a = await openPage(env.browser, env.server);
  await signUp(a.page, "jiwoo", "correct horse battery", "지우");
  await a.page.getByTestId("new-room").click();
  await a.page.getByTestId("room-name").fill("Lobby");
  await a.page.getByTestId("create-submit").click();
  await a.page.locator("[data-testid=room-title]", { hasText: "Lobby" }).waitFor();
  await say(a.page, "first!");
  await a.page.locator("li.msg.mine[data-seq]", { hasText: "first!" }).waitFor();

  const b = await openPage(env.browser, env.server);
  await signUp(b.page, "sam_k", "another good password", "Sam");
  // The public room is listed; B opens it, reads, joins.
  await b.page.locator("[data-testid=room-item]", { hasText: "Lobby" }).click();
  await b.page.locator("li.msg", { hasText: "first!" }).waitFor();
  await b.page.getByTestId("join").click();
  await b.page.getByTestId("composer").waitFor();
  await a.page.locator("li.notice[data-kind=join]", { hasText: "Sam" }).waitFor();
  await a.page.locator("[data-testid=room-item]", { hasText: "2 members" }).waitFor();

  await say(b.page, "hi 지우, Sam here");
  await a.page.locator("li.msg.theirs", { hasText: "hi 지우, Sam here" }).waitFor();
  await say(a.page, "welcome <b>Sam</b>");
  const welcome = b.page.locator("li.msg.theirs", { hasText: "welcome <b>Sam</b>" });
  await welcome.waitFor();
  // Text stays text: no element was made from it.
  assert.equal(await welcome.locator("b").count(), 0);

  // Typing shows on the other side.
  await b.page.getByTestId("composer").pressSequentially("typing…", { delay: 20 });
  await a.page.locator("[data-testid=typing]", { hasText: "Sam" }).waitFor();

  // Members panel: both online.
  await a.page.getByTestId("members-toggle").click();
  await a.page.locator("[data-testid=members] li[data-online=true]", { hasText: "Sam" }).waitFor();
  await a.page.locator("[data-testid=members] li[data-online=true]", { hasText: "지우" }).waitFor();
  await screenshot(a.page, "room-desktop");
  assert.deepEqual(await unlabelledControls(a.page), []);

  // Unread: A moves to a second room; B's messages in Lobby count up.
  await a.page.getByTestId("new-room").click();
  await a.page.getByTestId("room-name").fill("Quiet corner");
  await a.page.getByTestId("vis-private").check();
  await a.page.getByTestId("create-submit").click();
  await a.page.locator("[data-testid=room-title]", { hasText: "Quiet corner" }).waitFor();
  await say(b.page, "one");
  await say(b.page, "two");
  const lobby = a.page.locator("[data-testid=room-item]", { hasText: "Lobby" });
  await lobby.locator("[data-testid=unread]", { hasText: "2" }).waitFor();
  // B does not see A's private room.
  assert.equal(await b.page.locator("[data-testid=room-item]", { hasText: "Quiet corner" }).count(), 0);
  // Opening the room reads it: the badge goes, and stays gone after a reload.
  await lobby.click();
  await a.page.locator("li.msg", { hasText: "two" }).waitFor();
  await lobby.locator("[data-testid=unread]").waitFor({ state: "detached" });

  // Reload: still signed in, same history in the same order.
  const before = await shownMessages(b.page);
  await b.page.reload();
  await b.page.locator("[data-testid=status][data-status=live]").waitFor();
  await b.page.locator("li.msg", { hasText: "two" }).waitFor();
  const afterReload = await shownMessages(b.page);
  assert.deepEqual(afterReload, before);
  const seqs = afterReload.map((m) => m.seq);
  assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
  await a.page.reload();
  await a.page.locator("[data-testid=status][data-status=live]").waitFor();
  await a.page.locator("[data-testid=room-item]", { hasText: "Lobby" }).waitFor();
  assert.equal(await a.page.locator("[data-testid=room-item]", { hasText: "Lobby" }).locator("[data-testid=unread]").count(), 0);

  // Leave: a notice for A, and B is back on the list with the room not joined.
  await b.page.getByTestId("leave").click();
  await a.page.locator("li.notice[data-kind=leave]", { hasText: "Sam" }).waitFor();

  for (const p of [a, b]) {
    assert.deepEqual(p.problems, []);
    await p.context.close();
  }
});

test("scroll-back loads older pages in order; phone layout has no sideways scroll", async () => {
  const { token } = await env.server.api("POST", "/auth/signup", { username: "historian", password: "long enough pass" });
  const room = await env.server.api("POST", "/rooms", { name: "Archive", visibility: "public" }, token);
  for (let i = 1; i <= 130; i++) {
    await env.server.api("POST", `/rooms/${room.id}/messages`, { text: `old message ${i}` }, token);
  }
  const p = await openPage(env.browser, env.server, { viewport: PHONE });
  await signUp(p.page, "reader", "long enough pass");
  await screenshot(p.page, "rooms-phone");
  assert.ok(await noHorizontalOverflow(p.page), "room list overflows at 390 px");
  await p.page.locator("[data-testid=room-item]", { hasText: "Archive" }).click();
  await p.page.locator("li.msg", { hasText: "old message 130" }).waitFor();
  let shown = await shownMessages(p.page);
  assert.equal(shown.length, 50);
  // Scroll to the top until everything is there (room creation + 130 posts).
  for (let i = 0; i < 10 && shown.length < 131; i++) {
    await p.page.getByTestId("scroller").evaluate((el) => (el.scrollTop = 0));
    await p.page.waitForFunction((n) => document.querySelectorAll("[data-testid=messages] li[data-seq]").length > n, shown.length);
    shown = await shownMessages(p.page);
  }
  const texts = shown.filter((m) => m.kind === "text").map((m) => m.text);
  assert.deepEqual(texts, Array.from({ length: 130 }, (_, i) => `old message ${i + 1}`));
  const seqs = shown.map((m) => m.seq);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0] + i), "gapless seqs");
  await p.page.locator(".history-edge", { hasText: "start of the conversation" }).waitFor();
  assert.ok(await noHorizontalOverflow(p.page), "chat overflows at 390 px");
  await p.page.getByTestId("scroller").evaluate((el) => (el.scrollTop = el.scrollHeight));
  await screenshot(p.page, "room-phone");
  assert.deepEqual(p.problems, []);
  await p.context.close();
});

test("leaving sends no read report after the leave, even when the own leave notice arrives first", async () => {
  const a = await openPage(env.browser, env.server);
  await signUp(a.page, "leaver_owner", "correct horse battery", "Owner");
  await a.page.getByTestId("new-room").click();
  await a.page.getByTestId("room-name").fill("Exit hall");
  await a.page.getByTestId("create-submit").click();
  await a.page.locator("[data-testid=room-title]", { hasText: "Exit hall" }).waitFor();
  await say(a.page, "hello");

  const b = await openPage(env.browser, env.server, { locale: "ko-KR" });
  await signUp(b.page, "leaver", "another good password", "떠나는 사람");
  await b.page.locator("[data-testid=room-item]", { hasText: "Exit hall" }).click();
  await b.page.getByTestId("join").click();
  await b.page.getByTestId("composer").waitFor();
  // The answer to the leave is held back, so the leave notice (over STOMP)
  // reaches the page first; every read report from then on is recorded.
  let leaving = false;
  let answered;
  const left = new Promise((r) => (answered = r));
  const lateReads = [];
  b.page.on("request", (r) => {
    if (leaving && r.method() === "POST" && /\/api\/v1\/rooms\/\d+\/read$/.test(r.url())) lateReads.push(r.url());
  });
  await b.page.route(/\/api\/v1\/rooms\/\d+\/leave$/, async (route) => {
    leaving = true;
    const response = await route.fetch();
    await new Promise((r) => setTimeout(r, 800));
    await route.fulfill({ response });
    answered();
  });
  await b.page.getByTestId("leave").click();
  await a.page.locator("li.notice[data-kind=leave]", { hasText: "떠나는 사람" }).waitFor();
  await left;
  await new Promise((r) => setTimeout(r, 600));
  assert.deepEqual(lateReads, []);
  for (const p of [a, b]) {
    assert.deepEqual(p.problems, []);
    await p.context.close();
  }
});
