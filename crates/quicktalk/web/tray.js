// The composer's tray of files waiting to be sent: one chip per file with its
// name, size and (while uploading) a progress bar with a Cancel button; once
// uploaded a Remove button; when an upload failed, why (in the user's language)
// and Retry. Files come from the attach button, a paste or a drop.

import { h, clear } from "./dom.js";
import { t, errorText } from "./i18n.js";
import { formatSize } from "./attachments.js";
import { Upload } from "./upload.js";

/** At most this many files on one message (contract §6). */
export const MAX_ATTACHMENTS = 10;

/** Why an upload failed, for people. */
export function uploadErrorText(err) {
  const d = err.detail || {};
  switch (err.code) {
    case "too_large": {
      const limit = d.max_bytes ?? d.limit ?? d.max_upload_bytes;
      return Number(limit) > 0 ? t("upload_too_large", { limit: formatSize(Number(limit)) }) : t("upload_too_large_unknown");
    }
    case "quota_exceeded":
      return t("upload_quota");
    case "invalid_image":
      return t("upload_invalid_image");
    case "moderated":
      return t("upload_name_moderated");
    case "rate_limited":
      return t("upload_rate_limited");
    case "network":
      return t("upload_network");
    default:
      return errorText(err);
  }
}

/** Whether the same upload may succeed later (not a refusal of the file itself). */
function retryable(err) {
  return !["too_large", "quota_exceeded", "invalid_image", "moderated", "invalid_name"].includes(err?.code);
}

const fileIcon = () => h("span.att-icon", { "aria-hidden": "true" }, "📄");

export class Tray {
  /** @param {function} onChange  called whenever what could be sent changes */
  constructor(onChange, toast) {
    this.onChange = onChange;
    this.toast = toast;
    this.items = []; // {upload, el, preview}
    this.el = h("ul.tray", { hidden: true, "aria-label": t("attachments"), "data-testid": "tray" });
  }

  /** Starts uploading `files` (a FileList or array). */
  add(files) {
    const list = [...files];
    const room = MAX_ATTACHMENTS - this.items.length;
    if (list.length > room) this.toast(t("attach_max", { n: MAX_ATTACHMENTS }));
    for (const file of list.slice(0, Math.max(0, room))) {
      const item = { upload: null, el: null, preview: null };
      item.upload = new Upload(file, {
        progress: () => this.renderProgress(item),
        state: () => this.renderItem(item),
      });
      if (file.type && file.type.startsWith("image/") && file.size < 20 * 1024 * 1024) {
        item.preview = URL.createObjectURL(file);
        item.previewEl = h("img.tray-preview", { src: item.preview, alt: "", width: "40", height: "40" });
        // Not an image the browser can show: the plain file icon instead.
        item.previewEl.addEventListener(
          "error",
          () => {
            item.previewEl?.replaceWith(fileIcon());
            item.previewEl = null;
          },
          { once: true },
        );
      }
      item.el = h("li.tray-item", { "data-testid": "upload", dataset: { name: item.upload.name } });
      this.items.push(item);
      this.el.append(item.el);
      this.renderItem(item);
      item.upload.start();
    }
    this.changed();
  }

  remove(item) {
    item.upload.on = {}; // gone from the tray: no more re-rendering
    item.upload.cancel();
    if (item.preview) URL.revokeObjectURL(item.preview);
    item.el.remove();
    this.items = this.items.filter((i) => i !== item);
    this.changed();
  }

  changed() {
    this.el.hidden = this.items.length === 0;
    this.onChange();
  }

  /** Media ids of the finished uploads, in order. */
  ready() {
    return this.items.filter((i) => i.upload.state === "done").map((i) => i.upload.media);
  }

  /** Whether an upload is still running (sending waits for it). */
  busy() {
    return this.items.some((i) => ["idle", "uploading", "retrying"].includes(i.upload.state));
  }

  /** Whether there is anything at all in the tray. */
  get size() {
    return this.items.length;
  }

  /** After sending: the finished ones leave the tray (failed ones stay). */
  takeReady() {
    const done = this.items.filter((i) => i.upload.state === "done");
    for (const i of done) {
      if (i.preview) URL.revokeObjectURL(i.preview);
      i.el.remove();
    }
    this.items = this.items.filter((i) => i.upload.state !== "done");
    this.changed();
    return done.map((i) => i.upload.media);
  }

  /** Puts already uploaded media back (a blocked message being edited). */
  restore(mediaList) {
    for (const m of mediaList) {
      if (this.items.length >= MAX_ATTACHMENTS) break;
      const up = new Upload({ name: m.name, size: m.size, type: m.mime }, {});
      up.state = "done";
      up.media = m;
      up.sent = m.size;
      const item = { upload: up, el: h("li.tray-item", { "data-testid": "upload", dataset: { name: m.name } }), preview: null };
      up.on = { progress: () => this.renderProgress(item), state: () => this.renderItem(item) };
      this.items.push(item);
      this.el.append(item.el);
      this.renderItem(item);
    }
    this.changed();
  }

  renderItem(item) {
    const up = item.upload;
    const st = up.state;
    item.el.dataset.state = st;
    const running = st === "idle" || st === "uploading" || st === "retrying";
    const pct = up.size ? Math.floor((up.sent / up.size) * 100) : 0;
    item.bar = running
      ? h(
          "div.progress",
          {
            role: "progressbar",
            "aria-valuemin": "0",
            "aria-valuemax": "100",
            "aria-valuenow": String(pct),
            "aria-label": t("uploading_name", { name: up.name }),
            "data-testid": "upload-progress",
          },
          h("div.progress-fill"),
        )
      : null;
    item.pct = running ? h("span.progress-pct", { "data-testid": "upload-percent" }, `${pct}%`) : null;
    const status =
      st === "retrying"
        ? h("span.tray-status", { "data-testid": "upload-status", role: "status" }, t("upload_retrying"))
        : st === "failed"
          ? h("span.tray-status.error", { "data-testid": "upload-error", role: "alert" }, uploadErrorText(up.error))
          : null;
    const buttons = [];
    if (running) {
      buttons.push(
        h("button.ghost.small", { type: "button", "data-testid": "upload-cancel", "aria-label": t("cancel_upload", { name: up.name }), onclick: () => this.remove(item) }, t("cancel")),
      );
    } else {
      if (st === "failed" && retryable(up.error)) {
        buttons.push(h("button.ghost.small", { type: "button", "data-testid": "upload-retry", onclick: () => up.retry() }, t("retry")));
      }
      buttons.push(
        h(
          "button.tray-remove",
          { type: "button", "data-testid": "upload-remove", "aria-label": t("remove_attachment", { name: up.name }), title: t("remove_attachment", { name: up.name }), onclick: () => this.remove(item) },
          "✕",
        ),
      );
    }
    clear(
      item.el,
      item.previewEl || fileIcon(),
      h(
        "div.tray-body",
        h("div.tray-line", h("span.att-name", up.name), h("span.att-size", formatSize(up.size)), item.pct),
        item.bar,
        status,
      ),
      h("div.tray-buttons", buttons),
    );
    this.renderProgress(item);
    if (st === "done" || st === "failed") this.onChange();
  }

  renderProgress(item) {
    const up = item.upload;
    if (!item.bar) return;
    const pct = up.size ? Math.floor((up.sent / up.size) * 100) : 0;
    item.bar.setAttribute("aria-valuenow", String(pct));
    item.bar.firstChild.style.width = `${pct}%`;
    item.pct.textContent = `${pct}%`;
  }

  /** Cancels every running upload (the conversation is closing). */
  destroy() {
    for (const i of this.items) {
      if (i.upload.state !== "done") i.upload.cancel();
      if (i.preview) URL.revokeObjectURL(i.preview);
    }
  }
}
