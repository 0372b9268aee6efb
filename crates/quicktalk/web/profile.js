// Who is who (issue 10): the guest badge shown next to a guest's name, and the
// small profile card a click on a name opens: the display name, then `@username`
// for a registered user or the guest badge for a guest, so a guest named like a
// registered user is told apart. Issue 13: the card shows the avatar and status
// message, and offers Add friend (accept / cancel a pending request), Message
// (a direct room) and Block / Unblock.

import { h, clear } from "./dom.js";
import { t, errorText } from "./i18n.js";
import { avatar, people, addFriend, userInfo } from "./people.js";

/** The badge next to a guest's name. */
export function guestTag() {
  return h("span.badge.guest-tag", { "data-testid": "guest-badge" }, t("guest_tag"));
}

let open = null;

/** Closes the open profile card, if any. */
export function closeProfile() {
  if (!open) return;
  open.card.remove();
  open.unlisten?.();
  document.removeEventListener("keydown", open.onKey, true);
  document.removeEventListener("pointerdown", open.onOutside, true);
  open.opener?.focus();
  open = null;
}

/**
 * Opens the card for `user` ({id, name|display_name, guest, username?}) next to
 * `opener`. A user without `username` known (a message's sender) is loaded with
 * `GET /users/{id}`; until then the card shows what the reference says.
 */
export function showProfile(user, opener) {
  closeProfile();
  const name = h("h3.profile-name", { "data-testid": "profile-name" });
  const who = h("p.profile-who", { "data-testid": "profile-who" });
  const pic = h("div.profile-pic");
  const status = h("p.profile-status", { "data-testid": "profile-status", hidden: true });
  const actions = h("div.profile-actions", { "data-testid": "profile-actions" });
  let current = user;
  const close = h(
    "button.ghost.profile-close",
    { type: "button", "aria-label": t("profile_close"), "data-testid": "profile-close", onclick: () => closeProfile() },
    "×",
  );
  const card = h(
    "div.profile-card",
    { role: "dialog", "aria-label": t("profile"), "data-testid": "profile-card", dataset: { userId: user.id } },
    close,
    h("div.profile-head", pic, h("div.profile-titles", name, who)),
    status,
    actions,
  );
  const fill = (u) => {
    current = { ...current, ...u };
    name.textContent = u.display_name ?? u.name ?? "";
    if (u.guest) clear(who, guestTag(), h("span.profile-note", t("profile_guest_note")));
    else if (u.username) clear(who, h("span.profile-username", { "data-testid": "profile-username" }, "@" + u.username));
    else clear(who);
    clear(pic, avatar(current, "large"));
    status.hidden = !u.status_message;
    status.textContent = u.status_message || "";
    renderActions();
  };
  const act = (fn) => async (e) => {
    const btn = e.currentTarget;
    btn.disabled = true;
    try {
      await fn();
    } catch (x) {
      people.hooks.toast?.(t("error_generic", { message: errorText(x) }));
    }
    if (open && open.card === card) renderActions();
  };
  const button = (testid, label, fn, cls = "button.ghost.small") => h(cls, { type: "button", "data-testid": testid, onclick: act(fn) }, label);
  const renderActions = () => {
    const id = current.id;
    const me = people.me;
    if (!me || id === me.id) return clear(actions);
    const list = [];
    const incoming = people.incomingFrom(id);
    const outgoing = people.outgoingTo(id);
    if (people.isBlocked(id)) {
      list.push(h("span.profile-note", { "data-testid": "profile-blocked" }, t("blocked_note")));
    } else if (people.isFriend(id)) {
      list.push(h("span.profile-note", { "data-testid": "profile-friend" }, "✓ " + t("friends_already")));
    } else if (incoming) {
      list.push(button("profile-accept", t("accept_request"), () => people.accept(incoming.id), "button.primary.small"));
    } else if (outgoing) {
      list.push(h("span.profile-note", { "data-testid": "profile-requested" }, t("request_sent")));
      list.push(button("profile-cancel-request", t("cancel_request"), () => people.cancel(outgoing.id)));
    } else if (!current.guest) {
      list.push(button("profile-add-friend", t("add_friend"), () => addFriend(id).then((r) => r && people.hooks.toast?.(t(r.status === "accepted" ? "now_friends" : "request_sent")))));
    }
    if (!people.isBlocked(id)) {
      list.push(button("profile-message", t("send_direct"), async () => {
        await people.hooks.openDirect?.(id);
        closeProfile();
      }));
    }
    list.push(
      people.isBlocked(id)
        ? button("profile-unblock", t("unblock"), () => people.unblock(id))
        : button("profile-block", t("block"), async () => {
            if (!confirm(t("block_confirm", { name: current.display_name ?? current.name ?? "" }))) return;
            await people.block(id);
          }, "button.ghost.small.danger"),
    );
    clear(actions, list);
  };
  const unlisten = people.onChange(() => open && open.card === card && renderActions());
  fill(user);
  const onKey = (e) => {
    if (e.key === "Escape") closeProfile();
  };
  const onOutside = (e) => {
    if (!card.contains(e.target) && !opener?.contains(e.target)) closeProfile();
  };
  document.addEventListener("keydown", onKey, true);
  document.addEventListener("pointerdown", onOutside, true);
  open = { card, opener, onKey, onOutside, unlisten };
  document.body.append(card);
  const r = opener?.getBoundingClientRect();
  if (r) {
    card.style.top = `${Math.min(r.bottom + 6, window.innerHeight - card.offsetHeight - 8)}px`;
    card.style.left = `${Math.max(8, Math.min(r.left, window.innerWidth - card.offsetWidth - 8))}px`;
  }
  close.focus();
  if (user.username === undefined || !("avatar_url" in user) || !("status_message" in user)) {
    userInfo(user.id, true).then((u) => {
      if (u && open && open.card === card) fill(u);
    });
  }
}
