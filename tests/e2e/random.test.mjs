// Random chat in two browsers: guests match, chat both ways, Next ends it for
// the partner with a notice, Report + Disconnect.

import assert from "node:assert/strict";
import { test } from "node:test";
import { useServerAndBrowser, openPage, asGuest, say, screenshot, DESKTOP, PHONE, noHorizontalOverflow } from "./harness.mjs";

// A short grace period, so a dropped partner is noticed within the test.
const env = useServerAndBrowser(["--match-grace-ms", "1500"]);

test("two guests match, chat both ways, and Next tells the partner", async () => {
  const a = await openPage(env.browser, env.server, { viewport: DESKTOP });
  const b = await openPage(env.browser, env.server, { viewport: PHONE });
  await screenshot(a.page, "entry-desktop");
  await screenshot(b.page, "entry-phone");
  await asGuest(a.page, "Alice");
  await asGuest(b.page, "민수");

  await a.page.getByTestId("nav-random").click();
  await a.page.getByTestId("interests").fill("music, games");
  await a.page.getByTestId("match-connect").click();
  await a.page.getByTestId("looking").waitFor();
  await screenshot(a.page, "random-waiting-desktop");

  await b.page.getByTestId("nav-random").click();
  await b.page.getByTestId("match-connect").click();

  // Both see who they are talking to.
  await a.page.locator("[data-testid=random-chat][data-state=matched]").waitFor();
  await b.page.locator("[data-testid=random-chat][data-state=matched]").waitFor();
  assert.equal(await a.page.getByTestId("partner").textContent(), "민수");
  assert.equal(await b.page.getByTestId("partner").textContent(), "Alice");

  await say(a.page, "hello from Alice");
  await b.page.locator("li.msg.theirs", { hasText: "hello from Alice" }).waitFor();
  await say(b.page, "안녕하세요 👋");
  await a.page.locator("li.msg.theirs", { hasText: "안녕하세요 👋" }).waitFor();
  // Own messages are confirmed (stored, echoed) and shown on the right.
  await a.page.locator("li.msg.mine[data-seq]", { hasText: "hello from Alice" }).waitFor();
  await screenshot(a.page, "random-chat-desktop");
  await screenshot(b.page, "random-chat-phone");
  assert.ok(await noHorizontalOverflow(b.page), "the 390 px page scrolls sideways");

  // A presses Next: B is told at once, A is looking again.
  await a.page.getByTestId("match-next").click();
  await b.page.locator("[data-testid=match-ended][data-reason=partner_left]").waitFor();
  await a.page.getByTestId("looking").waitFor();
  // The conversation stays readable and the composer is closed for B.
  assert.ok(await b.page.getByTestId("composer").isDisabled());
  await b.page.locator("li.msg", { hasText: "hello from Alice" }).waitFor();

  // B starts over; a third guest arrives and is paired with one of them.
  await b.page.getByTestId("match-new").click();
  await a.page.getByTestId("looking").waitFor();
  // A and B were just together: they must not be re-matched at once.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await a.page.locator("[data-testid=random-chat]").count(), 0);

  const c = await openPage(env.browser, env.server);
  await asGuest(c.page, "Chris");
  await c.page.getByTestId("nav-random").click();
  await c.page.getByTestId("match-connect").click();
  await c.page.locator("[data-testid=random-chat][data-state=matched]").waitFor();
  const partner = await c.page.getByTestId("partner").textContent();
  assert.ok(["Alice", "민수"].includes(partner), partner);
  const other = partner === "Alice" ? a : b;

  // Report: the reporter leaves, the reported side is told.
  await c.page.getByTestId("match-report").click();
  await c.page.getByTestId("report-reason").fill("spam");
  await c.page.getByTestId("report-reason").press("Enter");
  await c.page.locator("[data-testid=match-ended][data-reason=you_left]").waitFor();
  await other.page.locator("[data-testid=match-ended][data-reason=partner_left]").waitFor();

  for (const p of [a, b, c]) {
    assert.deepEqual(p.problems, []);
    await p.context.close();
  }
});

test("a partner whose connection drops is reported as dropped after the grace period", async () => {
  const d = await openPage(env.browser, env.server);
  const e = await openPage(env.browser, env.server);
  await asGuest(d.page, "Dana");
  await asGuest(e.page, "Eun");
  for (const p of [d, e]) {
    await p.page.getByTestId("nav-random").click();
    await p.page.getByTestId("match-connect").click();
  }
  await d.page.locator("[data-testid=random-chat][data-state=matched]").waitFor();
  await e.page.locator("[data-testid=random-chat][data-state=matched]").waitFor();
  await e.context.close(); // the tab is gone: no Disconnect was pressed
  await d.page.locator("[data-testid=match-ended][data-reason=partner_disconnected]", { hasText: "Eun" }).waitFor();
  assert.ok(await d.page.getByTestId("composer").isDisabled());
  assert.deepEqual(d.problems, []);
  assert.deepEqual(e.problems, []);
  await d.context.close();
});
