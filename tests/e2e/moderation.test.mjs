// Issue 11 (moderation) in English and Korean: a room's creator picks and
// changes its moderation policy; masked text is shown masked with a marker; a
// blocked message is explained to its sender (and can be edited); anyone can
// report a message; a moderator (granted with `quicktalk admin grant`) sees the
// report with its context, bans the author (whose page then says until when and
// why), deletes the message (a tombstone for everyone, live), resolves the item
// and lifts the ban; others see neither the link nor the page. In random chat,
// repeated blocked messages pause matching with an explanation.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { BIN, useServerAndBrowser, openPage, asGuest, signUp, say, screenshot, unlabelledControls, noHorizontalOverflow, DESKTOP, PHONE } from "./harness.mjs";

const env = useServerAndBrowser();

const LANGS = [
  {
    locale: "en-US",
    masked: "masked",
    blocked: "This message was not sent: it contains words that are not allowed here.",
    selfHarm: "self-harm",
    thanks: "Thanks. A moderator will look at it.",
    policyChanged: "Moderation is now: Standard: mask strong words",
    deleted: "This message was removed by a moderator.",
    banned: "Your account is suspended",
    bannedUntil: "Suspended until",
    reason: "Reason: rude to everyone",
    forbidden: "Only moderators can see this page.",
    report: "Report",
    cooldown: "matching is paused until",
  },
  {
    locale: "ko-KR",
    masked: "가려짐",
    blocked: "이 메시지는 전송되지 않았습니다. 이곳에서 허용되지 않는 표현이 들어 있습니다.",
    selfHarm: "자해",
    thanks: "신고해 주셔서 감사합니다. 운영자가 확인합니다.",
    policyChanged: "필터 설정: 보통: 심한 표현 가리기",
    deleted: "운영자가 삭제한 메시지입니다.",
    banned: "계정이 정지되었습니다",
    bannedUntil: "까지 정지되었습니다.",
    reason: "사유: rude to everyone",
    forbidden: "운영자만 볼 수 있는 페이지입니다.",
    report: "신고",
    cooldown: "까지 매칭이 중지되었습니다.",
  },
];

/** `quicktalk admin grant` against the running server's data dir (contract §5). */
function grant(username, role) {
  return execFileSync(BIN, ["admin", "grant", username, role, "--data-dir", env.server.dataDir], { encoding: "utf8" });
}

for (const [i, L] of LANGS.entries()) {
  test(`${L.locale}: policy, masked, blocked, report, and the moderator's queue, ban, delete, resolve, unban`, async () => {
    // The moderator's account exists first; the role comes from the CLI while the server runs.
    const modName = `mod_${i}`;
    await env.server.api("POST", "/auth/signup", { username: modName, password: "long enough pass", display_name: `Mod ${i}` });
    grant(modName, "moderator");

    // The creator makes a room in the UI, strict at first, then standard.
    const a = await openPage(env.browser, env.server, { locale: L.locale });
    await signUp(a.page, `owner_${i}`, "correct horse battery", `Owner ${i}`);
    await a.page.getByTestId("new-room").click();
    await a.page.getByTestId("room-name").fill(`Filtered ${i}`);
    await a.page.getByTestId("room-moderation").selectOption("strict");
    await a.page.getByTestId("create-submit").click();
    const policy = a.page.getByTestId("room-policy");
    await policy.waitFor();
    assert.equal(await policy.inputValue(), "strict");
    await policy.selectOption("standard");
    await a.page.locator(".toast", { hasText: L.policyChanged }).waitFor();
    const roomId = Number(await a.page.getByTestId("chat").getAttribute("data-room"));
    const seen = await env.server.api("GET", `/rooms/${roomId}`, undefined, (await env.server.api("POST", "/auth/guest", {})).token);
    assert.equal(seen.moderation, "standard");
    // Members and the creator: no moderator link for them.
    assert.equal(await a.page.getByTestId("nav-moderation").count(), 0);

    // A guest writes something masked (over the API, as any client could).
    const b = await openPage(env.browser, env.server, { locale: L.locale, viewport: PHONE });
    await asGuest(b.page, `Rude ${i}`);
    const bToken = await b.page.evaluate(() => localStorage.getItem("qt.token"));
    await env.server.api("POST", `/rooms/${roomId}/join`, undefined, bToken);
    const posted = await env.server.api("POST", `/rooms/${roomId}/messages`, { text: "shit happens" }, bToken);
    assert.equal(posted.masked, true);
    const masked = a.page.locator("li.msg.theirs", { hasText: "**** happens" });
    await masked.waitFor();
    assert.equal(await masked.getByTestId("masked").textContent(), L.masked);

    // The creator's own blocked message is explained on its bubble, in their language.
    await say(a.page, "kill yourself");
    const failed = a.page.locator("li.pending.failed[data-code=moderated]");
    await failed.getByTestId("blocked-note").filter({ hasText: L.blocked }).waitFor();
    assert.match(await failed.locator("time").textContent(), new RegExp(L.selfHarm));
    await screenshot(a.page, `moderation-blocked-${L.locale}`);
    await failed.getByTestId("edit-blocked").click();
    assert.equal(await a.page.getByTestId("composer").inputValue(), "kill yourself");
    await a.page.getByTestId("composer").fill("");

    // Report the guest's message.
    await masked.hover();
    await masked.getByTestId("report-message").click();
    const dialog = a.page.getByTestId("report-message-dialog");
    await dialog.waitFor();
    assert.equal(await dialog.getByTestId("report-message-quote").textContent(), "**** happens");
    assert.deepEqual(await unlabelledControls(a.page), []);
    await dialog.getByTestId("report-message-reason").fill(`rude to everyone ${i}`);
    await dialog.getByTestId("report-message-send").click();
    await a.page.locator(".toast", { hasText: L.thanks }).waitFor();
    await dialog.waitFor({ state: "detached" });
    // A non-moderator opening the page is told it is not for them.
    await a.page.evaluate(() => (location.hash = "#/moderation"));
    await a.page.getByTestId("mod-forbidden").filter({ hasText: L.forbidden }).waitFor();
    await a.page.evaluate((id) => (location.hash = `#/rooms/${id}`), roomId);
    await masked.waitFor();

    // The moderator logs in and finds the report with the messages around it.
    // The moderator works from a phone in the Korean run.
    const m = await openPage(env.browser, env.server, { locale: L.locale, viewport: i === 1 ? PHONE : DESKTOP });
    await m.page.getByTestId("tab-login").click();
    await m.page.getByTestId("username").fill(modName);
    await m.page.getByTestId("password").fill("long enough pass");
    await m.page.getByTestId("login-submit").click();
    await m.page.getByTestId("nav-moderation").click();
    const item = m.page.locator("[data-testid=queue-item][data-kind=report]", { hasText: `rude to everyone ${i}` });
    await item.waitFor();
    assert.equal(await item.getByTestId("queue-kind").textContent(), L.report);
    assert.match(await item.getByTestId("queue-target").textContent(), /\*\*\*\* happens/);
    assert.ok((await item.getByTestId("queue-context-message").count()) >= 1, "context around the message");
    assert.match(await item.getByTestId("queue-subject").textContent(), new RegExp(`Rude ${i}`));
    assert.match(await item.getByTestId("queue-reporter").textContent(), new RegExp(`Owner ${i}`));
    assert.deepEqual(await unlabelledControls(m.page), []);
    assert.ok(await noHorizontalOverflow(m.page), "the moderator page scrolls sideways");
    await screenshot(m.page, `moderation-queue-${L.locale}`);

    // Ban the author for an hour: their page explains it, in their language.
    await item.getByTestId("ban-length").selectOption("1h");
    await item.getByTestId("ban-reason").fill(`rude to everyone ${i}`);
    await item.getByTestId("ban").click();
    await item.getByTestId("subject-banned").waitFor();
    const bannedPage = b.page.getByTestId("banned");
    await bannedPage.waitFor({ timeout: 5000 });
    await bannedPage.locator("h2", { hasText: L.banned }).waitFor();
    assert.match(await b.page.getByTestId("banned-until").textContent(), new RegExp(L.bannedUntil));
    assert.equal(await b.page.getByTestId("banned-reason").textContent(), `${L.reason} ${i}`);
    await screenshot(b.page, `moderation-banned-${L.locale}`);

    // Delete the message: everyone in the room sees the tombstone at once.
    await item.getByTestId("mod-delete").click();
    await a.page.getByTestId("deleted").filter({ hasText: L.deleted }).waitFor();
    assert.equal(await a.page.locator("li.msg", { hasText: "**** happens" }).count(), 0);

    // Resolve with a note: gone from the open list, shown under resolved.
    await item.getByTestId("resolve-note").fill("banned and deleted");
    await item.getByTestId("resolve").click();
    await item.waitFor({ state: "detached" });
    await m.page.getByTestId("mod-tab-resolved").click();
    await m.page
      .locator("[data-testid=queue-item][data-kind=report]", { hasText: `rude to everyone ${i}` })
      .getByTestId("queue-resolved")
      .filter({ hasText: "banned and deleted" })
      .waitFor();

    // Lift the ban from the bans list; the guest gets back in.
    await m.page.getByTestId("mod-tab-bans").click();
    const ban = m.page.locator("[data-testid=ban-item]", { hasText: `Rude ${i}` });
    await ban.waitFor();
    await ban.getByTestId("unban").click();
    await ban.waitFor({ state: "detached" });
    await b.page.getByTestId("banned-retry").click();
    await b.page.locator("[data-testid=status][data-status=live]").waitFor();

    for (const p of [a, b, m]) {
      assert.deepEqual(p.problems.filter((x) => !/status of (400|403|404)/.test(x)), []);
      await p.context.close();
    }
  });

  test(`${L.locale}: repeated blocked messages in random chat pause matching, explained`, async () => {
    const a = await openPage(env.browser, env.server, { locale: L.locale });
    const b = await openPage(env.browser, env.server, { locale: L.locale });
    await asGuest(a.page, `Angry ${i}`);
    await asGuest(b.page, `Calm ${i}`);
    await a.page.getByTestId("nav-random").click();
    await a.page.getByTestId("match-connect").click();
    await b.page.getByTestId("nav-random").click();
    await b.page.getByTestId("match-connect").click();
    await a.page.locator("[data-testid=random-chat][data-state=matched]").waitFor();
    for (let n = 0; n < 3; n++) {
      await say(a.page, "kill yourself");
      await a.page.locator("li.pending.failed[data-code=moderated]").nth(n).waitFor();
    }
    // Nothing reached the partner.
    assert.equal(await b.page.locator("li.msg.theirs").count(), 0);
    await a.page.getByTestId("match-disconnect").click();
    await a.page.getByTestId("match-new").click();
    const notice = a.page.getByTestId("cooldown");
    await notice.waitFor();
    assert.match(await notice.textContent(), new RegExp(L.cooldown));
    assert.ok(await a.page.getByTestId("match-connect").isDisabled());
    await screenshot(a.page, `moderation-cooldown-${L.locale}`);
    for (const p of [a, b]) {
      assert.deepEqual(p.problems.filter((x) => !/status of (400|403|404)/.test(x)), []);
      await p.context.close();
    }
  });
}
