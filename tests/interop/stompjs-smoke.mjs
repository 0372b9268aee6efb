// Interop smoke test: the stock @stomp/stompjs client against a running QuickTalk.
//
//   node stompjs-smoke.mjs WS_URL TOKEN ROOM_ID
//
// Connects with a bearer token, subscribes to the room's topic, publishes one
// message with a receipt, and waits until both the RECEIPT and its own message
// (as a `type: "message"` MESSAGE frame) have arrived. Prints one JSON line with
// what it saw and exits 0; exits 1 with a reason on any failure or after 15 s.

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const TIMEOUT_MS = 15_000;
const TEXT = 'hello from stomp.js';

const [url, token, roomId] = process.argv.slice(2);
if (!url || !token || !roomId) {
  console.error('usage: node stompjs-smoke.mjs WS_URL TOKEN ROOM_ID');
  process.exit(2);
}

const seen = {
  connected: false,
  server: null,
  heartBeat: null,
  receipt: false,
  presence: 0,
  message: null,
  frames: [],
};

let finished = false;
let client;

function finish(code, reason) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  if (code === 0) {
    console.log(JSON.stringify({ ok: true, ...seen }));
  } else {
    console.error(`stompjs-smoke: FAILED: ${reason}`);
    console.error(JSON.stringify({ ok: false, reason, ...seen }));
  }
  // Deactivate politely, but never let a hanging close keep us alive.
  const hard = setTimeout(() => process.exit(code), 2_000);
  hard.unref();
  Promise.resolve(client && client.deactivate())
    .catch(() => {})
    .finally(() => process.exit(code));
}

const timer = setTimeout(
  () => finish(1, `timed out after ${TIMEOUT_MS} ms`),
  TIMEOUT_MS,
);

function maybeDone() {
  if (seen.receipt && seen.message) finish(0);
}

client = new Client({
  webSocketFactory: () => new WebSocket(url, ['v12.stomp']),
  connectHeaders: { Authorization: `Bearer ${token}` },
  reconnectDelay: 0, // one attempt: a failure must fail the test
  heartbeatIncoming: 10_000,
  heartbeatOutgoing: 10_000,
  debug: () => {},
});

client.onConnect = (frame) => {
  seen.connected = true;
  seen.server = frame.headers.server ?? null;
  seen.heartBeat = frame.headers['heart-beat'] ?? null;

  const destination = `/topic/rooms.${roomId}`;
  client.subscribe(destination, (msg) => {
    let body;
    try {
      body = JSON.parse(msg.body);
    } catch (e) {
      finish(1, `MESSAGE body is not JSON: ${JSON.stringify(msg.body)}`);
      return;
    }
    seen.frames.push(body.type);
    if (msg.headers['content-type'] !== 'application/json') {
      finish(1, `MESSAGE content-type is ${msg.headers['content-type']}`);
      return;
    }
    if (body.type === 'presence') seen.presence += 1;
    if (body.type === 'message' && body.text === TEXT) {
      seen.message = {
        seq: body.seq,
        room_id: body.room_id,
        kind: body.kind,
        sender: body.sender,
        text: body.text,
        sent_at: body.sent_at,
      };
      maybeDone();
    }
  });

  const receiptId = `stompjs-send-${process.pid}`;
  client.watchForReceipt(receiptId, () => {
    seen.receipt = true;
    maybeDone();
  });
  client.publish({
    destination: `/app/rooms.${roomId}`,
    body: JSON.stringify({ text: TEXT }),
    headers: { 'content-type': 'application/json', receipt: receiptId },
  });
};

client.onStompError = (frame) => {
  finish(1, `STOMP ERROR: ${frame.headers.message ?? ''} ${frame.body ?? ''}`.trim());
};
client.onWebSocketError = (ev) => {
  finish(1, `WebSocket error: ${ev?.message ?? ev}`);
};
client.onWebSocketClose = (ev) => {
  finish(1, `WebSocket closed early (code ${ev?.code})`);
};

client.activate();
