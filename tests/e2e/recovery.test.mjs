// The server restarts mid-chat: the page shows it is reconnecting, comes back
// by itself, and recovers with since-seq: nothing lost, nothing doubled, even
// for a message typed while the server was down.

import assert from "node:assert/strict";
import { test } from "node:test";
import { useServerAndBrowser, openPage, signUp, say, shownMessages } from "./harness.mjs";

const env = useServerAndBrowser();

test("a server restart mid-chat loses and doubles nothing", async () => {
  const a = await openPage(env.browser, env.server);
  await signUp(a.page, "restart_a", "long enough pass", "Ana");
  await a.page.getByTestId("new-room").click();
  await a.page.getByTestId("room-name").fill("Resilient");
  await a.page.getByTestId("create-submit").click();
  await a.page.locator("[data-testid=room-title]", { hasText: "Resilient" }).waitFor();
  const roomId = Number(await a.page.locator("[data-testid=chat]").getAttribute("data-room"));
  const { token } = await env.server.api("POST", "/auth/signup", { username: "restart_b", password: "long enough pass", display_name: "Ben" });
  await env.server.api("POST", `/rooms/${roomId}/join`, undefined, token);
  for (const text of ["before 1", "before 2"]) await env.server.api("POST", `/rooms/${roomId}/messages`, { text }, token);
  await say(a.page, "mine before");
  await a.page.locator("li.msg.mine[data-seq]", { hasText: "mine before" }).waitFor();
  await a.page.locator("li.msg", { hasText: "before 2" }).waitFor();

  // Down: the page says so; a message written now waits (pending) for the socket.
  // Expected while the server is down: the socket's reconnect attempts, and a
  // REST call (a read cursor) that may leave just as it stops.
  a.allow(/WebSocket connection to .* failed/);
  a.allow(/Failed to load resource: net::ERR_CONNECTION_REFUSED/);
  await env.server.stop();
  await a.page.locator("[data-testid=status][data-status=reconnecting]").waitFor();
  await say(a.page, "typed while down");
  await a.page.locator("li.msg.pending", { hasText: "typed while down" }).waitFor();

  // Up again on the same port and data; others post before the page is back.
  await env.server.start(env.server.port);
  for (const text of ["after 1", "after 2", "after 3"]) await env.server.api("POST", `/rooms/${roomId}/messages`, { text }, token);
  await a.page.locator("[data-testid=status][data-status=live]").waitFor({ timeout: 20000 });
  await a.page.locator("li.msg", { hasText: "after 3" }).waitFor();
  await a.page.locator("li.msg.mine[data-seq]", { hasText: "typed while down" }).waitFor();
  await env.server.api("POST", `/rooms/${roomId}/messages`, { text: "live again" }, token);
  await a.page.locator("li.msg", { hasText: "live again" }).waitFor();

  const shown = (await shownMessages(a.page)).filter((m) => m.kind === "text").map((m) => m.text);
  const stored = (await env.server.api("GET", `/rooms/${roomId}/messages?limit=200`, undefined, token)).messages;
  // Exactly what the server stored, in order, each once.
  assert.deepEqual(shown, stored.filter((m) => m.kind === "text").map((m) => m.text));
  for (const t of ["before 1", "mine before", "typed while down", "after 1", "after 3", "live again"]) {
    assert.equal(shown.filter((x) => x === t).length, 1, `${t} shown once`);
  }
  const seqs = (await shownMessages(a.page)).map((m) => m.seq);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), "gapless from 1");
  assert.equal(await a.page.locator("li.pending").count(), 0);
  assert.deepEqual(a.problems, []);
  await a.context.close();
});
