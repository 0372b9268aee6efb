// The "report this message" dialog (contract §5: anyone who can read a message
// may report it). A modal form with the reason; errors are explained in the
// page's language inside the dialog, success closes it with a thank-you toast.

import { Api } from "./api.js";
import { h } from "./dom.js";
import { t, errorText } from "./i18n.js";

const MAX_REASON = 500;

let open = null;

export function closeReport() {
  if (!open) return;
  open.backdrop.remove();
  document.removeEventListener("keydown", open.onKey, true);
  open.opener?.focus();
  open = null;
}

/**
 * Opens the dialog for `message` (message JSON) next to nothing in particular
 * (a centred modal); `toast(text)` reports success.
 */
export function showReport(message, opener, toast) {
  closeReport();
  const reason = h("textarea", {
    id: "report-message-reason",
    rows: "3",
    maxlength: String(MAX_REASON),
    required: true,
    "data-testid": "report-message-reason",
  });
  const error = h("p.form-error", { role: "alert", "data-testid": "report-message-error" });
  const send = h("button.primary", { type: "submit", "data-testid": "report-message-send" }, t("report_send"));
  // A message of files only is quoted by their names.
  const files = (message.attachments || []).map((f) => `📎 ${f.name}`).join("\n");
  const quote = h("blockquote.report-quote", { "data-testid": "report-message-quote" }, [message.text, files].filter(Boolean).join("\n"));
  const form = h(
    "form.dialog",
    {
      role: "dialog",
      "aria-modal": "true",
      "aria-labelledby": "report-message-title",
      "data-testid": "report-message-dialog",
      onsubmit: async (e) => {
        e.preventDefault();
        const text = reason.value.trim();
        if (!text) return;
        send.disabled = true;
        error.textContent = "";
        try {
          await Api.reportMessage(message.id, text);
          closeReport();
          toast(t("report_message_thanks"));
        } catch (err) {
          error.textContent = err.status === 0 ? t("error_network") : errorText(err);
          send.disabled = false;
        }
      },
    },
    h("h3", { id: "report-message-title" }, t("report_message_title", { name: message.sender?.name ?? "" })),
    quote,
    h("label", { for: "report-message-reason" }, t("report_message_reason")),
    reason,
    error,
    h("div.row", send, h("button.ghost", { type: "button", "data-testid": "report-message-cancel", onclick: () => closeReport() }, t("cancel"))),
  );
  const backdrop = h("div.dialog-backdrop", { onpointerdown: (e) => e.target === backdrop && closeReport() }, form);
  const onKey = (e) => {
    if (e.key === "Escape") closeReport();
  };
  document.addEventListener("keydown", onKey, true);
  open = { backdrop, opener, onKey };
  document.body.append(backdrop);
  reason.focus();
}
