// Files in messages (contract §6): images inline as their thumbnail (a click
// opens the lightbox with the full image), video and audio in the browser's own
// players, anything else as a chip with its name, size and a download link.
// `<img>`, `<video>`, `<audio>` and links cannot send the bearer token, so they
// use signed URLs: ids asked for in the same tick go to the server in one
// `POST /media/sign` (≤ 100 ids each), answers are cached until shortly before
// they expire, and an element whose load fails is signed again once.

import { api } from "./api.js";
import { h } from "./dom.js";
import { t, locale } from "./i18n.js";

const SIGN_BATCH = 100;
/** Re-sign this long before a signature expires. */
const RESIGN_BEFORE_MS = 60_000;
/** A failed load signs again at most this often (per element). */
const RESIGN_EVERY_MS = 5000;
/** The box a thumbnail is laid out in (CSS may shrink it further). */
const THUMB_BOX = 320;

// ---------- signed URLs ----------

class Signer {
  constructor() {
    this.cache = new Map(); // id -> {url, thumbnail_url, expires}
    this.waiting = new Map(); // id -> [{resolve, reject}]
    this.timer = null;
  }

  fresh(id) {
    const c = this.cache.get(id);
    return c && c.expires - Date.now() > RESIGN_BEFORE_MS ? c : null;
  }

  /** The signed URLs of `id` ({url, thumbnail_url?}), or null when it may not be read. */
  get(id, force = false) {
    if (force) this.cache.delete(id);
    const c = this.fresh(id);
    if (c) return Promise.resolve(c);
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(id) || [];
      list.push({ resolve, reject });
      this.waiting.set(id, list);
      if (!this.timer) this.timer = setTimeout(() => this.flush(), 0);
    });
  }

  async flush() {
    this.timer = null;
    const batch = new Map(this.waiting);
    this.waiting.clear();
    const ids = [...batch.keys()];
    for (let i = 0; i < ids.length; i += SIGN_BATCH) {
      const part = ids.slice(i, i + SIGN_BATCH);
      try {
        const res = await api("POST", "/media/sign", { ids: part });
        const expires = Date.parse(res.expires_at) || Date.now() + 5 * 60_000;
        for (const id of part) {
          const m = res.media && res.media[id];
          const entry = m ? { url: m.url, thumbnail_url: m.thumbnail_url, expires } : null;
          if (entry) this.cache.set(id, entry);
          for (const w of batch.get(id)) w.resolve(entry);
        }
      } catch (e) {
        for (const id of part) for (const w of batch.get(id)) w.reject(e);
      }
    }
  }

  clear() {
    this.cache.clear();
  }
}

export const signer = new Signer();

/** Signs a page's worth of attachments at once (before they are rendered). */
export function presign(messages) {
  for (const m of messages) for (const a of m.attachments || []) signer.get(a.id).catch(() => {});
}

/** Sets `attr` of `el` from the signed URL `pick(entry)`. When a load fails (the
 *  signature expired, say) it is signed again, at most once per RESIGN_EVERY_MS;
 *  a player keeps its position. */
function signedSrc(el, media, pick, attr = "src") {
  let signedAt = 0;
  const apply = (force) => {
    signedAt = Date.now();
    return signer.get(media.id, force).then(
      (entry) => {
        const u = entry && (pick(entry) || entry.url);
        if (!u) {
          el.dataset.unavailable = "true";
          return;
        }
        delete el.dataset.unavailable;
        if (el.getAttribute(attr) === u) return;
        const player = el instanceof HTMLMediaElement && el.currentTime > 0 ? { at: el.currentTime, paused: el.paused } : null;
        el.setAttribute(attr, u);
        if (player) {
          el.addEventListener(
            "loadedmetadata",
            () => {
              el.currentTime = player.at;
              if (!player.paused) el.play().catch(() => {});
            },
            { once: true },
          );
        }
      },
      () => {
        el.dataset.unavailable = "true";
      },
    );
  };
  let retried = false;
  if (attr === "src") {
    el.addEventListener("error", () => {
      if (retried && Date.now() - signedAt < RESIGN_EVERY_MS) return;
      retried = true;
      apply(true);
    });
  }
  apply(false);
}

// ---------- sizes ----------

/** 1536 → "1.5 KB", 12582912 → "12 MB" (binary units, the page's number format). */
export function formatSize(bytes) {
  const units = ["B", "KB", "MB", "GB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  const digits = u === 0 || v >= 10 ? 0 : 1;
  return `${new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(v)} ${units[u]}`;
}

/** Width and height that fit `m` into the thumbnail box, or null when unknown. */
function thumbSize(m) {
  if (!m.width || !m.height) return null;
  const scale = Math.min(1, THUMB_BOX / Math.max(m.width, m.height));
  return { width: Math.max(1, Math.round(m.width * scale)), height: Math.max(1, Math.round(m.height * scale)) };
}

// ---------- rendering ----------

/** The attachments of a message, or null when it has none. */
export function renderAttachments(list) {
  if (!list || !list.length) return null;
  return h("div.attachments", { "data-testid": "attachments" }, list.map(renderOne));
}

function renderOne(m) {
  if (m.kind === "image") return renderImage(m);
  if (m.kind === "video") return renderPlayer(m, "video");
  if (m.kind === "audio") return renderPlayer(m, "audio");
  return renderFile(m);
}

function renderImage(m) {
  const size = thumbSize(m);
  const img = h("img.att-thumb", {
    alt: m.name,
    width: size?.width,
    height: size?.height,
    decoding: "async",
    "data-testid": "attachment-thumb",
  });
  signedSrc(img, m, (e) => e.thumbnail_url);
  const open = h(
    "button.att-image",
    {
      type: "button",
      "aria-label": t("open_image", { name: m.name }),
      title: m.name,
      "data-testid": "attachment-image",
      dataset: { mediaId: m.id },
      onclick: () => openLightbox(m, open),
    },
    img,
  );
  return open;
}

function renderPlayer(m, tag) {
  const size = tag === "video" ? thumbSize(m) : null;
  const player = h(`${tag}.att-${tag}`, {
    controls: true,
    preload: "metadata",
    width: size?.width,
    height: size?.height,
    "aria-label": m.name,
    "data-testid": `attachment-${tag}`,
    dataset: { mediaId: m.id },
  });
  signedSrc(player, m, (e) => e.url);
  return h(
    `figure.att-media.att-${tag}-wrap`,
    player,
    h("figcaption", h("span.att-name", m.name), " · ", h("span.att-size", formatSize(m.size)), " · ", downloadLink(m, t("download"))),
  );
}

function renderFile(m) {
  return h(
    "div.att-file",
    { "data-testid": "attachment-file", dataset: { mediaId: m.id } },
    h("span.att-icon", { "aria-hidden": "true" }, "📄"),
    h("span.att-meta", h("span.att-name", { "data-testid": "attachment-name" }, m.name), h("span.att-size", { "data-testid": "attachment-size" }, formatSize(m.size))),
    downloadLink(m, t("download"), true),
  );
}

/** A download link to the original, signed when the page gets to it (and again on click if stale). */
function downloadLink(m, label, button = false) {
  const a = h(
    "a.att-download" + (button ? ".ghost" : ""),
    {
      download: m.name,
      rel: "noopener",
      "aria-label": t("download_name", { name: m.name }),
      "data-testid": "attachment-download",
    },
    label,
  );
  signedSrc(a, m, (e) => e.url, "href");
  a.addEventListener("click", (e) => {
    if (signer.fresh(m.id)) return;
    e.preventDefault();
    signer.get(m.id, true).then((entry) => {
      if (!entry) return;
      a.href = entry.url;
      a.click();
    });
  });
  return a;
}

// ---------- lightbox ----------

let box = null;

export function closeLightbox() {
  if (!box) return;
  box.backdrop.remove();
  document.removeEventListener("keydown", box.onKey, true);
  box.opener?.focus();
  box = null;
}

/** The full image over the page: Esc, the close button or a click beside it closes it. */
export function openLightbox(m, opener) {
  closeLightbox();
  const img = h("img.lightbox-img", { alt: m.name, "data-testid": "lightbox-image" });
  if (m.width && m.height) {
    img.width = m.width;
    img.height = m.height;
  }
  signedSrc(img, m, (e) => e.url);
  const close = h("button.ghost.lightbox-close", { type: "button", "data-testid": "lightbox-close", "aria-label": t("close_image") }, "✕");
  close.addEventListener("click", () => closeLightbox());
  const dialog = h(
    "div.lightbox",
    { role: "dialog", "aria-modal": "true", "aria-label": m.name, "data-testid": "lightbox" },
    h("div.lightbox-bar", h("span.att-name", m.name), h("span.att-size", formatSize(m.size)), downloadLink(m, t("download")), close),
    h("div.lightbox-stage", img),
  );
  const backdrop = h("div.lightbox-backdrop", { onpointerdown: (e) => e.target === backdrop && closeLightbox() }, dialog);
  const onKey = (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      closeLightbox();
    } else if (e.key === "Tab") {
      // Keep the focus inside the dialog.
      const items = [...dialog.querySelectorAll("a[href], button")];
      const i = items.indexOf(document.activeElement);
      const next = e.shiftKey ? (i <= 0 ? items.length - 1 : i - 1) : i === items.length - 1 ? 0 : i + 1;
      e.preventDefault();
      items[next]?.focus();
    }
  };
  document.addEventListener("keydown", onKey, true);
  box = { backdrop, opener, onKey };
  document.body.append(backdrop);
  close.focus();
}
