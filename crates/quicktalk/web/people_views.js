// The People pages (issue 13): "My profile" (#/profile: display name, status
// message, avatar upload with its progress, who may message me, and for a guest
// the upgrade form) and "Friends" (#/friends: incoming and outgoing requests,
// friends with an online dot, Message and Unfriend, adding by username, and the
// blocked users with Unblock).

import { Api, ApiError } from "./api.js";
import { h, clear } from "./dom.js";
import { t, errorText } from "./i18n.js";
import { guestTag, showProfile } from "./profile.js";
import { avatar, people, knowUser, upgradeForm, addFriend } from "./people.js";
import { Upload } from "./upload.js";
import { uploadErrorText } from "./tray.js";

const explain = (e) => (e instanceof ApiError && e.status === 0 ? t("error_network") : errorText(e));

function pageHeader(title, navigate) {
  return h(
    "header.chat-header",
    h("button.back", { type: "button", "aria-label": t("back"), onclick: () => navigate("#/") }, "‹"),
    h("div.titles", h("h2", title)),
  );
}

// ---------- my profile ----------

/**
 * @param {HTMLElement} el  where to render
 * @param {object} ctx  {me, navigate(hash), meChanged(user), toast(text)}
 */
export function renderProfileEditor(el, ctx) {
  const me = ctx.me;
  const pic = h("div.profile-pic.editor-pic", { "data-testid": "my-avatar" }, avatar(me, "large"));
  const picStatus = h("div.avatar-upload", { "data-testid": "avatar-upload" });
  const picError = h("p.form-error", { role: "alert", "data-testid": "avatar-error" });
  const fileInput = h("input.file-input", {
    type: "file",
    accept: "image/*",
    tabindex: "-1",
    "aria-label": t("avatar_change"),
    "data-testid": "avatar-input",
    onchange: () => {
      const f = fileInput.files[0];
      fileInput.value = "";
      if (f) uploadAvatar(f);
    },
  });
  const changeBtn = h("button.ghost", { type: "button", "data-testid": "avatar-change", onclick: () => fileInput.click() }, t("avatar_change"));
  const removeBtn = h(
    "button.ghost.danger",
    { type: "button", "data-testid": "avatar-remove", hidden: !me.avatar_url, onclick: () => setAvatar(null) },
    t("avatar_remove"),
  );
  const showMe = (u) => {
    Object.assign(me, u);
    if (!u.avatar_url) delete me.avatar_url;
    if (!u.status_message) delete me.status_message;
    knowUser({ ...me });
    clear(pic, avatar(me, "large"));
    removeBtn.hidden = !me.avatar_url;
    ctx.meChanged(me);
  };

  const setAvatar = async (mediaId) => {
    picError.textContent = "";
    try {
      showMe(await Api.updateMe({ avatar: mediaId }));
      ctx.toast(t(mediaId ? "avatar_saved" : "avatar_removed"));
    } catch (e) {
      picError.textContent = explain(e);
    }
  };

  let running = null;
  const uploadAvatar = (file) => {
    running?.cancel();
    picError.textContent = "";
    const bar = h(
      "div.progress",
      {
        role: "progressbar",
        "aria-valuemin": "0",
        "aria-valuemax": "100",
        "aria-valuenow": "0",
        "aria-label": t("avatar_uploading"),
        "data-testid": "avatar-progress",
      },
      h("div.progress-fill"),
    );
    const pct = h("span.progress-pct", { "data-testid": "avatar-percent" }, "0%");
    const cancel = h("button.ghost.small", { type: "button", "data-testid": "avatar-cancel", onclick: () => up.cancel() }, t("cancel"));
    clear(picStatus, h("div.tray-line", h("span", t("avatar_uploading")), pct), bar, cancel);
    const up = new Upload(file, {
      progress: (sent, size) => {
        const p = size ? Math.floor((sent / size) * 100) : 0;
        bar.setAttribute("aria-valuenow", String(p));
        bar.firstChild.style.width = `${p}%`;
        pct.textContent = `${p}%`;
      },
      state: async (u) => {
        if (u.state === "done") {
          clear(picStatus);
          running = null;
          await setAvatar(u.media.id);
        } else if (u.state === "failed") {
          clear(picStatus);
          running = null;
          picError.textContent = uploadErrorText(u.error);
        } else if (u.state === "cancelled") {
          clear(picStatus);
          running = null;
        }
      },
    });
    running = up;
    up.start();
  };

  const name = h("input", { id: "pf-name", required: true, maxlength: "64", value: me.display_name, autocomplete: "name", "data-testid": "pf-display-name" });
  const status = h("input", { id: "pf-status", maxlength: "140", value: me.status_message || "", "data-testid": "pf-status" });
  const policy = h(
    "select",
    { id: "pf-dm", "data-testid": "pf-dm-policy" },
    ["everyone", "friends"].map((p) => h("option", { value: p, selected: (me.dm_policy || "everyone") === p }, t(`dm_policy_${p}`))),
  );
  const err = h("p.form-error", { role: "alert", "data-testid": "profile-error" });
  const saved = h("p.form-ok", { role: "status", "data-testid": "profile-saved" });
  const save = h("button.primary", { type: "submit", "data-testid": "profile-save" }, t("save"));
  const form = h(
    "form.profile-form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        err.textContent = "";
        saved.textContent = "";
        save.disabled = true;
        const changes = { display_name: name.value.trim(), status_message: status.value.trim() || null, dm_policy: policy.value };
        try {
          showMe(await Api.updateMe(changes));
          saved.textContent = t("profile_saved");
        } catch (x) {
          err.textContent = explain(x);
        }
        save.disabled = false;
      },
    },
    h("label", { for: "pf-name" }, t("display_name_label")),
    name,
    h("label", { for: "pf-status" }, t("status_message")),
    status,
    h("p.hint", t("status_message_hint")),
    h("label", { for: "pf-dm" }, t("dm_policy")),
    policy,
    err,
    saved,
    h("div.row", save),
  );

  clear(
    el,
    h(
      "section.page",
      { "data-testid": "profile-page" },
      pageHeader(t("my_profile"), ctx.navigate),
      h(
        "div.page-body",
        h(
          "div.card",
          h(
            "div.profile-head",
            pic,
            h(
              "div.profile-titles",
              h("h3.profile-name", me.display_name),
              me.guest ? h("p.profile-who", guestTag(), h("span.profile-note", t("profile_guest_note"))) : h("p.profile-who", "@" + me.username),
              h("div.row", changeBtn, removeBtn, fileInput),
            ),
          ),
          picStatus,
          picError,
        ),
        h("div.card", form),
        me.guest
          ? h(
              "div.card",
              { "data-testid": "upgrade-card" },
              upgradeForm(() => {
                ctx.toast(t("upgrade_done"));
                ctx.navigate("#/profile");
                renderProfileEditor(el, ctx);
              }),
            )
          : null,
        // More settings cards from the app (the notifications opt-in).
        ctx.moreCards ? ctx.moreCards() : null,
      ),
    ),
  );
}

// ---------- friends ----------

/**
 * @param {HTMLElement} el
 * @param {object} ctx  {me, navigate(hash), toast(text), openDirect(userId)}
 * @returns {function} stop listening (call when leaving the page)
 */
export function renderFriends(el, ctx) {
  const body = h("div.page-body");
  const section = h("section.page", { "data-testid": "friends-page" }, pageHeader(t("friends"), ctx.navigate), body);
  clear(el, section);
  const run = (fn) => async (e) => {
    const btn = e.currentTarget;
    btn.disabled = true;
    try {
      await fn();
    } catch (x) {
      ctx.toast(t("error_generic", { message: explain(x) }));
      btn.disabled = false;
    }
  };
  const person = (u, extra, testid) => {
    const nameBtn = h(
      "button.member",
      { type: "button", "data-testid": "person-name", dataset: { userId: u.id }, onclick: () => showProfile(u, nameBtn) },
      avatar(u),
      h("span.name", u.display_name ?? u.name),
    );
    return h("li.person", { "data-testid": testid, dataset: { userId: u.id } }, nameBtn, h("div.person-actions", extra));
  };
  const byName = h("input", { id: "add-by-name", placeholder: t("add_by_username_placeholder"), maxlength: "32", "data-testid": "add-by-username" });
  const addErr = h("p.form-error", { role: "alert", "data-testid": "add-friend-error" });
  const addForm = h(
    "form.add-friend",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        addErr.textContent = "";
        const name = byName.value.trim().replace(/^@/, "");
        if (!name) return;
        try {
          const u = await Api.userByName(name);
          if (u.id === ctx.me.id) throw new ApiError(400, "self", t("err_self"));
          const req = await addFriend(u.id);
          byName.value = "";
          ctx.toast(t(req.status === "accepted" ? "now_friends" : "request_sent"));
        } catch (x) {
          addErr.textContent = x.code === "not_found" ? t("err_no_such_user") : explain(x);
        }
      },
    },
    h("label", { for: "add-by-name" }, t("add_by_username")),
    h("div.row", byName, h("button.primary", { type: "submit", "data-testid": "add-by-username-submit" }, t("add_friend"))),
    addErr,
  );
  const addCard = h("div.card", addForm);
  const lists = h("div.lists");
  const render = () => {
    if (ctx.me.guest) {
      clear(
        body,
        h(
          "div.card",
          h("p", { "data-testid": "friends-guest" }, t("friends_guest")),
          h("a.button-link", { href: "#/profile", "data-testid": "friends-upgrade" }, t("upgrade_title")),
        ),
      );
      return;
    }
    const incoming = people.incoming.map((r) =>
      person(
        r.user || { id: r.from, display_name: "?" },
        [
          h("button.primary.small", { type: "button", "data-testid": "accept", onclick: run(() => people.accept(r.id)) }, t("accept_request")),
          h("button.ghost.small", { type: "button", "data-testid": "decline", onclick: run(() => people.decline(r.id)) }, t("decline_request")),
        ],
        "incoming",
      ),
    );
    const outgoing = people.outgoing.map((r) =>
      person(
        r.user || { id: r.to, display_name: "?" },
        [
          h("span.hint", t("request_sent")),
          h("button.ghost.small", { type: "button", "data-testid": "cancel-request", onclick: run(() => people.cancel(r.id)) }, t("cancel_request")),
        ],
        "outgoing",
      ),
    );
    const friends = people.friends.map((f) => {
      const li = person(
        f,
        [
          h("button.primary.small", { type: "button", "data-testid": "friend-message", onclick: run(() => ctx.openDirect(f.id)) }, t("send_direct")),
          h(
            "button.ghost.small",
            {
              type: "button",
              "data-testid": "unfriend",
              onclick: run(async () => {
                if (confirm(t("unfriend_confirm", { name: f.display_name }))) await people.unfriend(f.id);
              }),
            },
            t("unfriend"),
          ),
        ],
        "friend",
      );
      li.dataset.online = String(!!f.online);
      li.prepend(h("span.dot" + (f.online ? ".on" : ""), { "aria-hidden": "true", "data-testid": "online-dot" }), h("span.sr", f.online ? t("online") : t("offline")));
      if (f.status_message) li.querySelector(".member").append(h("small.person-status", f.status_message));
      return li;
    });
    const blocked = people.blocked.map((u) =>
      person(u, [h("button.ghost.small", { type: "button", "data-testid": "unblock", onclick: run(() => people.unblock(u.id)) }, t("unblock"))], "blocked"),
    );
    const group = (title, testid, items, empty) =>
      h(
        "div.card",
        { "data-testid": testid },
        h("h3", title, items.length ? h("span.count", ` (${items.length})`) : null),
        items.length ? h("ul.people", items) : h("p.hint", empty),
      );
    if (!body.contains(addCard)) clear(body, addCard, lists);
    clear(
      lists,
      group(t("requests_incoming"), "incoming-requests", incoming, t("no_incoming")),
      group(t("requests_outgoing"), "outgoing-requests", outgoing, t("no_outgoing")),
      group(t("friends"), "friends-list", friends, t("no_friends")),
      group(t("blocked_users"), "blocked-list", blocked, t("no_blocked")),
    );
  };
  render();
  people.load(); // fresh online dots on each visit
  return people.onChange(render);
}
