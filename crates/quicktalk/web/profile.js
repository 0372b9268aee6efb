// Who is who (issue 10): the guest badge shown next to a guest's name, and the
// small profile card a click on a name opens: the display name, then `@username`
// for a registered user or the guest badge for a guest, so a guest named like a
// registered user is told apart.

import { Api } from "./api.js";
import { h, clear } from "./dom.js";
import { t } from "./i18n.js";

/** The badge next to a guest's name. */
export function guestTag() {
  return h("span.badge.guest-tag", { "data-testid": "guest-badge" }, t("guest_tag"));
}

let open = null;

/** Closes the open profile card, if any. */
export function closeProfile() {
  if (!open) return;
  open.card.remove();
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
  const close = h(
    "button.ghost.profile-close",
    { type: "button", "aria-label": t("profile_close"), "data-testid": "profile-close", onclick: () => closeProfile() },
    "×",
  );
  const card = h(
    "div.profile-card",
    { role: "dialog", "aria-label": t("profile"), "data-testid": "profile-card", dataset: { userId: user.id } },
    close,
    name,
    who,
  );
  const fill = (u) => {
    name.textContent = u.display_name ?? u.name ?? "";
    if (u.guest) clear(who, guestTag(), h("span.profile-note", t("profile_guest_note")));
    else if (u.username) clear(who, h("span.profile-username", { "data-testid": "profile-username" }, "@" + u.username));
    else clear(who);
  };
  fill(user);
  const onKey = (e) => {
    if (e.key === "Escape") closeProfile();
  };
  const onOutside = (e) => {
    if (!card.contains(e.target) && !opener?.contains(e.target)) closeProfile();
  };
  document.addEventListener("keydown", onKey, true);
  document.addEventListener("pointerdown", onOutside, true);
  open = { card, opener, onKey, onOutside };
  document.body.append(card);
  const r = opener?.getBoundingClientRect();
  if (r) {
    card.style.top = `${Math.min(r.bottom + 6, window.innerHeight - card.offsetHeight - 8)}px`;
    card.style.left = `${Math.max(8, Math.min(r.left, window.innerWidth - card.offsetWidth - 8))}px`;
  }
  close.focus();
  if (user.username === undefined) {
    Api.user(user.id)
      .then((u) => {
        if (open && open.card === card) fill(u);
      })
      .catch(() => {});
  }
}
