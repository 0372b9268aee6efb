// The real-time connection: @stomp/stompjs over the same-origin /ws endpoint.
// Owns reconnecting (exponential back-off), the visible status, and resuming:
// every watched room is re-subscribed with `since-seq` = the last seq seen, so a
// reconnect misses nothing and repeats nothing. Messages not yet acknowledged by
// a RECEIPT are sent again after a reconnect with the same `client_id`, which the
// server stores once.

const { Client, ReconnectionTimeMode } = window.StompJs;

export class Live {
  /**
   * @param {string} token bearer token
   * @param {object} handlers {onStatus(status), onRoomEvent(roomId, body), onUserEvent(body),
   *   onError(body), onReceipt(clientId), onAuthFailed()}
   */
  constructor(token, handlers) {
    this.h = handlers;
    this.rooms = new Map(); // roomId -> { lastSeq, sub }
    this.pending = new Map(); // client_id -> { roomId, text, receipt }
    this.status = "connecting";
    this.everConnected = false;
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
      if ((frame.headers.message || "").includes("unauthorized")) {
        this.stop();
        this.h.onAuthFailed();
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
    this.client.subscribe("/user/queue/events", (m) => this.h.onUserEvent(JSON.parse(m.body)));
    this.client.subscribe("/user/queue/errors", (m) => this.h.onError(JSON.parse(m.body)));
    for (const [roomId, w] of this.rooms) this.subscribeRoom(roomId, w);
    // Anything sent but not acknowledged before the drop goes again (same client_id).
    for (const [clientId, p] of this.pending) this.publish(clientId, p);
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

  /** Sends a chat message; it stays pending (and is re-sent) until stored. */
  send(roomId, text, clientId) {
    const p = { roomId, text };
    this.pending.set(clientId, p);
    this.publish(clientId, p);
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
      body: JSON.stringify({ text: p.text, client_id: clientId }),
      headers: { receipt, "content-type": "application/json" },
    });
  }

  drop(clientId) {
    this.pending.delete(clientId);
  }

  typing(roomId) {
    if (this.client.connected) this.client.publish({ destination: `/app/rooms.${roomId}.typing`, body: "" });
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

  stop() {
    this.client.deactivate();
    this.setStatus("offline");
  }
}
