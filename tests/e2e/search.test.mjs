// History search (issue 15) in the browser, in Korean and English: a Korean
// two-syllable word found inside longer words and marked; errors explained
// (a too long query, a 429 with its retry, no network); no search while an IME
// composition is in progress and exactly one after it; keyboard navigation;
// this room vs all my rooms; "More" paging; and a hit opened in context: the
// room around it, highlighted, older and newer pages on scrolling, the read
// cursor untouched while detached, a live message sent meanwhile shown once
// and in order once caught up.

import assert from "node:assert/strict";
import { test } from "node:test";
import { useServerAndBrowser, openPage, signUp, shownMessages, screenshot, unlabelledControls, noHorizontalOverflow, PHONE } from "./harness.mjs";

const env = useServerAndBrowser();
const SEARCH_URL = /\/api\/v1\/search\?/;

let serial = 0;
async function newUser(name, display) {
  serial += 1;
  return env.server.api("POST", "/auth/signup", { username: `${name}_${serial}`, password: "long enough pass", display_name: display });
}
const createRoom = (token, name) => env.server.api("POST", "/rooms", { name, visibility: "public" }, token);
const post = (token, roomId, text) => env.server.api("POST", `/rooms/${roomId}/messages`, { text }, token);

/** A page of the app signed in with `token` (kept where the app keeps it). */
async function signedIn(token, opts = {}) {
  const p = await openPage(env.browser, env.server, {
    ...opts,
    setup: (ctx) => ctx.addInitScript((tk) => localStorage.setItem("qt.token", tk), token),
  });
  await p.page.locator("[data-testid=status][data-status=live]").waitFor();
  // The browser logs the refused requests the tests provoke.
  p.allow(/status of 400|status of 429|net::ERR_INTERNET_DISCONNECTED/);
  return p;
}

/** Counts the search requests the page makes. */
function countSearches(page) {
  const c = { n: 0 };
  page.on("request", (req) => {
    if (new URL(req.url()).pathname === "/api/v1/search") c.n += 1;
  });
  return c;
}

const results = (page) =>
  page.$$eval("[data-testid=search-result]", (els) =>
    els.map((e) => ({
      room: e.querySelector("[data-testid=search-room]").textContent,
      sender: e.querySelector("[data-testid=search-sender]").textContent,
      time: e.querySelector("[data-testid=search-time]").textContent,
      text: e.querySelector("[data-testid=search-text]").textContent,
      marks: [...e.querySelectorAll("mark")].map((m) => m.textContent),
      selected: e.getAttribute("aria-selected") === "true",
      seq: Number(e.dataset.seq),
      roomId: Number(e.dataset.roomId),
    })),
  );

async function search(page, q) {
  const box = page.getByTestId("search-input");
  await box.fill(q);
  await box.press("Enter");
}

const STRINGS = {
  ko: {
    locale: "ko-KR",
    found2: "메시지 2개를 찾았습니다",
    found1: "메시지 1개를 찾았습니다",
    invalid: "검색어는 1자에서 100자까지 입력하세요.",
    rate: "검색을 너무 빠르게 하고 있습니다. 3초 후에 다시 시도하세요.",
    network: "서버에 연결할 수 없습니다. 연결을 확인하고 다시 시도하세요.",
    empty: "내 방에 “없는말”이(가) 들어간 메시지가 없습니다.",
    retry: "다시 시도",
    search: "검색",
  },
  en: {
    locale: "en-US",
    found2: "2 messages found",
    found1: "1 message found",
    invalid: "Type 1 to 100 characters to search for.",
    rate: "You are searching too fast. Try again in 3 seconds.",
    network: "Cannot reach the server. Check your connection and retry.",
    empty: "No message in your rooms contains “없는말”.",
    retry: "Retry",
    search: "Search",
  },
};

for (const lang of ["ko", "en"]) {
  const L = STRINGS[lang];
  test(`${lang}: a Korean word inside longer words is found and marked; errors are explained`, async () => {
    const a = await newUser("finder", lang === "ko" ? "민지" : "Minji");
    const room = await createRoom(a.token, lang === "ko" ? "사랑방" : "Sarang room");
    for (const text of ["너를 사랑해요", "사랑을 해요", "다른 말", "SARANG means love"]) await post(a.token, room.id, text);

    const p = await signedIn(a.token, { locale: L.locale });
    const searches = countSearches(p.page);
    await p.page.getByTestId("open-search").click();
    await p.page.getByTestId("search").waitFor();
    assert.equal(await p.page.evaluate(() => document.activeElement?.dataset.testid), "search-input");
    assert.equal((await p.page.getByTestId("search-submit").textContent()).trim(), L.search);
    await search(p.page, "사랑");
    await p.page.locator("[data-testid=search-status]", { hasText: L.found2 }).waitFor();
    const hits = await results(p.page);
    // Newest first; "다른 말" does not match.
    assert.deepEqual(
      hits.map((r) => [r.text, r.marks, r.room, r.sender]),
      [
        ["사랑을 해요", ["사랑"], room.name, a.user.display_name],
        ["너를 사랑해요", ["사랑"], room.name, a.user.display_name],
      ],
    );
    for (const r of hits) assert.ok(r.time.trim().length > 0, "a localized time");
    assert.deepEqual(await unlabelledControls(p.page), []);
    await screenshot(p.page, `search-${lang}-desktop`);

    // Case-insensitive: the original spelling is marked.
    await search(p.page, "sarang");
    await p.page.locator("[data-testid=search-status]", { hasText: L.found1 }).waitFor();
    assert.deepEqual((await results(p.page)).map((r) => r.marks), [["SARANG"]]);

    // Nothing found.
    await search(p.page, "없는말");
    await p.page.locator("[data-testid=search-status]", { hasText: L.empty }).waitFor();
    assert.equal(await p.page.getByTestId("search-result").count(), 0);

    // 101 characters: the server's 400 `invalid_query`, explained.
    await search(p.page, "가".repeat(101));
    await p.page.locator("[data-testid=search-error][data-code=invalid_query]", { hasText: L.invalid }).waitFor();

    // 429 `rate_limited` (mocked, the test server has no limits): explained, retried after Retry-After.
    const rateLimited = (route) =>
      route.fulfill({
        status: 429,
        headers: { "Content-Type": "application/json", "Retry-After": "3" },
        body: JSON.stringify({ error: { code: "rate_limited", message: "too many searches" } }),
      });
    await p.page.route(SEARCH_URL, rateLimited);
    await search(p.page, "사랑");
    const rate = p.page.locator("[data-testid=search-error][data-code=rate_limited]");
    await rate.locator("p", { hasText: L.rate }).waitFor();
    assert.ok(await p.page.getByTestId("search-retry").isDisabled(), "no retry before Retry-After");
    await p.page.unroute(SEARCH_URL, rateLimited);
    await p.page.locator("[data-testid=search-retry]:not([disabled])", { hasText: L.retry }).click();
    await p.page.locator("[data-testid=search-status]", { hasText: L.found2 }).waitFor();
    assert.equal(await p.page.getByTestId("search-error").isHidden(), true);

    // No network: explained, and a retry that works once it is back.
    const offline = (route) => route.abort("internetdisconnected");
    await p.page.route(SEARCH_URL, offline);
    await search(p.page, "사랑");
    await p.page.locator("[data-testid=search-error][data-code=network]", { hasText: L.network }).waitFor();
    await p.page.unroute(SEARCH_URL, offline);
    await p.page.getByTestId("search-retry").click();
    await p.page.locator("[data-testid=search-status]", { hasText: L.found2 }).waitFor();
    assert.ok(searches.n >= 7);

    assert.deepEqual(p.problems, []);
    await p.context.close();
  });
}

test("ko: no search while an IME composition is in progress; one after it ends", async () => {
  const a = await newUser("ime", "하늘");
  const room = await createRoom(a.token, "입력기");
  for (const text of ["너를 사랑해요", "사랑을 해요", "다른 말"]) await post(a.token, room.id, text);
  const p = await signedIn(a.token, { locale: "ko-KR" });
  await p.page.locator("[data-testid=room-item]", { hasText: "입력기" }).click();
  await p.page.locator("li.msg", { hasText: "다른 말" }).waitFor();
  await p.page.getByTestId("room-search").click();
  const box = p.page.getByTestId("search-input");
  await box.waitFor();
  const searches = countSearches(p.page);

  // Composing "사랑": the IME's Enter (isComposing, keyCode 229) is not a search…
  await box.evaluate((el) => {
    el.dispatchEvent(new CompositionEvent("compositionstart", { bubbles: true, data: "" }));
    el.value = "사랑";
    el.dispatchEvent(new InputEvent("input", { bubbles: true, isComposing: true, inputType: "insertCompositionText", data: "사랑" }));
    el.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", code: "Enter", keyCode: 229, isComposing: true, bubbles: true, cancelable: true }));
    // …nor is Escape a close.
    el.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", code: "Escape", keyCode: 229, isComposing: true, bubbles: true, cancelable: true }));
  });
  // A real Enter key while the composition is still open: no search, no form submission.
  await box.press("Enter");
  await p.page.getByTestId("search-submit").click();
  // The composition ends, and the Enter that ended it follows at once (as some browsers send it).
  await box.evaluate((el) => {
    el.dispatchEvent(new CompositionEvent("compositionend", { bubbles: true, data: "사랑" }));
    el.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", code: "Enter", keyCode: 229, bubbles: true, cancelable: true }));
  });
  await p.page.waitForTimeout(400);
  assert.equal(searches.n, 0, "no search during the composition");
  assert.equal(await p.page.getByTestId("search").count(), 1, "still open");
  assert.equal(await box.inputValue(), "사랑");

  // Composition over: Enter searches, once.
  await box.press("Enter");
  await p.page.locator("[data-testid=search-status]", { hasText: "메시지 2개를 찾았습니다" }).waitFor();
  await p.page.waitForTimeout(400);
  assert.equal(searches.n, 1, "exactly one search");
  assert.deepEqual((await results(p.page)).map((r) => r.marks), [["사랑"], ["사랑"]]);
  assert.deepEqual(p.problems, []);
  await p.context.close();
});

test("en: this room vs all my rooms, keyboard navigation, Escape, More paging; a phone fits", async () => {
  const a = await newUser("navigator", "Nora");
  const alpha = await createRoom(a.token, "Alpha");
  const beta = await createRoom(a.token, "Beta");
  for (const text of ["apple pie", "green apple", "PINEAPPLE juice"]) await post(a.token, alpha.id, text);
  await post(a.token, beta.id, "Apple tart in Beta");
  for (let i = 1; i <= 25; i++) await post(a.token, beta.id, `batch item ${i}`);
  const p = await signedIn(a.token, { locale: "en-US" });
  const searches = countSearches(p.page);

  // From inside Alpha: this room only.
  await p.page.locator("[data-testid=room-item]", { hasText: "Alpha" }).click();
  await p.page.locator("li.msg", { hasText: "PINEAPPLE juice" }).waitFor();
  await p.page.getByTestId("room-search").click();
  await p.page.locator("[data-testid=search-scope]", { hasText: "In Alpha" }).waitFor();
  await search(p.page, "apple");
  await p.page.locator("[data-testid=search-status]", { hasText: "3 messages found" }).waitFor();
  let hits = await results(p.page);
  assert.deepEqual(hits.map((r) => [r.room, r.text, r.marks]), [
    ["Alpha", "PINEAPPLE juice", ["APPLE"]],
    ["Alpha", "green apple", ["apple"]],
    ["Alpha", "apple pie", ["apple"]],
  ]);
  // Widened to all my rooms: Beta's hit joins, newest first.
  await p.page.getByTestId("search-all").check();
  await p.page.locator("[data-testid=search-scope]", { hasText: "In all my rooms" }).waitFor();
  await p.page.locator("[data-testid=search-status]", { hasText: "4 messages found" }).waitFor();
  hits = await results(p.page);
  assert.deepEqual(hits.map((r) => [r.room, r.marks]), [
    ["Beta", ["Apple"]],
    ["Alpha", ["APPLE"]],
    ["Alpha", ["apple"]],
    ["Alpha", ["apple"]],
  ]);

  // Keyboard: the focus stays in the box; arrows move the selection, Enter opens it.
  const box = p.page.getByTestId("search-input");
  await box.press("ArrowDown");
  assert.deepEqual((await results(p.page)).map((r) => r.selected), [true, false, false, false]);
  await box.press("ArrowDown");
  await box.press("ArrowDown");
  await box.press("ArrowUp");
  hits = await results(p.page);
  assert.deepEqual(hits.map((r) => r.selected), [false, true, false, false]);
  assert.equal(await box.getAttribute("aria-activedescendant"), "search-hit-1");
  const chosen = hits[1];
  await box.press("Enter");
  await p.page.getByTestId("search").waitFor({ state: "detached" });
  assert.equal(new URL(p.page.url()).hash, `#/rooms/${alpha.id}/at/${chosen.seq}`);
  await p.page.locator(`[data-testid=messages] li.hit[data-seq="${chosen.seq}"]`, { hasText: "PINEAPPLE juice" }).waitFor();

  // Search opens again from the header with the last results; Escape closes it and gives the focus back.
  await p.page.getByTestId("open-search").click();
  await p.page.locator("[data-testid=search-status]", { hasText: "4 messages found" }).waitFor();
  await box.press("Escape");
  await p.page.getByTestId("search").waitFor({ state: "detached" });
  assert.equal(await p.page.evaluate(() => document.activeElement?.dataset.testid), "open-search");

  // More: 25 hits, 20 a page.
  await p.page.getByTestId("open-search").click();
  await search(p.page, "batch item");
  await p.page.locator("[data-testid=search-status]", { hasText: "The newest 20 messages found; more below" }).waitFor();
  assert.equal(await p.page.getByTestId("search-result").count(), 20);
  await p.page.getByTestId("search-more").click();
  await p.page.locator("[data-testid=search-status]", { hasText: "25 messages found" }).waitFor();
  assert.ok(await p.page.getByTestId("search-more").isHidden());
  const texts = (await results(p.page)).map((r) => r.text);
  assert.deepEqual(texts, Array.from({ length: 25 }, (_, i) => `batch item ${25 - i}`));
  // Keyboard selection reaches the second page.
  for (let i = 0; i < 30; i++) await box.press("ArrowDown");
  assert.equal((await results(p.page)).findIndex((r) => r.selected), 24);
  assert.equal(searches.n, 4);
  assert.deepEqual(await unlabelledControls(p.page), []);
  await box.press("Escape");
  assert.deepEqual(p.problems, []);
  await p.context.close();

  // 390 px: the panel fills the screen without sideways scrolling.
  const phone = await signedIn(a.token, { locale: "ko-KR", viewport: PHONE });
  await phone.page.getByTestId("open-search").click();
  await search(phone.page, "apple");
  await phone.page.locator("[data-testid=search-status]", { hasText: "메시지 4개를 찾았습니다" }).waitFor();
  assert.ok(await noHorizontalOverflow(phone.page), "search overflows at 390 px");
  await screenshot(phone.page, "search-ko-phone");
  assert.deepEqual(phone.problems, []);
  await phone.context.close();
});

test("ko: a hit opens in context; older and newer load on scrolling; a live message meanwhile shows once, in order", async () => {
  const writer = await newUser("writer", "기록자");
  const reader = await newUser("reader", "독자");
  const room = await createRoom(writer.token, "기록 보관소");
  await env.server.api("POST", `/rooms/${room.id}/join`, undefined, reader.token);
  const texts = [];
  for (let i = 1; i <= 120; i++) {
    const text = i === 60 ? `기록 ${i} 오래된 바늘` : `기록 ${i}`;
    texts.push(text);
    await post(writer.token, room.id, text);
  }
  const unread = async () => (await env.server.api("GET", "/rooms?kind=group", undefined, reader.token)).rooms.find((r) => r.id === room.id).unread;
  const unreadBefore = await unread();
  assert.ok(unreadBefore >= 120);

  const p = await signedIn(reader.token, { locale: "ko-KR" });
  await p.page.getByTestId("open-search").click();
  await search(p.page, "바늘");
  await p.page.locator("[data-testid=search-status]", { hasText: "메시지 1개를 찾았습니다" }).waitFor();
  const [hit] = await results(p.page);
  assert.equal(hit.room, "기록 보관소");
  await p.page.getByTestId("search-result").click();

  // The room around the hit: the hit centred in view and highlighted; detached from the live end.
  const hitLi = p.page.locator(`[data-testid=messages] li.hit[data-seq="${hit.seq}"]`);
  await hitLi.waitFor();
  assert.equal(new URL(p.page.url()).hash, `#/rooms/${room.id}/at/${hit.seq}`);
  const scroller = p.page.getByTestId("scroller");
  const [box, view] = [await hitLi.boundingBox(), await scroller.boundingBox()];
  assert.ok(box.y >= view.y && box.y + box.height <= view.y + view.height, "the hit is in view");
  await p.page.locator("[data-testid=chat][data-detached=true]").waitFor();
  await screenshot(p.page, "search-hit-ko-desktop");
  let shown = await shownMessages(p.page);
  assert.ok(shown.length <= 50 && shown.some((m) => m.seq === hit.seq));
  assert.ok(!shown.some((m) => m.text === "기록 120"), "the live end is not loaded");
  const contiguous = (list) => list.every((m, i) => i === 0 || m.seq === list[i - 1].seq + 1);
  assert.ok(contiguous(shown));

  // A live message from the other user while detached: not shown in the gap.
  await post(writer.token, room.id, "실시간 메시지");
  await p.page.locator("[data-testid=new-messages]", { hasText: "새 메시지" }).waitFor();
  shown = await shownMessages(p.page);
  assert.ok(contiguous(shown));
  assert.ok(!shown.some((m) => m.text === "실시간 메시지"));
  // The read cursor stays where it was while the view is detached.
  await p.page.waitForTimeout(600);
  assert.ok((await unread()) >= unreadBefore, "not marked read while detached");

  // Scrolling up loads older pages, in order, to the start.
  for (let i = 0; i < 10 && !(await p.page.locator(".history-edge", { hasText: "대화의 시작입니다." }).count()); i++) {
    const n = (await shownMessages(p.page)).length;
    await scroller.evaluate((el) => (el.scrollTop = 0));
    await p.page.waitForFunction(
      (n) => document.querySelectorAll("[data-testid=messages] li[data-seq]").length > n || document.querySelector(".history-edge").textContent !== "",
      n,
    );
  }
  await p.page.locator(".history-edge", { hasText: "대화의 시작입니다." }).waitFor();
  shown = await shownMessages(p.page);
  assert.ok(contiguous(shown));
  assert.equal(shown.filter((m) => m.kind === "text")[0].text, "기록 1");

  // Scrolling down loads newer pages until caught up with the live end.
  for (let i = 0; i < 10 && (await p.page.locator("[data-testid=chat][data-detached=true]").count()); i++) {
    const n = (await shownMessages(p.page)).length;
    await scroller.evaluate((el) => (el.scrollTop = el.scrollHeight));
    await p.page.waitForFunction(
      (n) => document.querySelectorAll("[data-testid=messages] li[data-seq]").length > n || document.querySelector("[data-testid=chat]").dataset.detached === "false",
      n,
    );
  }
  await p.page.locator("[data-testid=chat][data-detached=false]").waitFor();
  await p.page.locator("li.msg", { hasText: "실시간 메시지" }).waitFor();
  await scroller.evaluate((el) => (el.scrollTop = el.scrollHeight));
  shown = await shownMessages(p.page);
  assert.ok(contiguous(shown), "gapless seqs");
  assert.deepEqual(
    shown.filter((m) => m.kind === "text").map((m) => m.text),
    [...texts, "실시간 메시지"],
    "every message once, in order, the live one last",
  );
  // Caught up: the address is the room's own, and reading at the live end moves the read cursor.
  await p.page.waitForFunction((id) => location.hash === `#/rooms/${id}`, room.id);
  for (let i = 0; i < 50 && (await unread()) !== 0; i++) await p.page.waitForTimeout(100);
  assert.equal(await unread(), 0);
  // Live again: the next message shows at once.
  await post(writer.token, room.id, "이제 실시간");
  await p.page.locator("li.msg", { hasText: "이제 실시간" }).waitFor();
  shown = await shownMessages(p.page);
  assert.equal(shown.filter((m) => m.text === "실시간 메시지").length, 1);
  assert.ok(contiguous(shown));
  assert.deepEqual(p.problems, []);
  await p.context.close();
});

test("en: from a detached view, Jump to latest and writing both go to the live end", async () => {
  const writer = await newUser("logger", "Logger");
  const reader = await newUser("visitor", "Vic");
  const room = await createRoom(writer.token, "Logbook");
  await env.server.api("POST", `/rooms/${room.id}/join`, undefined, reader.token);
  for (let i = 1; i <= 80; i++) await post(writer.token, room.id, i === 10 ? "log 10 marker" : `log ${i}`);
  const p = await signedIn(reader.token, { locale: "en-US" });
  const openMarker = async () => {
    await p.page.getByTestId("open-search").click();
    await search(p.page, "marker");
    await p.page.locator("[data-testid=search-status]", { hasText: "1 message found" }).waitFor();
    const [hit] = await results(p.page);
    await p.page.getByTestId("search-input").press("ArrowDown");
    await p.page.getByTestId("search-input").press("Enter");
    await p.page.locator(`[data-testid=messages] li[data-seq="${hit.seq}"]`, { hasText: "log 10 marker" }).waitFor();
    await p.page.locator("[data-testid=chat][data-detached=true]").waitFor();
    return hit;
  };
  const contiguous = (list) => list.every((m, i) => i === 0 || m.seq === list[i - 1].seq + 1);

  await openMarker();
  await p.page.locator("[data-testid=new-messages]", { hasText: "Jump to latest" }).click();
  await p.page.locator("[data-testid=chat][data-detached=false]").waitFor();
  await p.page.locator("li.msg", { hasText: "log 80" }).waitFor();
  assert.equal(new URL(p.page.url()).hash, `#/rooms/${room.id}`);
  let shown = await shownMessages(p.page);
  assert.ok(contiguous(shown));
  assert.equal(shown[shown.length - 1].text, "log 80");

  // The same hit again, then a message written from there: shown at the live end, once.
  await openMarker();
  const composer = p.page.getByTestId("composer");
  await composer.fill("written from the past");
  await composer.press("Enter");
  await p.page.locator("[data-testid=chat][data-detached=false]").waitFor();
  await p.page.locator("li.msg.mine[data-seq]", { hasText: "written from the past" }).waitFor();
  await p.page.locator("li.pending").waitFor({ state: "detached" });
  shown = await shownMessages(p.page);
  assert.ok(contiguous(shown));
  assert.deepEqual(shown.slice(-2).map((m) => m.text), ["log 80", "written from the past"]);
  assert.equal(shown.filter((m) => m.text === "written from the past").length, 1);

  // Logging out forgets the search: the next user starts with an empty box.
  await p.page.getByTestId("logout").click();
  await signUp(p.page, `next_${serial}`, "long enough pass");
  await p.page.getByTestId("open-search").click();
  assert.equal(await p.page.getByTestId("search-input").inputValue(), "");
  assert.equal(await p.page.getByTestId("search-result").count(), 0);
  // Tab stays inside the open panel.
  for (let i = 0; i < 6; i++) await p.page.keyboard.press("Tab");
  assert.ok(await p.page.evaluate(() => !!document.activeElement?.closest("[data-testid=search]")));
  assert.deepEqual(p.problems, []);
  await p.context.close();
});
