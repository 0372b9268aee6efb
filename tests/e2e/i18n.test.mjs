// Korean and English: the language follows the browser, can be switched and is
// remembered; every string exists in both; layouts hold at 390 px.

import assert from "node:assert/strict";
import { test } from "node:test";
import { useServerAndBrowser, openPage, asGuest, screenshot, PHONE, DESKTOP, noHorizontalOverflow, unlabelledControls } from "./harness.mjs";

const env = useServerAndBrowser();

test("a ko-KR browser gets the Korean UI; switching to English sticks", async () => {
  const p = await openPage(env.browser, env.server, { locale: "ko-KR", viewport: DESKTOP });
  await p.page.getByTestId("guest-submit").waitFor();
  assert.equal(await p.page.getAttribute("html", "lang"), "ko");
  assert.equal((await p.page.getByTestId("guest-submit").textContent()).trim(), "게스트로 시작");
  assert.equal(await p.page.getByTestId("tab-signup").textContent(), "회원가입");
  await screenshot(p.page, "entry-ko-desktop");
  assert.deepEqual(await unlabelledControls(p.page), []);
  const missing = await p.page.evaluate(async () => (await import("/assets/i18n.js")).missingKeys());
  assert.deepEqual(missing, { ko: [], en: [] });

  await asGuest(p.page, "하늘");
  assert.equal(await p.page.getByTestId("status").textContent(), "연결됨");
  assert.equal(await p.page.getByTestId("nav-random").locator("strong").textContent(), "랜덤 채팅");
  await p.page.getByTestId("nav-random").click();
  assert.equal(await p.page.getByTestId("match-connect").textContent(), "연결");
  assert.deepEqual(await unlabelledControls(p.page), []);
  await screenshot(p.page, "random-ko-desktop");

  await p.page.getByTestId("language").selectOption("en");
  await p.page.locator("[data-testid=match-connect]", { hasText: "Connect" }).waitFor();
  assert.equal(await p.page.getAttribute("html", "lang"), "en");
  await p.page.reload();
  await p.page.locator("[data-testid=status][data-status=live]").waitFor();
  assert.equal(await p.page.getByTestId("match-connect").textContent(), "Connect");
  assert.deepEqual(p.problems, []);
  await p.context.close();
});

test("390 px: entry, lists and random chat fit without sideways scrolling", async () => {
  const p = await openPage(env.browser, env.server, { locale: "ko-KR", viewport: PHONE });
  assert.ok(await noHorizontalOverflow(p.page), "entry");
  await asGuest(p.page, "아주아주긴닉네임을가진사용자입니다");
  assert.ok(await noHorizontalOverflow(p.page), "room list");
  await p.page.getByTestId("nav-random").click();
  await p.page.getByTestId("match-connect").click();
  await p.page.getByTestId("looking").waitFor();
  assert.ok(await noHorizontalOverflow(p.page), "random chat");
  await screenshot(p.page, "random-ko-phone");
  await p.page.getByTestId("match-stop").click();
  await p.page.getByTestId("match-connect").waitFor();
  assert.deepEqual(p.problems, []);
  await p.context.close();
});

test("a wrong password is explained; log out forgets the session", async () => {
  await env.server.api("POST", "/auth/signup", { username: "forgetful", password: "the right password" });
  const p = await openPage(env.browser, env.server);
  await p.page.getByTestId("tab-login").click();
  await p.page.getByTestId("username").fill("forgetful");
  await p.page.getByTestId("password").fill("the wrong password");
  // The failed login is a 401: the browser logs the failed request itself.
  p.allow(/status of 401/);
  await p.page.getByTestId("login-submit").click();
  await p.page.locator("[data-testid=entry-error]", { hasText: /password/i }).waitFor();
  await p.page.getByTestId("password").fill("the right password");
  await p.page.getByTestId("login-submit").click();
  await p.page.locator("[data-testid=status][data-status=live]").waitFor();
  await p.page.reload();
  await p.page.locator("[data-testid=status][data-status=live]").waitFor();
  await p.page.getByTestId("logout").click();
  await p.page.getByTestId("entry").waitFor();
  await p.page.reload();
  await p.page.getByTestId("entry").waitFor();
  assert.equal(await p.page.evaluate(() => localStorage.getItem("qt.token")), null);
  assert.deepEqual(p.problems, []);
  await p.context.close();
});
