// The moderator page (#/moderation, contract §5), for moderators and admins
// only: the review queue (user reports and automatic flags, oldest first) with
// each item's message among the messages around it, and per item: resolve (with
// a note), delete the message (a tombstone that keeps its seq), ban the user for
// 1 h / 24 h / 7 days / until lifted; and the list of current bans with unban.
// The server enforces the roles; this page only hides what others cannot use.

import { Api, moderates } from "./api.js";
import { h, clear } from "./dom.js";
import { t, errorText, locale } from "./i18n.js";
import { guestTag } from "./profile.js";
import { formatSize } from "./attachments.js";

const PAGE = 20;
/** Ban lengths offered, in hours (null: until lifted). */
export const BAN_CHOICES = [
  ["1h", 1],
  ["24h", 24],
  ["7d", 24 * 7],
  ["forever", null],
];

/**
 * Renders the page into `main`. `ctx`: {me, toast(text), navigate(hash)}.
 */
export function renderModeration(main, ctx) {
  if (!moderates(ctx.me)) {
    clear(main, h("div.placeholder", { "data-testid": "mod-forbidden" }, h("p", t("mod_forbidden"))));
    return;
  }
  const view = new ModerationView(main, ctx);
  view.show("open");
  return view;
}

class ModerationView {
  constructor(main, ctx) {
    this.main = main;
    this.ctx = ctx;
    this.tab = "open";
    this.tabs = h("div.tabs.mod-tabs", { role: "tablist" });
    for (const name of ["open", "resolved", "bans"]) {
      this.tabs.append(
        h(
          "button",
          { type: "button", role: "tab", dataset: { tab: name }, "data-testid": `mod-tab-${name}`, onclick: () => this.show(name) },
          t(`mod_tab_${name}`),
        ),
      );
    }
    this.body = h("div.mod-body", { "data-testid": "mod-body" });
    clear(
      main,
      h(
        "section.moderation",
        { "data-testid": "moderation" },
        h(
          "header.chat-header",
          h("button.back", { type: "button", "aria-label": t("back"), onclick: () => ctx.navigate("#/") }, "‹"),
          h("div.titles", h("h2", t("moderation"))),
        ),
        h("div.mod-scroll", this.tabs, this.body),
      ),
    );
  }

  async show(tab) {
    this.tab = tab;
    for (const b of this.tabs.children) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
    clear(this.body, h("p.hint", "…"));
    try {
      if (tab === "bans") await this.showBans();
      else await this.showQueue(tab);
    } catch (e) {
      clear(this.body, h("p.form-error", { role: "alert" }, t("error_generic", { message: errorText(e) })));
    }
  }

  // ---------- queue ----------

  async showQueue(state, after) {
    const params = { state, limit: String(PAGE) };
    if (after) params.after = String(after);
    const res = await Api.queue(params);
    if (this.tab !== state) return;
    const list = after ? this.body.querySelector("ol.queue") : h("ol.queue", { "data-testid": "queue" });
    if (!after) clear(this.body, list);
    this.body.querySelector("button.more")?.remove();
    for (const item of res.items) list.append(this.renderItem(item));
    if (!after && !res.items.length) clear(this.body, h("p.hint", { "data-testid": "queue-empty" }, t(`mod_empty_${state}`)));
    if (res.has_more && res.items.length) {
      const last = res.items[res.items.length - 1].id;
      this.body.append(
        h("button.ghost.more", { type: "button", "data-testid": "queue-more", onclick: () => this.showQueue(state, last) }, t("mod_more")),
      );
    }
  }

  renderItem(item) {
    const li = h("li.queue-item", { "data-testid": "queue-item", dataset: { id: item.id, kind: item.kind } });
    this.fillItem(li, item);
    return li;
  }

  fillItem(li, item) {
    const subject = item.subject;
    const when = new Date(item.created_at);
    const kind = h("span.badge.kind-" + item.kind, { "data-testid": "queue-kind" }, t(`mod_kind_${item.kind}`));
    const head = h(
      "div.queue-head",
      kind,
      h("span.queue-room", { "data-testid": "queue-room" }, t(`mod_room_${item.room?.kind || "group"}`, { name: item.room?.name ?? "" })),
      h("time", { datetime: item.created_at, title: when.toLocaleString(locale()) }, when.toLocaleString(locale())),
    );
    const who = h(
      "p.queue-who",
      h("span", t("mod_subject"), " "),
      person(subject, "queue-subject"),
      banState(subject),
      item.reporter ? [h("span.sep", " · "), h("span", t("mod_reporter"), " "), person(item.reporter, "queue-reporter")] : null,
    );
    const why = h(
      "div.queue-why",
      // A flag's reason is the server's summary; its categories say the same, translated.
      item.kind === "report" && item.reason ? h("p.queue-reason", { "data-testid": "queue-reason" }, item.reason) : null,
      (item.categories || []).map((c) => h("span.badge.cat", { "data-testid": "queue-category" }, t(`cat_${c}`))),
      typeof item.score === "number" ? h("span.queue-score", t("mod_score", { n: Math.round(item.score * 100) })) : null,
    );
    const context = this.renderContext(item);
    const resolved = item.resolved
      ? h(
          "p.queue-resolved",
          { "data-testid": "queue-resolved" },
          t("mod_resolved_by", {
            name: item.resolved.by ? item.resolved.by.display_name : t("mod_automatic"),
            when: new Date(item.resolved.at).toLocaleString(locale()),
          }),
          item.resolved.resolution ? h("span.resolution", " — " + item.resolved.resolution) : null,
        )
      : null;
    clear(li, head, who, why, context, resolved, this.renderActions(li, item));
  }

  renderContext(item) {
    const msgs = item.context || [];
    if (!msgs.length && !item.message) return null;
    const all = msgs.some((m) => item.message && m.id === item.message.id) || !item.message ? msgs : [...msgs, item.message].sort((a, b) => a.seq - b.seq);
    return h(
      "ol.queue-context",
      { "data-testid": "queue-context", "aria-label": t("mod_context") },
      all.map((m) => {
        const target = item.message && m.id === item.message.id;
        const text =
          m.kind === "deleted"
            ? h("em", t("message_deleted"))
            : m.kind === "join" || m.kind === "leave"
              ? h("em", t(m.kind === "join" ? "joined" : "left", { name: m.sender?.name ?? "" }))
              : m.text;
        return h(
          "li" + (target ? ".target" : ""),
          { dataset: { seq: m.seq, kind: m.kind }, "data-testid": target ? "queue-target" : "queue-context-message" },
          h("strong", (m.sender?.name ?? "?") + ": "),
          text,
          m.kind === "text" && m.attachments?.length
            ? h("span.queue-files", { "data-testid": "queue-files" }, m.attachments.map((f) => ` 📎 ${f.name} (${formatSize(f.size)})`).join(""))
            : null,
          m.masked ? h("span.masked-note", t("masked")) : null,
        );
      }),
    );
  }

  renderActions(li, item) {
    if (item.resolved) return null;
    const note = h("input", { "aria-label": t("mod_resolution"), placeholder: t("mod_resolution"), maxlength: "200", "data-testid": "resolve-note" });
    const resolve = h(
      "button.primary",
      {
        type: "button",
        "data-testid": "resolve",
        onclick: () =>
          this.act(async () => {
            const done = await Api.resolve(item.id, note.value.trim() || undefined);
            this.ctx.toast(t("mod_resolved"));
            if (this.tab === "open") li.remove();
            else this.fillItem(li, done);
          }),
      },
      t("mod_resolve"),
    );
    const actions = [h("div.row.queue-resolve", note, resolve)];
    if (item.message && item.message.kind !== "deleted") {
      actions.push(
        h(
          "button.ghost.danger",
          {
            type: "button",
            "data-testid": "mod-delete",
            onclick: () =>
              this.act(async () => {
                await Api.deleteMessage(item.message.id);
                this.ctx.toast(t("mod_deleted"));
                this.fillItem(li, { ...item, message: { ...item.message, kind: "deleted", text: "" }, context: (item.context || []).map((m) => (m.id === item.message.id ? { ...m, kind: "deleted", text: "" } : m)) });
              }),
          },
          t("delete_message"),
        ),
      );
    }
    // `banned_until` is present while the subject is banned (null: until lifted).
    if (item.subject && !("banned_until" in item.subject) && item.subject.id !== this.ctx.me.id) {
      actions.push(this.banForm(item.subject, item.kind === "report" ? item.reason || "" : "", (until) => this.fillItem(li, { ...item, subject: { ...item.subject, banned_until: until } })));
    }
    return h("div.queue-actions", actions);
  }

  banForm(user, reasonText, done) {
    const length = h(
      "select",
      { "aria-label": t("mod_ban_length"), "data-testid": "ban-length" },
      BAN_CHOICES.map(([key]) => h("option", { value: key, selected: key === "24h" }, t(`mod_ban_${key}`))),
    );
    const reason = h("input", { "aria-label": t("mod_ban_reason"), placeholder: t("mod_ban_reason"), maxlength: "500", value: reasonText, "data-testid": "ban-reason" });
    const ban = h(
      "button.ghost.danger",
      {
        type: "button",
        "data-testid": "ban",
        onclick: () =>
          this.act(async () => {
            const why = reason.value.trim() || t("mod_ban_default_reason");
            const hours = BAN_CHOICES.find(([k]) => k === length.value)[1];
            const until = hours === null ? undefined : new Date(Date.now() + hours * 3600 * 1000).toISOString();
            const res = await Api.ban(user.id, why, until);
            this.ctx.toast(t("mod_banned", { name: user.name ?? user.display_name }));
            done(res.banned_until);
          }),
      },
      t("mod_ban"),
    );
    return h("div.row.ban-form", length, reason, ban);
  }

  async act(fn) {
    try {
      await fn();
    } catch (e) {
      this.ctx.toast(t("error_generic", { message: errorText(e) }));
    }
  }

  // ---------- bans ----------

  async showBans() {
    const res = await Api.bans();
    if (this.tab !== "bans") return;
    const bans = res.bans;
    if (!bans.length) return clear(this.body, h("p.hint", { "data-testid": "bans-empty" }, t("mod_no_bans")));
    clear(
      this.body,
      h(
        "ul.bans",
        { "data-testid": "bans" },
        bans.map((b) => {
          const until = b.banned_until;
          const li = h(
            "li.ban",
            { "data-testid": "ban-item", dataset: { userId: b.user.id } },
            person(b.user, "ban-user"),
            h("span.ban-until", until ? t("mod_banned_until", { when: new Date(until).toLocaleString(locale()) }) : t("mod_banned_forever")),
            b.reason ? h("span.ban-reason", b.reason) : null,
            h(
              "button.ghost",
              {
                type: "button",
                "data-testid": "unban",
                onclick: () =>
                  this.act(async () => {
                    await Api.unban(b.user.id);
                    this.ctx.toast(t("mod_unbanned", { name: b.user.name ?? b.user.display_name }));
                    li.remove();
                  }),
              },
              t("mod_unban"),
            ),
          );
          return li;
        }),
      ),
    );
  }
}

function person(user, testid) {
  if (!user) return h("span", "?");
  return h(
    "span.person",
    { "data-testid": testid, dataset: { userId: user.id } },
    h("strong", user.display_name ?? user.name ?? "?"),
    user.username ? h("span.muted", " @" + user.username) : null,
    user.guest ? guestTag() : null,
  );
}

function banState(user) {
  if (!user || !("banned_until" in user)) return null;
  const text =
    user.banned_until === null
      ? t("mod_banned_forever")
      : t("mod_banned_until", { when: new Date(user.banned_until).toLocaleString(locale()) });
  return h("span.badge.banned", { "data-testid": "subject-banned" }, text);
}
