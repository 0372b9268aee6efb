// Issue 10 (impersonation), in English and Korean: a guest's name carries a
// "Guest"/"게스트" badge in messages and in the members panel; a click on a name
// opens a profile card with `@username` for a registered user or the guest badge
// for a guest; a nickname that looks like a registered user's name is refused
// with a message in the page's language.

import assert from "node:assert/strict";
import { test } from "node:test";
import { useServerAndBrowser, openPage, asGuest, screenshot, unlabelledControls } from "./harness.mjs";

const env = useServerAndBrowser();

const LANGS = [
  { locale: "en-US", guest: "Guest", note: "Guest: not a registered account", taken: "this name looks like another user's name; choose another" },
  { locale: "ko-KR", guest: "게스트", note: "게스트: 가입하지 않은 사용자입니다", taken: "다른 사용자의 이름과 비슷합니다. 다른 이름을 골라 주세요" },
];

for (const [i, L] of LANGS.entries()) {
  test(`${L.locale}: guest badges and profile cards in messages and members`, async () => {
    // A registered user and a guest talk in a public room (set up over the API).
    const username = `rin_${i}`;
    const reg = await env.server.api("POST", "/auth/signup", { username, password: "long enough pass", display_name: `Rin ${i}` });
    const room = await env.server.api("POST", "/rooms", { name: `Badges ${i}`, visibility: "public" }, reg.token);
    await env.server.api("POST", `/rooms/${room.id}/messages`, { text: "hello from rin" }, reg.token);
    const guest = await env.server.api("POST", "/auth/guest", { nickname: `린 팬 ${i}` });
    await env.server.api("POST", `/rooms/${room.id}/join`, undefined, guest.token);
    await env.server.api("POST", `/rooms/${room.id}/messages`, { text: "hi from the guest" }, guest.token);

    const p = await openPage(env.browser, env.server, { locale: L.locale });
    // A nickname that looks like the registered user's display name is refused.
    p.allow(/status of 409/); // the browser logs that refused request
    await p.page.getByTestId("tab-guest").click();
    await p.page.getByTestId("nickname").fill(`RIN ${i}`);
    await p.page.getByTestId("guest-submit").click();
    await p.page.locator("[data-testid=entry-error]", { hasText: L.taken }).waitFor();
    await asGuest(p.page, `Viewer ${i}`);

    await p.page.locator("[data-testid=room-item]", { hasText: `Badges ${i}` }).click();
    const fromGuest = p.page.locator("li.msg", { hasText: "hi from the guest" });
    const fromRin = p.page.locator("li.msg", { hasText: "hello from rin" });
    await fromGuest.waitFor();
    // The guest's name has the badge; the registered user's has none.
    const guestAuthor = fromGuest.getByTestId("author");
    assert.equal(await guestAuthor.locator(".author-name").textContent(), `린 팬 ${i}`);
    assert.equal(await guestAuthor.getByTestId("guest-badge").textContent(), L.guest);
    const rinAuthor = fromRin.getByTestId("author");
    assert.equal(await rinAuthor.locator(".author-name").textContent(), `Rin ${i}`);
    assert.equal(await rinAuthor.getByTestId("guest-badge").count(), 0);

    // The registered sender's card shows @username (loaded from GET /users/{id}).
    await rinAuthor.click();
    const card = p.page.getByTestId("profile-card");
    await card.waitFor();
    assert.equal(await card.getByTestId("profile-name").textContent(), `Rin ${i}`);
    await card.getByTestId("profile-username").filter({ hasText: `@${username}` }).waitFor();
    assert.equal(await card.getByTestId("guest-badge").count(), 0);
    await screenshot(p.page, `profile-registered-${L.locale}`);
    assert.deepEqual(await unlabelledControls(p.page), []);
    await p.page.keyboard.press("Escape");
    await card.waitFor({ state: "detached" });

    // The guest's card: the badge and the note, no username.
    await guestAuthor.click();
    await card.waitFor();
    assert.equal(await card.getByTestId("profile-name").textContent(), `린 팬 ${i}`);
    assert.equal(await card.getByTestId("guest-badge").textContent(), L.guest);
    await card.locator(".profile-note", { hasText: L.note }).waitFor();
    assert.equal(await card.getByTestId("profile-username").count(), 0);
    await card.getByTestId("profile-close").click();
    await card.waitFor({ state: "detached" });

    // The members panel: the badge on the guest, and cards from the members data.
    await p.page.getByTestId("members-toggle").click();
    const members = p.page.getByTestId("members");
    const guestMember = members.getByTestId("member").filter({ hasText: `린 팬 ${i}` });
    await guestMember.waitFor();
    assert.equal(await guestMember.getByTestId("guest-badge").textContent(), L.guest);
    const rinMember = members.getByTestId("member").filter({ hasText: `Rin ${i}` });
    assert.equal(await rinMember.getByTestId("guest-badge").count(), 0);
    await rinMember.click();
    await card.getByTestId("profile-username").filter({ hasText: `@${username}` }).waitFor();
    await screenshot(p.page, `profile-member-${L.locale}`);
    await p.page.keyboard.press("Escape");
    await guestMember.click();
    await card.getByTestId("guest-badge").waitFor();
    assert.equal(await card.getByTestId("profile-username").count(), 0);

    assert.deepEqual(p.problems, []);
    await p.context.close();
  });
}
