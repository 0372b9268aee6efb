// A room whose `since-seq` replay the server turns down for now
// (`too_many_replays`: a connection replays only so many rooms at once) is
// subscribed again a moment later, so its messages still arrive; the user sees
// no error for it. The socket is routed through page.routeWebSocket, which
// answers the room's first SUBSCRIBE with that error event instead of passing it.

import assert from "node:assert/strict";
import { test } from "node:test";
import { useServerAndBrowser, openPage, signUp, stompFrames } from "./harness.mjs";

const env = useServerAndBrowser();


async function api(path, token, body) {
  const res = await fetch(env.server.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body || {}),
  });
  const text = await res.text();
  assert.ok(res.ok, `${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

for (const [locale, who] of [
  ["en-US", "Ada"],
  ["ko-KR", "지수"],
]) {
  test(`a room refused too_many_replays is subscribed again and stays live (${locale})`, async () => {
    const p = await openPage(env.browser, env.server, { locale });
    const subscribes = new Map(); // destination -> SUBSCRIBE frames seen
    let refused = null;
    await p.page.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      let errorsSub = null;
      ws.onMessage((data) => {
        for (const f of stompFrames(data)) {
          if (f.command !== "SUBSCRIBE") continue;
          const dest = f.headers.destination;
          if (dest === "/user/queue/errors") errorsSub = f.headers.id;
          subscribes.set(dest, (subscribes.get(dest) || 0) + 1);
          if (/^\/topic\/rooms\.\d+$/.test(dest) && f.headers["since-seq"] !== undefined && !refused && errorsSub) {
            refused = dest;
            const body = JSON.stringify({ type: "error", code: "too_many_replays", message: "injected", destination: dest });
            ws.send(
              `MESSAGE\ndestination:/user/queue/errors\nsubscription:${errorsSub}\nmessage-id:inj-1\ncontent-type:application/json\n\n${body}\0`,
            );
            return; // this message held only the refused SUBSCRIBE
          }
        }
        server.send(data);
      });
      server.onMessage((data) => ws.send(data));
    });
    const user = `resub_${locale.slice(0, 2)}`;
    await signUp(p.page, user, "long enough pass", who);
    await p.page.getByTestId("new-room").click();
    await p.page.getByTestId("room-name").fill(`${who} room`);
    await p.page.getByTestId("create-submit").click();
    await p.page.locator("[data-testid=room-title]", { hasText: `${who} room` }).waitFor();

    // The refused subscription is made again within a few seconds.
    const deadline = Date.now() + 10000;
    while (!(refused && subscribes.get(refused) >= 2) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(refused, "a room SUBSCRIBE with since-seq was seen");
    assert.ok(subscribes.get(refused) >= 2, `subscribed again: ${JSON.stringify([...subscribes])}`);

    // Someone else posts: it arrives live in the open conversation.
    const roomId = Number(refused.split(".").pop());
    const other = await api("/api/v1/auth/signup", null, { username: `${user}_b`, password: "long enough pass" });
    await api(`/api/v1/rooms/${roomId}/join`, other.token);
    await api(`/api/v1/rooms/${roomId}/messages`, other.token, { text: "still live" });
    await p.page.locator("[data-testid=messages] li[data-seq]", { hasText: "still live" }).waitFor();
    assert.deepEqual(p.problems, []);
    await p.context.close();
  });
}
