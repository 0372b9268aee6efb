// Contract v2 in the web UI: a SEND whose outcome is unknown (`outcome_unknown`)
// is re-sent with the same client_id, with back-off, instead of being shown as
// failed; after the last attempt a retry control appears; a rejection
// (`moderated`…) is shown to the sender in their language. The socket is routed
// through page.routeWebSocket, which swallows chosen SENDs and answers them with
// an injected error event, as a timed-out pipeline would.

import assert from "node:assert/strict";
import { test } from "node:test";
import { useServerAndBrowser, openPage, signUp, say, shownMessages, stompFrames } from "./harness.mjs";

const env = useServerAndBrowser();


/**
 * Routes the page's /ws through a proxy. `decide(body)` for each room SEND:
 * "pass", or an error code to answer with instead (the SEND never reaches the
 * server). Returns counters of what happened.
 */
async function proxy(page, decide) {
  const seen = { swallowed: 0, passed: 0 };
  await page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    let errorsSub = null;
    ws.onMessage((data) => {
      for (const f of stompFrames(data)) {
        if (f.command === "SUBSCRIBE" && f.headers.destination === "/user/queue/errors") errorsSub = f.headers.id;
        if (f.command === "SEND" && /^\/app\/rooms\.\d+$/.test(f.headers.destination)) {
          const code = decide(JSON.parse(f.body));
          if (code !== "pass" && errorsSub) {
            seen.swallowed += 1;
            const body = JSON.stringify({
              type: "error",
              code,
              message: `injected ${code}`,
              destination: f.headers.destination,
              receipt_id: f.headers.receipt,
            });
            ws.send(
              `MESSAGE\ndestination:/user/queue/errors\nsubscription:${errorsSub}\nmessage-id:inj-${seen.swallowed}\ncontent-type:application/json\n\n${body}\0`,
            );
            return;
          }
          seen.passed += 1;
        }
      }
      server.send(data);
    });
    server.onMessage((data) => ws.send(data));
  });
  return seen;
}

async function openRoom(p, user, name) {
  await signUp(p.page, user, "long enough pass", name);
  await p.page.getByTestId("new-room").click();
  await p.page.getByTestId("room-name").fill(`${name} room`);
  await p.page.getByTestId("create-submit").click();
  await p.page.locator("[data-testid=room-title]", { hasText: `${name} room` }).waitFor();
}

test("outcome_unknown is re-sent with the same client_id and stored once (en)", async () => {
  const p = await openPage(env.browser, env.server, { locale: "en-US" });
  const unknownFor = new Map(); // client_id -> times answered outcome_unknown
  const seen = await proxy(p.page, (body) => {
    if (!body.text.startsWith("flaky")) return "pass";
    const n = unknownFor.get(body.client_id) || 0;
    if (n >= 2) return "pass";
    unknownFor.set(body.client_id, n + 1);
    return "outcome_unknown";
  });
  await openRoom(p, "outcome_en", "Una");
  await say(p.page, "flaky one");
  await p.page.locator("li.msg.mine[data-seq]", { hasText: "flaky one" }).waitFor({ timeout: 15000 });
  assert.equal(seen.swallowed, 2, "two attempts answered outcome_unknown");
  assert.equal([...unknownFor.keys()].length, 1, "every attempt carried the same client_id");
  assert.equal(await p.page.locator("li.failed").count(), 0);
  assert.equal(await p.page.locator("li.pending").count(), 0);
  const shown = (await shownMessages(p.page)).filter((m) => m.kind === "text").map((m) => m.text);
  assert.deepEqual(shown, ["flaky one"]);
  assert.deepEqual(p.problems, []);
  await p.context.close();
});

test("after the last re-send a retry control appears; rejections are shown in the user's language (ko)", async () => {
  const p = await openPage(env.browser, env.server, { locale: "ko-KR" });
  let unknownAlways = true;
  const seen = await proxy(p.page, (body) => {
    if (body.text.startsWith("blocked")) return "moderated";
    if (body.text.startsWith("flaky") && unknownAlways) return "outcome_unknown";
    return "pass";
  });
  await openRoom(p, "outcome_ko", "민수");

  await say(p.page, "blocked words");
  const blocked = p.page.locator("li.failed", { hasText: "blocked words" });
  await blocked.waitFor();
  assert.match(await blocked.locator("time").textContent(), /운영 정책에 따라 차단되었습니다/);
  assert.equal(await blocked.getByTestId("retry").count(), 0, "a rejection is final");

  await say(p.page, "flaky forever");
  const failed = p.page.locator("li.failed", { hasText: "flaky forever" });
  await failed.waitFor({ timeout: 20000 });
  assert.equal(seen.swallowed, 1 + 5, "the first send and four re-sends");
  assert.match(await failed.locator("time").textContent(), /전송 여부를 확인하지 못했습니다/);
  const retry = failed.getByTestId("retry");
  assert.equal(await retry.textContent(), "다시 시도");

  unknownAlways = false;
  await retry.click();
  await p.page.locator("li.msg.mine[data-seq]", { hasText: "flaky forever" }).waitFor();
  const shown = (await shownMessages(p.page)).filter((m) => m.kind === "text").map((m) => m.text);
  assert.deepEqual(shown, ["flaky forever"]);
  assert.deepEqual(p.problems, []);
  await p.context.close();
});
