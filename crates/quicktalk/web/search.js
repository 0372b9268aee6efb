// History search (issue 15, contract §9): a panel over the app, opened from the
// header (all my rooms) or from a room's header (this room, with a switch to
// widen it to all my rooms). A search runs on Enter or the Search button, never
// while an IME composition (Korean) is in progress, and the Enter that ends a
// composition does not search. Results come newest first with the room, the
// sender, the time and the text with each match marked (built as DOM nodes,
// never parsed as HTML); "More" loads the next page. ArrowUp/ArrowDown move the
// selection, Enter opens it, Escape closes. Opening a hit asks the app to show
// its room around that message (`#/rooms/ID/at/SEQ`, see chat.js).

import { Api } from "./api.js";
import { h, clear } from "./dom.js";
import { t, locale, errorText } from "./i18n.js";
import { formatTime } from "./chat.js";

const PAGE = 20;
/** Longer texts are cut to about this many characters around the first match. */
const SNIPPET = 240;
const SNIPPET_BEFORE = 60;

let current = null; // the open panel
// What the last panel showed, restored when search opens again with the same scope.
let memory = { value: "", scope: null, query: "", results: [], cursor: null };

/**
 * Opens the search panel (closing one already open).
 * @param {object} ctx  {openHit(roomId, seq), roomLabel(room) → string}
 * @param {object} opts {room: {id, name} | null (all my rooms), opener: Element to refocus on close}
 */
export function openSearch(ctx, opts = {}) {
  closeSearch();
  current = new SearchPanel(ctx, opts);
  document.body.append(current.el);
  current.input.focus();
  current.input.select();
}

export function closeSearch() {
  if (!current) return;
  const p = current;
  current = null;
  p.destroy();
}

/** Closes search and forgets its last query and results (logging out). */
export function forgetSearch() {
  closeSearch();
  memory = { value: "", scope: null, query: "", results: [], cursor: null };
}

export function searchIsOpen() {
  return current !== null;
}

class SearchPanel {
  constructor(ctx, { room = null, opener = null }) {
    this.ctx = ctx;
    this.room = room;
    this.opener = opener || document.activeElement;
    this.all = !room;
    this.query = ""; // the query whose results are shown
    this.results = []; // [{message, room}]
    this.cursor = null;
    this.selected = -1;
    this.gen = 0; // answers of an older request are dropped
    this.composing = false;
    this.compositionJustEnded = false;
    this.retryTimer = null;
    this.el = this.build();
    if (memory.scope === this.scope() && memory.query) {
      this.query = memory.query;
      this.results = memory.results;
      this.cursor = memory.cursor;
      this.renderResults();
    }
  }

  scope() {
    return this.all ? "all" : `room:${this.room.id}`;
  }

  build() {
    this.input = h("input.search-input", {
      type: "search",
      id: "search-q",
      value: memory.value,
      autocomplete: "off",
      enterkeyhint: "search",
      spellcheck: "false",
      role: "combobox",
      "aria-expanded": "false",
      "aria-controls": "search-results",
      "aria-autocomplete": "list",
      "aria-label": t("search_label"),
      placeholder: this.placeholder(),
      "data-testid": "search-input",
    });
    this.input.addEventListener("compositionstart", () => {
      this.composing = true;
    });
    this.input.addEventListener("compositionend", () => {
      this.composing = false;
      // Some browsers send the Enter that committed the text right after this.
      this.compositionJustEnded = true;
      setTimeout(() => (this.compositionJustEnded = false), 0);
    });
    this.input.addEventListener("input", () => {
      memory.value = this.input.value;
      if (this.selected >= 0) this.select(-1);
    });
    this.status = h("p.search-status", { role: "status", "aria-live": "polite", "data-testid": "search-status" });
    this.error = h("div.search-error", { role: "alert", hidden: true, "data-testid": "search-error" });
    this.list = h("ul.search-results", { id: "search-results", role: "listbox", "aria-label": t("search_results"), "data-testid": "search-results" });
    this.moreBtn = h("button.ghost.search-more", { type: "button", hidden: true, "data-testid": "search-more", onclick: () => this.fetchPage(true) }, t("search_more"));
    this.scopeHint = h("span.search-scope-hint", { "data-testid": "search-scope" }, this.scopeText());
    let scopeRow = h("div.search-scope", this.scopeHint);
    if (this.room) {
      this.allBox = h("input", {
        type: "checkbox",
        checked: this.all || undefined,
        "data-testid": "search-all",
        onchange: () => {
          this.all = this.allBox.checked;
          this.scopeHint.textContent = this.scopeText();
          this.input.placeholder = this.placeholder();
          if (this.input.value.trim()) this.run();
          this.input.focus();
        },
      });
      scopeRow = h("div.search-scope", this.scopeHint, h("label.check", this.allBox, h("span", t("search_all_rooms"))));
    }
    const form = h(
      "form.search-form",
      {
        role: "search",
        onsubmit: (e) => {
          e.preventDefault();
          if (this.composing) return;
          this.run();
        },
      },
      h("span.search-icon", { "aria-hidden": "true" }, "🔍"),
      this.input,
      h("button.primary", { type: "submit", "data-testid": "search-submit" }, t("search")),
    );
    const panel = h(
      "section.search-panel",
      { role: "dialog", "aria-modal": "true", "aria-label": t("search_title"), "data-testid": "search" },
      h(
        "header.search-head",
        h("h2", t("search_title")),
        h("button.ghost.search-close", { type: "button", "aria-label": t("search_close"), title: t("search_close"), "data-testid": "search-close", onclick: () => closeSearch() }, "✕"),
      ),
      form,
      scopeRow,
      this.status,
      h("div.search-body", this.list, this.error, this.moreBtn),
      h("p.hint.search-keys", t("search_keys")),
    );
    panel.addEventListener("keydown", (e) => this.onKey(e));
    const backdrop = h("div.search-backdrop", { onclick: (e) => e.target === backdrop && closeSearch() }, panel);
    return backdrop;
  }

  placeholder() {
    return this.all ? t("search_placeholder_all") : t("search_placeholder_room", { room: this.room.name });
  }

  scopeText() {
    return this.all ? t("search_in_all") : t("search_in_room", { room: this.room.name });
  }

  onKey(e) {
    // Keys that belong to an IME composition (Korean) are the IME's.
    const composing = this.composing || e.isComposing || e.keyCode === 229;
    if (e.key === "Tab") {
      // The focus stays in the panel (it is modal).
      const focusable = [...this.el.querySelectorAll("input, button, [tabindex]")].filter((x) => !x.disabled && !x.hidden && x.offsetParent !== null);
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      if (e.shiftKey && document.activeElement === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault();
        first.focus();
      }
      return;
    }
    if (e.key === "Escape") {
      if (composing) return;
      e.preventDefault();
      e.stopPropagation();
      closeSearch();
      return;
    }
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (composing || !this.results.length) return;
      e.preventDefault();
      const next = e.key === "ArrowDown" ? this.selected + 1 : this.selected - 1;
      this.select(Math.max(0, Math.min(this.results.length - 1, next)));
      return;
    }
    if (e.key === "Enter" && e.target === this.input) {
      if (composing || this.compositionJustEnded) {
        // Not a search; and no implicit form submission either (unless the IME owns the key).
        if (!e.isComposing && e.keyCode !== 229) e.preventDefault();
        return;
      }
      e.preventDefault();
      if (this.selected >= 0) this.open(this.selected);
      else this.run();
    }
  }

  select(i) {
    this.selected = i;
    const items = this.list.children;
    for (let k = 0; k < items.length; k++) {
      const on = k === i;
      items[k].setAttribute("aria-selected", String(on));
      items[k].classList.toggle("selected", on);
    }
    if (i >= 0 && items[i]) {
      this.input.setAttribute("aria-activedescendant", items[i].id);
      items[i].scrollIntoView({ block: "nearest" });
    } else {
      this.input.removeAttribute("aria-activedescendant");
    }
  }

  /** A new search with what the box says. */
  run() {
    const q = this.input.value.trim();
    memory.value = this.input.value;
    if (!q) {
      this.input.focus();
      return;
    }
    this.query = q;
    this.results = [];
    this.cursor = null;
    this.selected = -1;
    clear(this.list);
    this.moreBtn.hidden = true;
    this.fetchPage(false);
  }

  async fetchPage(more) {
    const gen = ++this.gen;
    clearTimeout(this.retryTimer);
    this.hideError();
    this.moreBtn.disabled = true;
    this.status.dataset.state = "loading";
    this.status.textContent = t(more ? "search_loading_more" : "search_loading");
    try {
      const res = await Api.search({
        q: this.query,
        room_id: this.all ? undefined : this.room.id,
        limit: PAGE,
        cursor: more ? this.cursor : undefined,
      });
      if (gen !== this.gen || current !== this) return;
      this.results = this.results.concat(res.results);
      this.cursor = res.next_cursor || null;
      memory = { value: this.input.value, scope: this.scope(), query: this.query, results: this.results, cursor: this.cursor };
      this.renderResults(more);
    } catch (e) {
      if (gen !== this.gen || current !== this) return;
      this.showError(e, more);
    } finally {
      if (gen === this.gen) this.moreBtn.disabled = false;
    }
  }

  renderResults(appended = false) {
    const from = appended ? this.list.children.length : 0;
    if (!appended) clear(this.list);
    for (let i = from; i < this.results.length; i++) this.list.append(this.item(this.results[i], i));
    const n = this.results.length;
    this.input.setAttribute("aria-expanded", String(n > 0));
    this.moreBtn.hidden = !this.cursor;
    if (n === 0) {
      this.status.dataset.state = "empty";
      this.status.textContent = t(this.all ? "search_empty" : "search_empty_room", { q: this.query });
    } else {
      this.status.dataset.state = "results";
      this.status.textContent = t(this.cursor ? "search_count_more" : "search_count", { n });
    }
    if (this.selected >= n) this.selected = -1;
    this.select(this.selected);
  }

  item(r, i) {
    const m = r.message;
    const when = new Date(m.sent_at);
    return h(
      "li.search-hit",
      {
        id: `search-hit-${i}`,
        role: "option",
        "aria-selected": "false",
        "data-testid": "search-result",
        dataset: { roomId: r.room.id, seq: m.seq, id: m.id },
        onclick: () => this.open(i),
      },
      h(
        "div.search-hit-head",
        h("span.search-room", { "data-testid": "search-room" }, this.ctx.roomLabel(r.room)),
        h("span.search-sender", { "data-testid": "search-sender" }, m.sender?.name ?? ""),
        h("time", { datetime: m.sent_at, title: when.toLocaleString(locale()), "data-testid": "search-time" }, formatTime(when)),
      ),
      h("p.search-text", { "data-testid": "search-text" }, highlight(m.text, this.query)),
    );
  }

  open(i) {
    const r = this.results[i];
    if (!r) return;
    closeSearch();
    this.ctx.openHit(r.room.id, r.message.seq);
  }

  showError(e, more) {
    const code = e.status === 0 ? "network" : e.code;
    let text;
    let wait = 0;
    if (code === "invalid_query") text = t("search_err_invalid_query");
    else if (code === "rate_limited") {
      wait = e.retryAfter || 5;
      text = t("search_err_rate_limited", { n: wait });
    } else if (code === "network") text = t("search_err_network");
    else text = t("error_generic", { message: errorText(e) });
    this.status.dataset.state = "error";
    this.status.textContent = "";
    const retry =
      code === "invalid_query"
        ? null
        : h("button.ghost", { type: "button", "data-testid": "search-retry", disabled: wait > 0 || undefined, onclick: () => this.fetchPage(more) }, t("retry"));
    if (retry && wait > 0) this.retryTimer = setTimeout(() => (retry.disabled = false), wait * 1000);
    this.error.dataset.code = code;
    clear(this.error, h("p", text), retry);
    this.error.hidden = false;
    this.moreBtn.hidden = !(more && this.cursor) || !!retry;
  }

  hideError() {
    this.error.hidden = true;
    clear(this.error);
    delete this.error.dataset.code;
  }

  destroy() {
    this.gen += 1;
    clearTimeout(this.retryTimer);
    this.el.remove();
    if (this.opener && this.opener.isConnected) this.opener.focus();
  }
}

/** `text` as search compares it: NFC, lowercase, NFC (as the server's index). */
function fold(s) {
  return s.normalize("NFC").toLowerCase().normalize("NFC");
}

/**
 * The text as nodes, every case-insensitive occurrence of `q` in a <mark>; a
 * long text is cut around its first match. Only text nodes: nothing is parsed.
 */
export function highlight(text, q) {
  const src = String(text || "").normalize("NFC");
  const needle = fold(String(q || "").trim());
  // Fold code point by code point, remembering where each folded unit came from.
  let folded = "";
  const start = [];
  const end = [];
  for (let i = 0; i < src.length; ) {
    const ch = String.fromCodePoint(src.codePointAt(i));
    const low = ch.toLowerCase();
    for (let k = 0; k < low.length; k++) {
      start.push(i);
      end.push(i + ch.length);
    }
    folded += low;
    i += ch.length;
  }
  const ranges = [];
  if (needle) {
    for (let k = folded.indexOf(needle); k !== -1; k = folded.indexOf(needle, k + needle.length)) {
      const s = start[k];
      const e = end[k + needle.length - 1];
      if (!ranges.length || s >= ranges[ranges.length - 1][1]) ranges.push([s, e]);
    }
  }
  let from = 0;
  let to = src.length;
  if (src.length > SNIPPET) {
    const first = ranges.length ? ranges[0][0] : 0;
    from = Math.max(0, Math.min(first - SNIPPET_BEFORE, src.length - SNIPPET));
    to = Math.min(src.length, from + SNIPPET);
    // Never cut a surrogate pair.
    if (from > 0 && isLow(src.charCodeAt(from))) from -= 1;
    if (to < src.length && isLow(src.charCodeAt(to))) to += 1;
  }
  const parts = [];
  if (from > 0) parts.push("…");
  let at = from;
  for (const [s0, e0] of ranges) {
    const s = Math.max(s0, from);
    const e = Math.min(e0, to);
    if (e <= s) continue;
    if (s > at) parts.push(src.slice(at, s));
    parts.push(h("mark", src.slice(s, e)));
    at = e;
  }
  if (at < to) parts.push(src.slice(at, to));
  if (to < src.length) parts.push("…");
  return parts;
}

function isLow(c) {
  return c >= 0xdc00 && c <= 0xdfff;
}
