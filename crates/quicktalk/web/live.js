// The real-time connection: @stomp/stompjs over the same-origin /ws endpoint.
// Owns reconnecting (exponential back-off), the visible status, and resuming:
// every watched room is re-subscribed with `since-seq` = the last seq seen, so a
// reconnect misses nothing and repeats nothing. Messages not yet acknowledged by
// a RECEIPT are sent again after a reconnect with the same `client_id`, which the
// server stores once. A RECEIPT means stored; an error event carrying the SEND's
// `receipt_id` means rejected, except `outcome_unknown` (maybe stored): that one
// is re-sent with the same `client_id` after a growing delay, up to
// RESEND_ATTEMPTS times, before the UI offers a retry control. A room whose
// replay the server refused for now (`too_many_replays`: a connection replays
// only so many rooms at once) is subscribed again a moment later.
// Activity (contract §8): whether the user has this page in front of them is
// sent to `/app/activity` right after every CONNECT and on every change, so the
// server pushes notifications only to users who are away.

/** Re-sends after `outcome_unknown` before giving up (then the user may retry). */
export const RESEND_ATTEMPTS = 4;
const RESEND_FIRST_MS = 500;
const RESEND_MAX_MS = 8000;
const RESUBSCRIBE_MS = 1000;

const { Client, ReconnectionTimeMode } = window.StompJs;

export class Live {
  /**
   * @param {string} token bearer token
   * @param {object} handlers {onStatus(status), onRoomEvent(roomId, body), onUserEvent(body),
   *   onError(body), onReceipt(clientId), onSendFailed(clientId, body, retryable), onAuthFailed(),
   *   onBanned()}
   */
  constructor(token, handlers) {
    this.h = handlers;
    this.rooms = new Map(); // roomId -> { lastSeq, sub }
    this.pending = new Map(); // client_id -> { roomId, text, attempts, timer }
    this.status = "connecting";
    this.everConnected = false;
    this.focused = null; // last activity state given by the app (null: none yet)
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.client = new Client({
      brokerURL: `${scheme}//${location.host}/ws`,
      connectHeaders: { Authorization: `Bearer ${token}` },
      heartbeatIncoming: 20000,
      heartbeatOutgoing: 20000,
      reconnectDelay: 500,
      maxReconnectDelay: 10000,
      reconnectTimeMode: ReconnectionTimeMode.EXPONENTIAL,
      debug: () => {},
    });
    this.client.onConnect = () => this.connected();
    this.client.onWebSocketClose = () => this.setStatus(this.everConnected ? "reconnecting" : "connecting");
    this.client.onStompError = (frame) => {
      const why = frame.headers.message || "";
      if (why.includes("unauthorized")) {
        // The token is being replaced (a guest upgrade): the old one may be refused meanwhile.
        if (this.reauthing) return;
        this.stop();
        this.h.onAuthFailed();
      } else if (why.includes("banned")) {
        // Banned (contract §5): reconnecting would only be refused again.
        this.stop();
        this.h.onBanned?.();
      }
    };
    this.client.activate();
  }

  setStatus(s) {
    if (this.status !== s) {
      this.status = s;
      this.h.onStatus(s);
    }
  }

  get live() {
    return this.client.connected;
  }

  connected() {
    this.everConnected = true;
    if (this.reauthing === "swapped") this.reauthing = false;
    this.client.subscribe("/user/queue/events", (m) => this.h.onUserEvent(JSON.parse(m.body)));
    this.client.subscribe("/user/queue/errors", (m) => this.error(JSON.parse(m.body)));
    for (const [roomId, w] of this.rooms) this.subscribeRoom(roomId, w);
    // Anything sent but not acknowledged before the drop goes again (same client_id).
    for (const [clientId, p] of this.pending) this.publish(clientId, p);
    this.sendActivity();
    this.setStatus("live");
  }

  subscribeRoom(roomId, w) {
    w.sub = this.client.subscribe(
      `/topic/rooms.${roomId}`,
      (m) => {
        const body = JSON.parse(m.body);
        if (body.type === "message") {
          // Replay and live hand over without duplicates; never go backwards.
          if (body.seq <= w.lastSeq) return;
          w.lastSeq = body.seq;
          if (body.client_id) this.pending.delete(body.client_id);
        }
        this.h.onRoomEvent(roomId, body);
      },
      { "since-seq": String(w.lastSeq) },
    );
  }

  /** Follows a room from `lastSeq` on (messages after it are replayed). */
  watch(roomId, lastSeq) {
    const w = this.rooms.get(roomId);
    if (w) {
      return;
    }
    const nw = { lastSeq: lastSeq || 0, sub: null };
    this.rooms.set(roomId, nw);
    if (this.client.connected) this.subscribeRoom(roomId, nw);
  }

  lastSeq(roomId) {
    const w = this.rooms.get(roomId);
    return w ? w.lastSeq : null;
  }

  unwatch(roomId) {
    const w = this.rooms.get(roomId);
    if (!w) return;
    this.rooms.delete(roomId);
    if (w.sub && this.client.connected) {
      try {
        w.sub.unsubscribe();
      } catch {
        /* the socket went away meanwhile */
      }
    }
  }

  /** Sends a chat message (text and media ids); it stays pending (and is re-sent) until stored. */
  send(roomId, text, clientId, attachments = []) {
    const p = { roomId, text, attachments, attempts: 0, timer: null };
    this.pending.set(clientId, p);
    this.publish(clientId, p);
  }

  /** Sends a failed message again (the user pressed retry): same client_id. */
  resend(clientId, roomId, text, attachments = []) {
    this.drop(clientId);
    this.send(roomId, text, clientId, attachments);
  }

  /** An error event: a rejected SEND of ours, or anything else for the app. */
  error(body) {
    if (body.code === "too_many_replays" && this.resubscribeLater(body.destination)) return;
    // A refused focus report (e.g. rate limited) is nothing the user can act on.
    if (body.destination === "/app/activity") return;
    const rid = body.receipt_id || "";
    const clientId = rid.startsWith("r-") ? rid.slice(2) : null;
    const p = clientId && this.pending.get(clientId);
    if (!p) {
      this.h.onError(body);
      return;
    }
    if (body.code === "outcome_unknown" && p.attempts < RESEND_ATTEMPTS) {
      // Maybe stored: the same client_id is stored at most once, so send again.
      const delay = Math.min(RESEND_FIRST_MS * 2 ** p.attempts, RESEND_MAX_MS);
      p.attempts += 1;
      p.timer = setTimeout(() => {
        p.timer = null;
        if (this.pending.get(clientId) === p) this.publish(clientId, p);
      }, delay);
      return;
    }
    this.drop(clientId);
    this.h.onSendFailed(clientId, body, body.code === "outcome_unknown");
  }

  /** Subscribes the watched room at `destination` again after a pause (with jitter). */
  resubscribeLater(destination) {
    const m = /^\/topic\/rooms\.(\d+)$/.exec(destination || "");
    const entry = m && [...this.rooms].find(([id]) => String(id) === m[1]);
    if (!entry) return false;
    const [roomId, w] = entry;
    setTimeout(() => {
      if (this.rooms.get(roomId) !== w || !this.client.connected) return;
      try {
        w.sub.unsubscribe();
      } catch {
        /* the socket went away meanwhile */
      }
      this.subscribeRoom(roomId, w);
    }, RESUBSCRIBE_MS * (1 + Math.random()));
    return true;
  }

  publish(clientId, p) {
    if (!this.client.connected) return;
    const receipt = `r-${clientId}`;
    this.client.watchForReceipt(receipt, () => {
      this.pending.delete(clientId);
      this.h.onReceipt(clientId);
    });
    this.client.publish({
      destination: `/app/rooms.${p.roomId}`,
      body: JSON.stringify(p.attachments.length ? { text: p.text, attachments: p.attachments, client_id: clientId } : { text: p.text, client_id: clientId }),
      headers: { receipt, "content-type": "application/json" },
    });
  }

  drop(clientId) {
    const p = this.pending.get(clientId);
    if (p && p.timer) clearTimeout(p.timer);
    this.pending.delete(clientId);
  }

  typing(roomId) {
    if (this.client.connected) this.client.publish({ destination: `/app/rooms.${roomId}.typing`, body: "" });
  }

  /** The page gained or lost the user's attention (visible and focused, or not). */
  setFocused(focused) {
    if (this.focused === focused) return;
    this.focused = focused;
    this.sendActivity();
  }

  sendActivity() {
    if (this.focused === null || !this.client.connected) return;
    this.client.publish({
      destination: "/app/activity",
      body: JSON.stringify({ focused: this.focused }),
      headers: { "content-type": "application/json" },
    });
  }

  match(action, body) {
    if (!this.client.connected) return false;
    this.client.publish({
      destination: `/app/match.${action}`,
      body: JSON.stringify(body || {}),
      headers: { "content-type": "application/json" },
    });
    return true;
  }

  /** The token is about to change (a guest upgrade): a refusal of the old one is expected. */
  expectReauth(on = true) {
    this.reauthing = on;
  }

  /** Connects again with a new token (the old one stopped working); rooms resume from their seqs. */
  reauth(token) {
    this.reauthing = "swapped";
    this.client.connectHeaders = { Authorization: `Bearer ${token}` };
    this.client.forceDisconnect();
  }

  stop() {
    this.client.deactivate();
    this.setStatus("offline");
  }
}
