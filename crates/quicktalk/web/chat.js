// One room's conversation: history with scroll-back, live messages (merged by
// seq, so replay and live never double), join/leave notices, typing, the read
// cursor, the members panel and the composer. Used for rooms and random chats.
// Guests carry a badge next to their name; a click on a name opens its profile card.
// Moderation (issue 11): masked text carries a marker, a deleted message shows as
// a tombstone (live, on `message.deleted`, and in history), anyone may report a
// message of someone else, moderators may delete one, and a blocked SEND is
// explained on its pending bubble in the user's language.
// Files (issue 12): the composer's attach button, a paste or a drop onto the
// conversation put files in the tray (tray.js) while they upload; Send sends the
// text with their ids. Messages show their attachments (attachments.js).
// People (issue 13): avatars next to authors and members; a message from a user
// the reader blocked comes as `kind: "hidden"` (no text, no sender) and shows as
// a muted placeholder, keeping its seq; a direct room is titled with its peer.
// Push notifications: a member picks the room's level in the header.
// Search (issue 15): the header opens search in this room; a view opened on a
// search hit (`anchorSeq`) loads the page around it (`around_seq`), centres and
// highlights it, and is "detached" while newer messages exist than it holds:
// scrolling down loads them (`after_seq`) until it reaches the live end, live
// messages meanwhile are buffered (merged, by seq, once caught up), and the read
// cursor does not move (nothing is read until the live end is in view).

import { Api, moderates } from "./api.js";
import { h, clear, uid } from "./dom.js";
import { t, locale, errorText } from "./i18n.js";
import { guestTag, showProfile, closeProfile } from "./profile.js";
import { showReport, closeReport } from "./report.js";
import { renderAttachments, presign, closeLightbox } from "./attachments.js";
import { Tray } from "./tray.js";
import { avatar, people } from "./people.js";
import { levelSelect } from "./notify.js";

const PAGE = 50;
const MAX_TEXT = 4000;
const TYPING_SHOWN_MS = 4000;
// Above the server's one-per-second limit, so none is dropped.
const TYPING_SEND_EVERY_MS = 1500;

export class ChatView {
  /**
   * @param {object} app   {me, live, room(id), roomChanged(room), toast(text), navigate(hash)}
   * @param {object} room  room JSON
   * @param {object} opts  {header: Node|null (replaces the default header), readOnly: bool, onLeft(),
   *   anchorSeq: open around this seq (a search hit) instead of at the live end}
   */
  constructor(app, room, opts = {}) {
    this.app = app;
    this.room = room;
    this.opts = opts;
    this.bySeq = new Map();
    this.firstSeq = null;
    this.hasMore = false;
    this.loadingOlder = false;
    this.loaded = false;
    this.typing = new Map(); // userId -> {name, until}
    this.lastTypingSent = 0;
    this.readSent = 0;
    this.online = new Set();
    this.members = null;
    this.membersOpen = false;
    this.sentFiles = new Map(); // client_id -> media list of a pending message
    this.anchorSeq = opts.anchorSeq ?? null;
    this.hitSeq = null; // the search hit, highlighted until its animation ends
    this.hasMoreAfter = false; // newer messages exist than loaded: detached from the live end
    this.loadingNewer = false;
    this.liveBuffer = new Map(); // seq -> live message received while detached
    this.epoch = 0; // bumped when the loaded history is replaced
    this.el = this.build();
  }

  // ---------- structure ----------

  build() {
    const r = this.room;
    this.list = h("ol.messages", { "aria-live": "polite", "aria-label": r.name, "data-testid": "messages" });
    this.futureEdge = h("div.future-edge", { "data-testid": "future-edge" });
    this.scroller = h("div.scroller", { tabindex: "0", "data-testid": "scroller" }, h("div.history-edge"), this.list, this.futureEdge);
    this.edge = this.scroller.firstChild;
    // The search hit's highlight fades once (a re-render does not restart it).
    this.list.addEventListener("animationend", (e) => {
      if (!e.target.classList?.contains("hit")) return;
      e.target.classList.remove("hit");
      this.hitSeq = null;
    });
    this.scroller.addEventListener("scroll", () => this.onScroll());
    // A player (or an image of unknown size) that grows once loaded keeps a reader
    // who was at the bottom there.
    const keep = () => this.pinned && (this.scroller.scrollTop = this.scroller.scrollHeight);
    this.list.addEventListener("load", keep, true);
    this.list.addEventListener("loadedmetadata", keep, true);
    this.typingLine = h("div.typing", { "aria-live": "polite", "data-testid": "typing" });
    this.newBtn = h(
      "button.new-messages",
      { type: "button", hidden: true, "data-testid": "new-messages", onclick: () => (this.hasMoreAfter ? this.jumpToLive() : this.scrollToBottom()) },
      t("new_messages"),
    );
    this.composer = this.buildComposer();
    this.membersPanel = h("aside.members", { hidden: true, "aria-label": t("members"), "data-testid": "members" });
    const header = this.opts.header || this.buildHeader();
    const dropHint = this.tray ? h("div.drop-hint", { "aria-hidden": "true" }, t("drop_files")) : null;
    const main = h("div.chat-main", this.scroller, this.newBtn, this.typingLine, this.tray ? this.tray.el : null, this.composer, dropHint);
    if (this.tray) this.dropTarget(main);
    return h("section.chat", { "data-room": r.id, "data-testid": "chat" }, header, h("div.chat-body", main, this.membersPanel));
  }

  /** Files dropped onto the conversation go to the tray. */
  dropTarget(el) {
    const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
    let depth = 0;
    el.addEventListener("dragenter", (e) => {
      if (!hasFiles(e) || this.opts.readOnly) return;
      depth += 1;
      el.classList.add("dropping");
    });
    el.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) el.classList.remove("dropping");
    });
    el.addEventListener("dragover", (e) => {
      if (!hasFiles(e) || this.opts.readOnly) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
    });
    el.addEventListener("drop", (e) => {
      depth = 0;
      el.classList.remove("dropping");
      if (!e.dataTransfer?.files?.length || this.opts.readOnly) return;
      e.preventDefault();
      this.tray.add(e.dataTransfer.files);
    });
  }

  buildHeader() {
    const r = this.room;
    this.subtitle = h("span.subtitle", t("members_count", { n: r.member_count }));
    const actions = h("div.actions");
    this.membersBtn = h(
      "button.ghost",
      { type: "button", "aria-expanded": "false", "data-testid": "members-toggle", onclick: () => this.toggleMembers() },
      t("members"),
    );
    actions.append(this.membersBtn);
    if (this.app.openSearch) {
      const search = h(
        "button.ghost",
        { type: "button", "data-testid": "room-search", title: t("search_room"), "aria-label": t("search_room"), onclick: () => this.app.openSearch(this.room, search) },
        h("span", { "aria-hidden": "true" }, "🔍 "),
        t("search"),
      );
      actions.prepend(search);
    }
    if (r.kind === "group" && r.moderation) actions.prepend(this.policyControl());
    // How much of this room notifies me (contract §8): members only.
    if (r.member) actions.prepend(levelSelect(r, this.app.toast));
    if (r.member && r.kind === "group") {
      actions.append(h("button.ghost", { type: "button", "data-testid": "leave", onclick: () => this.leave() }, t("leave")));
    }
    const title = h("h2", { "data-testid": "room-title" }, r.name);
    let titles = h("div.titles", title, this.subtitle);
    if (r.kind === "direct") {
      // Titled with the other person: a click opens their card.
      this.subtitle.textContent = t("direct_sub");
      const face = h("span.avatar-slot");
      const btn = h("button.peer", { type: "button", "data-testid": "direct-peer" }, face, titles);
      titles = btn;
      people.peer(r).then((p) => {
        if (!p) return;
        title.textContent = p.display_name ?? p.name;
        face.append(avatar(p));
        btn.onclick = () => showProfile({ id: p.id, display_name: p.display_name ?? p.name, guest: p.guest, username: p.username ?? undefined }, btn);
      });
    }
    return h(
      "header.chat-header",
      h("button.back", { type: "button", "aria-label": t("back"), onclick: () => this.app.navigate("#/") }, "‹"),
      titles,
      actions,
    );
  }

  /** The room's moderation policy: a select for its creator and moderators, else a label. */
  policyControl() {
    const r = this.room;
    const me = this.app.me;
    if (r.created_by !== me.id && !moderates(me)) {
      return h("span.badge.policy", { "data-testid": "room-policy-label", title: t("moderation_policy") }, t(`policy_short_${r.moderation}`));
    }
    const sel = policySelect("room-policy", r.moderation, true);
    sel.setAttribute("aria-label", t("moderation_policy"));
    sel.addEventListener("change", async () => {
      const want = sel.value;
      try {
        const room = await Api.setRoomPolicy(r.id, want);
        this.room = { ...this.room, moderation: room.moderation };
        this.app.roomChanged({ id: r.id, moderation: room.moderation });
        this.app.toast(t("policy_changed", { policy: t(`policy_${room.moderation}`) }));
      } catch (e) {
        sel.value = this.room.moderation;
        this.app.toast(t("error_generic", { message: errorText(e) }));
      }
    });
    return h("label.policy-control", h("span.sr", t("moderation_policy")), sel);
  }

  buildComposer() {
    const r = this.room;
    if (!r.member) {
      return h(
        "div.composer.join-bar",
        h("span", t("join_to_write")),
        h("button.primary", { type: "button", "data-testid": "join", onclick: () => this.join() }, t("join")),
      );
    }
    this.input = h("textarea", {
      rows: "1",
      placeholder: t("message_placeholder"),
      "aria-label": t("message_label"),
      "data-testid": "composer",
      disabled: this.opts.readOnly || undefined,
    });
    this.counter = h("span.counter", { "aria-live": "polite" }, "");
    this.tray = new Tray(() => this.onInput(), this.app.toast);
    this.fileInput = h("input.file-input", {
      type: "file",
      multiple: true,
      tabindex: "-1",
      "aria-label": t("attach"),
      "data-testid": "attach-input",
      onchange: () => {
        if (this.fileInput.files.length) this.tray.add(this.fileInput.files);
        this.fileInput.value = "";
      },
    });
    this.attachBtn = h(
      "button.ghost.attach",
      {
        type: "button",
        "aria-label": t("attach"),
        title: t("attach"),
        "data-testid": "attach",
        disabled: this.opts.readOnly || undefined,
        onclick: () => this.fileInput.click(),
      },
      h("span", { "aria-hidden": "true" }, "📎"),
    );
    this.input.addEventListener("paste", (e) => {
      const files = e.clipboardData?.files;
      if (files && files.length && !this.opts.readOnly) {
        e.preventDefault();
        this.tray.add(files);
      }
    });
    this.sendBtn = h("button.primary", { type: "submit", "data-testid": "send", disabled: true }, t("send"));
    this.input.addEventListener("input", () => this.onInput());
    this.input.addEventListener("keydown", (e) => {
      // Enter sends; Shift+Enter is a new line; never while an IME is composing (Korean).
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.submit();
      }
    });
    return h(
      "form.composer",
      { onsubmit: (e) => (e.preventDefault(), this.submit()) },
      this.attachBtn,
      this.fileInput,
      this.input,
      h("div.composer-side", this.counter, this.sendBtn),
    );
  }

  setReadOnly(ro) {
    this.opts.readOnly = ro;
    if (this.input) {
      this.input.disabled = ro;
      this.attachBtn.disabled = ro;
      this.onInput();
    }
  }

  // ---------- history ----------

  async load() {
    if (this.anchorSeq !== null) return this.loadAround(this.anchorSeq);
    const page = await Api.messages(this.room.id, { limit: PAGE });
    this.hasMore = page.has_more;
    for (const m of page.messages) this.bySeq.set(m.seq, m);
    presign(page.messages);
    this.loaded = true;
    this.renderAll();
    this.scrollToBottom();
    const last = page.messages.length ? page.messages[page.messages.length - 1].seq : 0;
    this.app.live.watch(this.room.id, last);
    this.maybeRead();
  }

  /** Opens on a search hit: the page around `seq`, the hit centred and highlighted. */
  async loadAround(seq) {
    const page = await Api.messages(this.room.id, { around_seq: seq, limit: PAGE });
    this.hasMore = page.has_more;
    this.hasMoreAfter = page.has_more_after;
    for (const m of page.messages) this.bySeq.set(m.seq, m);
    presign(page.messages);
    this.hitSeq = seq;
    this.loaded = true;
    if (!this.hasMoreAfter) this.mergeBuffer();
    this.renderAll();
    this.scrollToSeq(seq);
    const last = page.messages.length ? page.messages[page.messages.length - 1].seq : 0;
    // Followed from the room's end when known: what lies between comes by paging.
    this.app.live.watch(this.room.id, Math.max(last, this.room.last_seq || 0));
    this.maybeRead();
  }

  /** Scrolls so that the message `seq` (or the nearest one after it) is in the middle. */
  scrollToSeq(seq) {
    const items = [...this.list.querySelectorAll("li[data-seq]")];
    const li = items.find((el) => Number(el.dataset.seq) >= seq) || items[items.length - 1];
    if (!li) return;
    const s = this.scroller;
    const delta = li.getBoundingClientRect().top - s.getBoundingClientRect().top;
    s.scrollTop += delta - Math.max(0, (s.clientHeight - li.offsetHeight) / 2);
    this.pinned = this.atBottom();
  }

  /** Detached: the next page of newer messages; at the live end, the buffered live ones join. */
  async loadNewer() {
    if (!this.hasMoreAfter || this.loadingNewer) return;
    const seqs = [...this.bySeq.keys()];
    const last = seqs.length ? Math.max(...seqs) : 0;
    this.loadingNewer = true;
    this.futureEdge.textContent = t("loading_newer");
    const epoch = this.epoch;
    try {
      const page = await Api.messages(this.room.id, { after_seq: last, limit: PAGE });
      // Jumped to the live end meanwhile: this page would leave a gap.
      if (epoch !== this.epoch) return;
      for (const m of page.messages) this.bySeq.set(m.seq, m);
      presign(page.messages);
      this.hasMoreAfter = page.has_more;
      if (!this.hasMoreAfter) this.mergeBuffer();
      // Appended below what the reader looks at: the scroll position stays.
      this.renderAll();
    } catch (e) {
      this.app.toast(t("error_generic", { message: e.message }));
    } finally {
      this.loadingNewer = false;
      this.renderEdge();
    }
    if (!this.hasMoreAfter) {
      this.app.caughtUp?.(this.room.id);
      this.pinned = this.atBottom();
      if (this.pinned) this.maybeRead();
    }
  }

  /** Leaves the detached part of history for the latest page (and the buffered live messages). */
  async jumpToLive() {
    try {
      const page = await Api.messages(this.room.id, { limit: PAGE });
      if (!this.hasMoreAfter) {
        // Caught up meanwhile (scrolling down): everything is here already.
        this.scrollToBottom();
        return;
      }
      this.epoch += 1;
      const first = page.messages.length ? page.messages[0].seq : 0;
      // What is already known at the live end stays (a message newer than this page among it).
      const known = [...this.bySeq].filter(([seq]) => seq >= first);
      this.bySeq = new Map();
      for (const m of page.messages) this.bySeq.set(m.seq, m);
      for (const [seq, m] of known) if (!this.bySeq.has(seq)) this.bySeq.set(seq, m);
      presign(page.messages);
      this.hasMore = page.has_more;
      this.hasMoreAfter = false;
      this.mergeBuffer(first);
      this.renderAll();
      this.app.caughtUp?.(this.room.id);
      this.scrollToBottom();
    } catch (e) {
      this.app.toast(t("error_generic", { message: e.message }));
    }
  }

  /** Caught up with the live end: the live messages received meanwhile join (by seq, once each). */
  mergeBuffer(minSeq = 0) {
    for (const [seq, m] of this.liveBuffer) if (seq >= minSeq && !this.bySeq.has(seq)) this.bySeq.set(seq, m);
    this.liveBuffer.clear();
  }

  async loadOlder() {
    if (!this.hasMore || this.loadingOlder || this.firstSeq === null) return;
    this.loadingOlder = true;
    this.edge.textContent = t("loading_older");
    const epoch = this.epoch;
    try {
      const page = await Api.messages(this.room.id, { before_seq: this.firstSeq, limit: PAGE });
      if (epoch !== this.epoch) return;
      const before = this.scroller.scrollHeight;
      for (const m of page.messages) this.bySeq.set(m.seq, m);
      presign(page.messages);
      this.hasMore = page.has_more;
      this.renderAll();
      // Keep what the reader was looking at in place.
      this.scroller.scrollTop += this.scroller.scrollHeight - before;
    } catch (e) {
      this.app.toast(t("error_generic", { message: e.message }));
    } finally {
      this.loadingOlder = false;
      this.renderEdge();
    }
  }

  onScroll() {
    this.pinned = this.atBottom();
    if (this.scroller.scrollTop < 120) this.loadOlder();
    if (this.hasMoreAfter && this.nearEnd()) this.loadNewer();
    if (this.atBottom()) {
      this.newBtn.hidden = true;
      this.maybeRead();
    }
  }

  /** At the bottom of the live end (never while detached from it). */
  atBottom() {
    if (this.hasMoreAfter) return false;
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
  }

  /** Near the bottom of what is loaded (detached: time to load newer). */
  nearEnd() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.pinned = true;
    this.newBtn.hidden = true;
    this.maybeRead();
  }

  renderEdge() {
    this.edge.textContent = this.hasMore ? "" : this.bySeq.size ? t("start_of_history") : t("no_messages_yet");
    if (!this.loadingNewer) this.futureEdge.textContent = "";
    this.futureEdge.hidden = !this.hasMoreAfter && !this.loadingNewer;
    this.el?.setAttribute("data-detached", String(this.hasMoreAfter));
    if (this.hasMoreAfter) {
      // Detached: a way back to the live end, saying whether anything new came.
      this.newBtn.hidden = false;
      this.newBtn.textContent = t(this.liveBuffer.size ? "new_messages" : "jump_latest");
    } else if (this.newBtn.textContent !== t("new_messages")) {
      this.newBtn.textContent = t("new_messages");
      this.newBtn.hidden = true;
    }
  }

  renderAll() {
    const seqs = [...this.bySeq.keys()].sort((a, b) => a - b);
    this.firstSeq = seqs.length ? seqs[0] : null;
    const pendings = [...this.list.querySelectorAll("li.pending")];
    clear(this.list);
    let prev = null;
    for (const s of seqs) {
      const m = this.bySeq.get(s);
      const node = this.renderMessage(m, prev);
      if (s === this.hitSeq) node.classList.add("hit");
      this.list.append(node);
      prev = m;
    }
    for (const p of pendings) this.list.append(p);
    this.renderEdge();
  }

  renderMessage(m, prev) {
    const mine = m.sender && m.sender.id === this.app.me.id;
    if (m.kind === "join" || m.kind === "leave" || m.kind === "system") {
      const text = m.kind === "system" ? m.text : t(m.kind === "join" ? "joined" : "left", { name: m.sender.name });
      return h("li.notice", { dataset: { seq: m.seq, kind: m.kind } }, text);
    }
    if (m.kind === "hidden") {
      return h("li.notice.hidden-msg", { dataset: { seq: m.seq, kind: m.kind, id: m.id }, "data-testid": "hidden-message" }, t("message_hidden"));
    }
    if (m.kind === "deleted") {
      return h("li.notice.deleted", { dataset: { seq: m.seq, kind: m.kind, id: m.id }, "data-testid": "deleted" }, t("message_deleted"));
    }
    const sameAuthor = prev && prev.kind === "text" && prev.sender.id === m.sender.id;
    const when = new Date(m.sent_at);
    const masked = m.masked
      ? h("span.masked-note", { "data-testid": "masked", title: t("masked_hint") }, t("masked"))
      : null;
    return h(
      "li.msg" + (mine ? ".mine" : ".theirs") + (m.masked ? ".masked" : ""),
      { dataset: { seq: m.seq, kind: m.kind, id: m.id } },
      !mine && !sameAuthor ? this.author(m.sender) : null,
      h(
        "div.bubble" + (m.attachments?.length ? ".has-files" : ""),
        m.text || !m.attachments?.length ? h("p.text", m.text) : null,
        renderAttachments(m.attachments),
        h("div.meta", masked, h("time", { datetime: m.sent_at, title: when.toLocaleString(locale()) }, formatTime(when))),
      ),
      this.messageTools(m, mine),
    );
  }

  /** Report (others' messages) and, for moderators, delete. */
  messageTools(m, mine) {
    const mod = moderates(this.app.me);
    if (mine && !mod) return null;
    const tools = h("div.msg-tools");
    if (!mine) {
      const report = h(
        "button.msg-tool",
        {
          type: "button",
          "data-testid": "report-message",
          "aria-label": t("report_message"),
          title: t("report_message"),
          onclick: () => showReport(m, report, this.app.toast),
        },
        "⚑",
      );
      tools.append(report);
    }
    if (mod) {
      tools.append(
        h(
          "button.msg-tool",
          {
            type: "button",
            "data-testid": "delete-message",
            "aria-label": t("delete_message"),
            title: t("delete_message"),
            onclick: async () => {
              if (!confirm(t("delete_message_confirm"))) return;
              try {
                await Api.deleteMessage(m.id);
                this.tombstone(m.seq);
              } catch (e) {
                this.app.toast(t("error_generic", { message: errorText(e) }));
              }
            },
          },
          "🗑",
        ),
      );
    }
    return tools;
  }

  /** The message at `seq` became a tombstone (deleted by a moderator). */
  tombstone(seq) {
    const m = this.bySeq.get(seq);
    if (!m || m.kind === "deleted") return;
    this.bySeq.set(seq, { ...m, kind: "deleted", text: "", masked: false, attachments: [] });
    if (this.loaded) this.renderAll();
  }

  /** A sender's name (with the guest badge); a click opens the profile card. */
  author(sender) {
    const btn = h(
      "button.author",
      { type: "button", "data-testid": "author", dataset: { userId: sender.id }, onclick: () => showProfile(sender, btn) },
      avatar(sender),
      h("span.author-name", sender.name),
      sender.guest ? guestTag() : null,
    );
    return btn;
  }

  // ---------- live ----------

  /** A room event from the live connection (already de-duplicated by seq). */
  onEvent(ev) {
    if (ev.type === "message") {
      if (this.bySeq.has(ev.seq)) return;
      if (this.anchorSeq !== null && (!this.loaded || this.hasMoreAfter)) {
        // Detached from the live end (or not loaded yet): kept until caught up.
        this.liveBuffer.set(ev.seq, ev);
        if (ev.client_id) {
          this.list.querySelector(`li.pending[data-client-id="${CSS.escape(ev.client_id)}"]`)?.remove();
          this.sentFiles.delete(ev.client_id);
        }
        if (!this.loaded) return;
        this.renderEdge();
        this.memberCount(ev);
        return;
      }
      const wasBottom = this.atBottom();
      this.bySeq.set(ev.seq, ev);
      if (ev.client_id) {
        this.list.querySelector(`li.pending[data-client-id="${CSS.escape(ev.client_id)}"]`)?.remove();
        this.sentFiles.delete(ev.client_id);
      }
      if (!this.loaded) return;
      const last = this.list.querySelector("li[data-seq]:last-of-type");
      const lastSeq = last ? Number(last.dataset.seq) : -1;
      if (ev.seq > lastSeq) {
        const prev = lastSeq >= 0 ? this.bySeq.get(lastSeq) : null;
        const node = this.renderMessage(ev, prev);
        const firstPending = this.list.querySelector("li.pending");
        this.list.insertBefore(node, firstPending);
        this.renderEdge();
      } else {
        this.renderAll();
      }
      if (ev.sender) this.typing.delete(ev.sender.id);
      this.renderTyping();
      const mine = ev.sender && ev.sender.id === this.app.me.id;
      if (wasBottom || mine) this.scrollToBottom();
      else this.newBtn.hidden = false;
      this.memberCount(ev);
    } else if (ev.type === "message.deleted") {
      const buffered = this.liveBuffer.get(ev.seq);
      if (buffered) this.liveBuffer.set(ev.seq, { ...buffered, kind: "deleted", text: "", masked: false, attachments: [] });
      this.tombstone(ev.seq);
    } else if (ev.type === "typing") {
      if (ev.user.id === this.app.me.id) return;
      this.typing.set(ev.user.id, { name: ev.user.name, until: Date.now() + TYPING_SHOWN_MS });
      this.renderTyping();
      setTimeout(() => this.renderTyping(), TYPING_SHOWN_MS + 50);
    } else if (ev.type === "presence") {
      this.online = new Set(ev.online.map((u) => u.id));
      this.renderMembers();
    }
  }

  memberCount(ev) {
    if (ev.kind !== "join" && ev.kind !== "leave") return;
    this.room.member_count = Math.max(0, (this.room.member_count || 0) + (ev.kind === "join" ? 1 : -1));
    if (this.subtitle && !this.membersOpen) this.subtitle.textContent = t("members_count", { n: this.room.member_count });
    this.refreshMembers();
  }

  renderTyping() {
    const now = Date.now();
    for (const [id, v] of this.typing) if (v.until <= now) this.typing.delete(id);
    const names = [...this.typing.values()].map((v) => v.name);
    this.typingLine.textContent =
      names.length === 0 ? "" : names.length === 1 ? t("typing_single", { name: names[0] }) : t("typing_many", { names: names.join(", ") });
  }

  // ---------- read cursor ----------

  maybeRead() {
    if (this.leaving || !this.loaded || !this.room.member || document.visibilityState !== "visible" || !this.atBottom()) return;
    const seqs = [...this.bySeq.keys()];
    const top = seqs.length ? Math.max(...seqs) : 0;
    if (top <= this.readSent) return;
    this.readSent = top;
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      if (this.leaving) return;
      const seq = this.readSent;
      Api.read(this.room.id, seq).catch(() => {
        // Not recorded (e.g. the server is restarting): the next chance sends it again.
        if (this.readSent === seq) this.readSent = 0;
      });
      this.app.markedRead(this.room.id, seq);
    }, 250);
  }

  // ---------- composer ----------

  onInput() {
    const n = [...this.input.value.trim()].length;
    const over = n > MAX_TEXT;
    const files = this.tray.ready().length;
    const busy = this.tray.busy();
    this.counter.textContent = busy
      ? t("wait_uploads")
      : n
        ? (over ? `${t("too_long")} · ` : "") + t("chars", { n, max: MAX_TEXT })
        : "";
    this.counter.classList.toggle("over", over);
    this.sendBtn.disabled = this.opts.readOnly || (n === 0 && files === 0) || over || busy;
    if (n) this.sendTyping();
  }

  /** At most one typing event per interval; a burst inside one still gets a
   * (trailing) event, so the other side always sees it. */
  sendTyping() {
    const wait = this.lastTypingSent + TYPING_SEND_EVERY_MS - Date.now();
    if (wait <= 0) {
      this.lastTypingSent = Date.now();
      this.app.live.typing(this.room.id);
    } else if (!this.typingTimer) {
      this.typingTimer = setTimeout(() => {
        this.typingTimer = null;
        if (this.input && this.input.value.trim()) this.sendTyping();
      }, wait + 10);
    }
  }

  submit() {
    const text = this.input.value.trim();
    if (this.tray.busy() || [...text].length > MAX_TEXT || this.opts.readOnly) return;
    if (!text && !this.tray.ready().length) return;
    const files = this.tray.takeReady();
    const clientId = uid();
    if (files.length) this.sentFiles.set(clientId, files);
    this.list.append(
      h(
        "li.msg.mine.pending",
        { dataset: { clientId } },
        h(
          "div.bubble",
          h("p.text", text),
          files.length ? h("ul.pending-files", files.map((f) => h("li", "📎 ", f.name))) : null,
          h("time", t("pending")),
        ),
      ),
    );
    this.app.live.send(this.room.id, text, clientId, files.map((f) => f.id));
    this.input.value = "";
    this.onInput();
    // Written from a detached part of history: back to the live end, where it shows.
    if (this.hasMoreAfter) this.jumpToLive();
    this.scrollToBottom();
    this.input.focus();
  }

  /** The server rejected a SEND (its `receipt_id` names the client_id), or its
   *  outcome stayed unknown after the automatic re-sends (`retryable`): then a
   *  retry button sends it again with the same client_id. */
  failed(clientId, err, retryable) {
    const li = this.list.querySelector(`li.pending[data-client-id="${CSS.escape(clientId)}"]`);
    if (!li) return;
    li.classList.add("failed");
    li.dataset.code = err.code || "";
    const time = li.querySelector("time");
    time.textContent = t("failed", { reason: errorText(err) });
    li.querySelector("button.retry")?.remove();
    if (err.code === "moderated") {
      // Blocked by moderation: say why, and let the sender rewrite it.
      li.querySelector("div.bubble").append(
        h("p.blocked-note", { "data-testid": "blocked-note" }, t("blocked_explained")),
        h(
          "button.retry.ghost",
          {
            type: "button",
            "data-testid": "edit-blocked",
            onclick: () => {
              if (!this.input) return;
              this.input.value = li.querySelector("p.text").textContent;
              this.tray.restore(this.sentFiles.get(clientId) || []);
              this.sentFiles.delete(clientId);
              li.remove();
              this.onInput();
              this.input.focus();
            },
          },
          t("edit_message"),
        ),
      );
      return;
    }
    if (!retryable) return;
    const text = li.querySelector("p.text").textContent;
    const roomId = this.room.id;
    const retry = h(
      "button.retry.ghost",
      {
        type: "button",
        "data-testid": "retry",
        onclick: () => {
          retry.remove();
          li.classList.remove("failed");
          time.textContent = t("pending");
          this.app.live.resend(clientId, roomId, text, (this.sentFiles.get(clientId) || []).map((f) => f.id));
        },
      },
      t("retry"),
    );
    li.querySelector("div.bubble").append(retry);
  }

  // ---------- membership ----------

  async join() {
    try {
      const room = await Api.join(this.room.id);
      this.app.roomChanged({ ...room, member: true });
      this.app.reopen(this.room.id);
    } catch (e) {
      this.app.toast(t("error_generic", { message: e.message }));
    }
  }

  async leave() {
    // No read report may follow: the own leave notice can arrive before the
    // answer, and a report sent after it is refused (not a member any more).
    this.leaving = true;
    clearTimeout(this.readTimer);
    try {
      await Api.leave(this.room.id);
      this.app.roomLeft(this.room.id);
    } catch (e) {
      this.leaving = false;
      this.app.toast(t("error_generic", { message: e.message }));
    }
  }

  toggleMembers() {
    this.membersOpen = !this.membersOpen;
    this.membersPanel.hidden = !this.membersOpen;
    this.membersBtn?.setAttribute("aria-expanded", String(this.membersOpen));
    if (this.membersOpen) this.refreshMembers();
  }

  async refreshMembers() {
    if (!this.membersOpen) return;
    try {
      const res = await Api.members(this.room.id);
      this.members = res.members;
      for (const m of res.members) if (m.online) this.online.add(m.id);
      this.renderMembers();
    } catch (e) {
      this.app.toast(t("error_generic", { message: e.message }));
    }
  }

  renderMembers() {
    if (!this.members) return;
    const items = this.members.map((m) => {
      const on = this.online.has(m.id);
      const profile = { id: m.id, display_name: m.name, guest: m.guest, username: m.username };
      const btn = h(
        "button.member",
        { type: "button", "data-testid": "member", dataset: { userId: m.id }, onclick: () => showProfile(profile, btn) },
        avatar("avatar_url" in m ? { ...m } : { id: m.id, name: m.name }),
        h("span.name", m.name),
        m.guest ? guestTag() : null,
      );
      return h(
        "li",
        { dataset: { online: String(on) } },
        h("span.dot" + (on ? ".on" : ""), { "aria-hidden": "true" }),
        btn,
        h("span.sr", on ? t("online") : t("offline")),
      );
    });
    clear(this.membersPanel, h("h3", t("members")), h("ul", items));
    if (this.subtitle) this.subtitle.textContent = t("members_count", { n: this.members.length });
  }

  destroy() {
    closeProfile();
    closeReport();
    closeLightbox();
    this.tray?.destroy();
    clearTimeout(this.readTimer);
    clearTimeout(this.typingTimer);
  }
}

/** A group room's moderation policy: off / standard / strict (contract §5). */
export function policySelect(id, value, short = false) {
  return h(
    "select",
    { id, "data-testid": id },
    ["standard", "strict", "off"].map((p) =>
      h("option", { value: p, selected: p === value, title: t(`policy_${p}`) }, t(short ? `policy_short_${p}` : `policy_${p}`)),
    ),
  );
}

export function formatTime(d) {
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  const opts = sameDay ? { hour: "numeric", minute: "2-digit" } : { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
  return new Intl.DateTimeFormat(locale(), opts).format(d);
}
