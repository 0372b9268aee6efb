// Uploading one file (contract §6): small files in one `POST /media?name=…`,
// larger ones as a resumable tus 1.0.0 upload (`POST /uploads`, then `PATCH`
// pieces of 4 MiB; the last piece's reply is the media JSON). Requests go
// through XMLHttpRequest so the progress bar moves inside a piece too. A dropped
// connection is retried with back-off: a resumable upload asks the server where
// it stands (`HEAD`) and goes on from there; after RETRIES failures in a row the
// upload is `failed` and `retry()` picks it up again. `cancel()` aborts the
// request and deletes what the server stored (`DELETE`).

import { ApiError, getToken } from "./api.js";

/** Files above this go through the resumable protocol. */
export const RESUMABLE_ABOVE = 4 * 1024 * 1024;
/** Bytes per PATCH. */
export const PIECE = 4 * 1024 * 1024;
/** Failed attempts in a row before giving up (the user may then retry). */
export const RETRIES = 6;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 8000;
const TUS = "1.0.0";

/** A connection that dropped (no HTTP status): worth another try. */
class Dropped extends Error {}

/**
 * One request; resolves with {status, header(name), text} for any HTTP status,
 * rejects with Dropped when no response came (or with "abort" when cancelled).
 */
function send(upload, method, url, headers, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    upload.xhr = xhr;
    xhr.open(method, url);
    const token = getToken();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      upload.xhr = null;
      resolve({ status: xhr.status, header: (n) => xhr.getResponseHeader(n), text: xhr.responseText });
    };
    xhr.onerror = xhr.ontimeout = () => {
      upload.xhr = null;
      reject(new Dropped(`${method} ${url}: connection lost`));
    };
    xhr.onabort = () => {
      upload.xhr = null;
      reject(new DOMException("cancelled", "AbortError"));
    };
    xhr.send(body ?? null);
  });
}

/** The JSON error of a reply (with the size limit, when the server says it). */
function replyError(res) {
  if (res.status === 400 && /"upload_interrupted"/.test(res.text)) {
    // The server saw the body end early: the connection, not the file.
    return new Dropped("the upload did not arrive whole");
  }
  let err = null;
  try {
    err = JSON.parse(res.text).error;
  } catch {
    err = null;
  }
  const detail = { ...(err || {}) };
  const max = res.header("Tus-Max-Size");
  if (max && detail.max_bytes === undefined) detail.max_bytes = Number(max);
  // "the file is larger than N bytes", "images may be at most N bytes"
  const said = err && err.code === "too_large" && /(\d+) bytes/.exec(err.message || "");
  if (said && detail.max_bytes === undefined) detail.max_bytes = Number(said[1]);
  return new ApiError(res.status, err ? err.code : `http_${res.status}`, err ? err.message : `HTTP ${res.status}`, detail);
}

function json(res) {
  try {
    return JSON.parse(res.text);
  } catch {
    return null;
  }
}

function base64Utf8(s) {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let maxSize = null;
/** The server's upload limit (`Tus-Max-Size` of `OPTIONS /uploads`), asked once; null if unknown. */
export function serverLimit() {
  maxSize ??= fetch("/api/v1/uploads", { method: "OPTIONS", headers: { "Tus-Resumable": TUS } })
    .then((r) => Number(r.headers.get("Tus-Max-Size")) || null)
    .catch(() => ((maxSize = null), null));
  return maxSize;
}

export class Upload {
  /**
   * @param {File|Blob} file  with a `name`
   * @param {object} on  {progress(sent, total), state(upload)} — `state` after
   *   every change of `state` (`uploading`, `retrying`, `done`, `failed`, `cancelled`)
   */
  constructor(file, on = {}) {
    this.file = file;
    this.name = file.name || "file";
    this.size = file.size;
    this.on = on;
    this.state = "idle";
    this.sent = 0;
    this.media = null; // the media JSON once done
    this.error = null; // ApiError once failed
    this.location = null; // the tus upload's URL once created
    this.xhr = null;
    this.resumable = file.size > RESUMABLE_ABOVE;
  }

  setState(s) {
    this.state = s;
    this.on.state?.(this);
  }

  progress(sent) {
    this.sent = Math.min(sent, this.size);
    this.on.progress?.(this.sent, this.size);
  }

  /** Starts (or, after `failed`, resumes) the upload; resolves when it settles. */
  async start() {
    if (this.state === "uploading" || this.state === "retrying" || this.state === "done" || this.state === "cancelled") return;
    this.error = null;
    this.setState("uploading");
    const max = await serverLimit();
    if (this.state === "cancelled") return;
    if (max && this.size > max) {
      // Known to be refused: say so before sending a byte.
      this.error = new ApiError(413, "too_large", `the file is larger than ${max} bytes`, { code: "too_large", max_bytes: max });
      this.setState("failed");
      return;
    }
    let failures = 0;
    for (;;) {
      try {
        const media = this.resumable ? await this.resumableStep() : await this.simple();
        if (this.state === "cancelled") return;
        this.media = media;
        this.progress(this.size);
        this.setState("done");
        return;
      } catch (e) {
        if (this.state === "cancelled") return;
        if (e instanceof Dropped && failures < RETRIES) {
          failures += 1;
          this.setState("retrying");
          await sleep(Math.min(BACKOFF_FIRST_MS * 2 ** (failures - 1), BACKOFF_MAX_MS));
          if (this.state === "cancelled") return;
          this.setState("uploading");
          continue;
        }
        this.error = e instanceof ApiError ? e : new ApiError(0, "network", String(e.message || e));
        this.setState("failed");
        return;
      }
    }
  }

  retry() {
    if (this.state === "failed") return this.start();
  }

  /** Stops the upload; the server forgets what it got. */
  cancel() {
    if (this.state === "done" || this.state === "cancelled") return;
    const loc = this.location;
    this.setState("cancelled");
    this.xhr?.abort();
    if (loc) {
      fetch(loc, { method: "DELETE", headers: { "Tus-Resumable": TUS, Authorization: `Bearer ${getToken()}` } }).catch(() => {});
    }
  }

  async simple() {
    this.progress(0);
    const url = `/api/v1/media?name=${encodeURIComponent(this.name)}`;
    const res = await send(this, "POST", url, { "Content-Type": this.file.type || "application/octet-stream" }, this.file, (n) => this.progress(n));
    if (res.status === 201 || res.status === 200) return json(res);
    throw replyError(res);
  }

  /** Creates the upload if needed, then sends the pieces from the server's offset. */
  async resumableStep() {
    let offset;
    if (!this.location) {
      const res = await send(this, "POST", "/api/v1/uploads", {
        "Tus-Resumable": TUS,
        "Upload-Length": String(this.size),
        "Upload-Metadata": `filename ${base64Utf8(this.name)}`,
      });
      if (res.status !== 201) throw replyError(res);
      const loc = res.header("Location");
      if (!loc) throw new ApiError(res.status, "http_201", "no Location in the reply");
      this.location = new URL(loc, location.href).pathname;
      offset = Number(res.header("Upload-Offset") || 0);
    } else {
      const res = await send(this, "HEAD", this.location, { "Tus-Resumable": TUS });
      if (res.status === 404 || res.status === 410) {
        // The server lost (or expired) it: start over.
        this.location = null;
        return this.resumableStep();
      }
      if (res.status !== 200 && res.status !== 204) throw replyError(res);
      offset = Number(res.header("Upload-Offset") || 0);
    }
    this.progress(offset);
    for (;;) {
      if (offset >= this.size) return this.info();
      const end = Math.min(offset + PIECE, this.size);
      const base = offset;
      const res = await send(
        this,
        "PATCH",
        this.location,
        { "Tus-Resumable": TUS, "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
        this.file.slice(offset, end),
        (n) => this.progress(base + n),
      );
      if (res.status === 200 || res.status === 201) {
        const media = json(res);
        return media && media.id ? media : this.info();
      }
      if (res.status === 204) {
        offset = Number(res.header("Upload-Offset") ?? end);
        this.progress(offset);
        continue;
      }
      if (res.status === 409) {
        // Offsets disagree (a piece landed but its reply was lost): ask again.
        throw new Dropped("offset conflict");
      }
      throw replyError(res);
    }
  }

  /** The media JSON of a completed resumable upload (its id is the upload's). */
  async info() {
    const id = this.location.split("/").pop();
    const res = await send(this, "GET", `/api/v1/media/${encodeURIComponent(id)}/info`, { Accept: "application/json" });
    if (res.status === 200) return json(res);
    throw replyError(res);
  }
}
