// Issue 12 (files, images, video) in English and Korean, in the browser against
// the real server: a JPEG carrying EXIF with GPS is sent in a random chat (a
// private room), the partner sees its thumbnail inline, opens the lightbox, and
// the original they download has no EXIF left; a third user gets 404 for it, and
// a request with neither token nor signature is refused. A 12 MiB file goes up
// through the resumable protocol with a moving progress bar and reaches the
// other member; a cancelled upload leaves nothing on the server and sends
// nothing, and one whose connection drops resumes from the server's offset; a
// text file shows as a chip with its name and size; a WebM (recorded in the page
// from a canvas) and a WAV (written here) play in native players; attachments
// missed while the socket was down come with the replay; paste and drop fill
// the tray; refusals (damaged image, rate limit, file name, size) are explained.

import assert from "node:assert/strict";
import { test } from "node:test";
import { execFileSync } from "node:child_process";
import { BIN, useServerAndBrowser, openPage, asGuest, say, screenshot, stompFrames, unlabelledControls, noHorizontalOverflow, PHONE } from "./harness.mjs";

const MiB = 1024 * 1024;
// Room for the 12 MiB uploads on top of the default limit, stated so the test does not depend on it.
const env = useServerAndBrowser(["--max-upload-bytes", String(40 * MiB)]);

const LANGS = [
  {
    locale: "en-US",
    openImage: "Open image",
    download: "Download",
    attach: "Attach files",
    size1536: "1.5 KB",
    rateLimited: "You are uploading too fast; wait a moment and retry.",
    tooLarge: "This file is too large: the limit is 40 MB.",
    badName: "This file name is not allowed here; rename the file and try again.",
    dropHint: "Drop files to attach them",
  },
  {
    locale: "ko-KR",
    openImage: "이미지",
    download: "다운로드",
    attach: "파일 첨부",
    size1536: "1.5 KB",
    rateLimited: "너무 빠르게 올리고 있습니다. 잠시 후 다시 시도하세요.",
    tooLarge: "파일이 너무 큽니다. 최대 40 MB까지 올릴 수 있습니다.",
    badName: "이곳에서 허용되지 않는 파일 이름입니다. 이름을 바꿔 다시 시도하세요.",
    dropHint: "여기에 놓으면 첨부됩니다",
  },
];

/** Console noise that is expected: refused requests the test makes on purpose. */
const expected = (x) => !/status of (400|401|403|404|410|413|429)/.test(x);

// ---------- fixtures, made here ----------

/** A real JPEG from the page's canvas encoder (a gradient, `w`×`h`). */
async function canvasJpeg(page, w, h) {
  const bytes = await page.evaluate(
    async ([w, h]) => {
      const c = document.createElement("canvas");
      c.width = w;
      c.height = h;
      const g = c.getContext("2d");
      const grad = g.createLinearGradient(0, 0, w, h);
      grad.addColorStop(0, "#3056d3");
      grad.addColorStop(1, "#f0b35a");
      g.fillStyle = grad;
      g.fillRect(0, 0, w, h);
      g.fillStyle = "#fff";
      g.fillRect(w / 4, h / 4, w / 2, h / 2);
      const blob = await new Promise((r) => c.toBlob(r, "image/jpeg", 0.9));
      return [...new Uint8Array(await blob.arrayBuffer())];
    },
    [w, h],
  );
  return Buffer.from(bytes);
}

/** The marker stored as the GPS map datum: it must not survive the upload. */
const GPS_MARKER = "QTSECRETGPS";

/**
 * An APP1 Exif segment (little-endian TIFF): IFD0 with one GPSInfo pointer, and a
 * GPS IFD with latitude 37°33'59.9" N, longitude 126°58'40.1" E and a map datum.
 */
function exifGpsSegment() {
  const tiff = Buffer.alloc(152);
  tiff.write("II", 0, "latin1");
  tiff.writeUInt16LE(42, 2);
  tiff.writeUInt32LE(8, 4); // IFD0
  const entry = (at, tag, type, count, value) => {
    tiff.writeUInt16LE(tag, at);
    tiff.writeUInt16LE(type, at + 2);
    tiff.writeUInt32LE(count, at + 4);
    if (Buffer.isBuffer(value)) value.copy(tiff, at + 8);
    else tiff.writeUInt32LE(value, at + 8);
  };
  // IFD0: 1 entry, GPSInfo (0x8825, LONG) -> GPS IFD at 26; no next IFD.
  tiff.writeUInt16LE(1, 8);
  entry(10, 0x8825, 4, 1, 26);
  tiff.writeUInt32LE(0, 22);
  // GPS IFD at 26: 5 entries, data from 92.
  tiff.writeUInt16LE(5, 26);
  entry(28, 0x0001, 2, 2, Buffer.from("N\0", "latin1")); // GPSLatitudeRef
  entry(40, 0x0002, 5, 3, 92); // GPSLatitude
  entry(52, 0x0003, 2, 2, Buffer.from("E\0", "latin1")); // GPSLongitudeRef
  entry(64, 0x0004, 5, 3, 116); // GPSLongitude
  entry(76, 0x0012, 2, GPS_MARKER.length + 1, 140); // GPSMapDatum
  tiff.writeUInt32LE(0, 88);
  const rationals = (at, parts) => parts.forEach(([n, d], i) => (tiff.writeUInt32LE(n, at + i * 8), tiff.writeUInt32LE(d, at + i * 8 + 4)));
  rationals(92, [[37, 1], [33, 1], [5999, 100]]);
  rationals(116, [[126, 1], [58, 1], [4010, 100]]);
  tiff.write(`${GPS_MARKER}\0`, 140, "latin1");
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(2 + 6 + tiff.length, 2);
  return Buffer.concat([head, Buffer.from("Exif\0\0", "latin1"), tiff]);
}

/** `jpeg` with the Exif segment right after SOI. */
function withExif(jpeg) {
  assert.equal(jpeg.readUInt16BE(0), 0xffd8, "a JPEG starts with SOI");
  return Buffer.concat([jpeg.subarray(0, 2), exifGpsSegment(), jpeg.subarray(2)]);
}

/** Whether a JPEG has an APP1 segment holding Exif (walks the segments up to SOS). */
function hasExifApp1(buf) {
  let i = 2;
  while (i + 4 <= buf.length && buf[i] === 0xff) {
    const marker = buf[i + 1];
    if (marker === 0xda) return false; // start of scan: no more metadata segments
    const len = buf.readUInt16BE(i + 2);
    if (marker === 0xe1 && buf.subarray(i + 4, i + 10).toString("latin1") === "Exif\0\0") return true;
    i += 2 + len;
  }
  return false;
}

/** A short WebM recorded in the page from a canvas (VP8, about a second). */
async function canvasWebm(page) {
  const bytes = await page.evaluate(async () => {
    const c = document.createElement("canvas");
    c.width = 160;
    c.height = 120;
    const g = c.getContext("2d");
    const stream = c.captureStream(15);
    const type = ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t));
    const rec = new MediaRecorder(stream, { mimeType: type });
    const parts = [];
    rec.ondataavailable = (e) => e.data.size && parts.push(e.data);
    const stopped = new Promise((r) => (rec.onstop = r));
    rec.start(100);
    let frame = 0;
    await new Promise((resolve) => {
      const tick = () => {
        g.fillStyle = `hsl(${(frame * 12) % 360} 70% 50%)`;
        g.fillRect(0, 0, 160, 120);
        g.fillStyle = "#fff";
        g.fillRect((frame * 6) % 160, 40, 30, 30);
        frame += 1;
        if (frame < 20) setTimeout(tick, 60);
        else resolve();
      };
      tick();
    });
    rec.stop();
    await stopped;
    const blob = new Blob(parts, { type: "video/webm" });
    return [...new Uint8Array(await blob.arrayBuffer())];
  });
  return Buffer.from(bytes);
}

/** Half a second of a 440 Hz tone as a 16-bit mono WAV. */
function toneWav() {
  const rate = 8000;
  const n = rate / 2;
  const buf = Buffer.alloc(44 + n * 2);
  buf.write("RIFF", 0, "latin1");
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write("WAVEfmt ", 8, "latin1");
  buf.writeUInt32LE(16, 16); // fmt chunk size
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write("data", 36, "latin1");
  buf.writeUInt32LE(n * 2, 40);
  for (let k = 0; k < n; k++) buf.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * k) / rate)), 44 + k * 2);
  return buf;
}

/** Bytes that nothing sniffs as a known type. */
function noise(n, seed = 1) {
  const buf = Buffer.alloc(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i += 4) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    buf.writeUInt32LE(x, i);
  }
  buf.write("QTNOISE!", 0, "latin1");
  return buf;
}

// ---------- helpers ----------

const tokenOf = (page) => page.evaluate(() => localStorage.getItem("qt.token"));

/** Puts files in the composer through its (hidden) file input. */
async function attach(page, files) {
  await page.getByTestId("attach-input").setInputFiles(files);
}

/** Records every value any upload progress bar shows, from now on. */
async function recordProgress(page) {
  await page.evaluate(() => {
    window.__progress = [];
    const seen = (el) => el.matches?.("[role=progressbar]") && window.__progress.push(Number(el.getAttribute("aria-valuenow")));
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "attributes") seen(r.target);
        for (const n of r.addedNodes || []) if (n.querySelectorAll) [n, ...n.querySelectorAll("[role=progressbar]")].forEach(seen);
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["aria-valuenow"] });
  });
}

/** Slows this page's uploads down (so a progress bar and a cancel can be seen). */
async function throttleUploads(page, bytesPerSecond) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond });
  return cdp;
}

/** A public room made by A's UI and joined by B over the API; both have it open. */
async function sharedRoom(a, b, name) {
  await a.page.getByTestId("new-room").click();
  await a.page.getByTestId("room-name").fill(name);
  await a.page.getByTestId("create-submit").click();
  await a.page.getByTestId("composer").waitFor();
  const roomId = Number(await a.page.getByTestId("chat").getAttribute("data-room"));
  await env.server.api("POST", `/rooms/${roomId}/join`, undefined, await tokenOf(b.page));
  await b.page.evaluate((id) => (location.hash = `#/rooms/${id}`), roomId);
  await b.page.getByTestId("composer").waitFor();
  return roomId;
}

async function closeAll(...pages) {
  for (const p of pages) {
    assert.deepEqual(p.problems.filter(expected), []);
    await p.context.close();
  }
}

for (const [i, L] of LANGS.entries()) {
  test(`${L.locale}: a photo with GPS in a private chat: thumbnail, lightbox, original without EXIF; others get 404`, async () => {
    const a = await openPage(env.browser, env.server, { locale: L.locale });
    const b = await openPage(env.browser, env.server, { locale: L.locale, viewport: i === 1 ? PHONE : undefined });
    await asGuest(a.page, `Shooter ${i}`);
    await asGuest(b.page, `Viewer ${i}`);
    // A random chat is a private room of exactly these two.
    await a.page.getByTestId("nav-random").click();
    await a.page.getByTestId("match-connect").click();
    await b.page.getByTestId("nav-random").click();
    await b.page.getByTestId("match-connect").click();
    await a.page.locator("[data-testid=random-chat][data-state=matched]").waitFor();
    await b.page.locator("[data-testid=random-chat][data-state=matched]").waitFor();

    // The attach button is labelled and reachable from the keyboard.
    const attachBtn = a.page.getByTestId("attach");
    assert.equal(await attachBtn.getAttribute("aria-label"), L.attach);
    await a.page.getByTestId("composer").focus();
    await a.page.keyboard.press("Shift+Tab");
    assert.equal(await a.page.evaluate(() => document.activeElement?.dataset.testid), "attach");

    const photo = withExif(await canvasJpeg(a.page, 800, 600));
    assert.ok(hasExifApp1(photo) && photo.includes(GPS_MARKER), "the fixture carries EXIF with GPS");
    await attach(a.page, { name: `seoul-${i}.jpg`, mimeType: "image/jpeg", buffer: photo });
    const chip = a.page.locator("[data-testid=upload][data-state=done]");
    await chip.waitFor();
    assert.deepEqual(await unlabelledControls(a.page), []);
    await a.page.getByTestId("composer").fill(`from the tower ${i}`);
    await a.page.getByTestId("send").click();
    await chip.waitFor({ state: "detached" });

    // B sees the thumbnail inline, with its size set before it loads.
    const thumbBtn = b.page.locator("li.msg.theirs [data-testid=attachment-image]");
    await thumbBtn.waitFor();
    const thumb = thumbBtn.locator("img");
    assert.equal(await thumb.getAttribute("width"), "320");
    assert.equal(await thumb.getAttribute("height"), "240");
    assert.match(await thumbBtn.getAttribute("aria-label"), new RegExp(L.openImage));
    await b.page.waitForFunction(() => {
      const img = document.querySelector("li.msg.theirs [data-testid=attachment-image] img");
      return img && img.complete && img.naturalWidth > 0;
    });
    const thumbSrc = await thumb.getAttribute("src");
    assert.match(thumbSrc, /sig=/, "the thumbnail loads through a signed URL");
    const mediaId = await thumbBtn.getAttribute("data-media-id");
    // A signature that stopped working (expired, here spoilt) is replaced by a fresh one.
    await thumb.evaluate((img) => (img.src = img.src.replace(/sig=[^&]+/, "sig=spoilt")));
    await b.page.waitForFunction(() => {
      const img = document.querySelector("li.msg.theirs [data-testid=attachment-image] img");
      return img && !img.src.includes("sig=spoilt") && img.complete && img.naturalWidth > 0;
    });
    assert.deepEqual(await unlabelledControls(b.page), []);
    assert.ok(await noHorizontalOverflow(b.page), "the chat scrolls sideways");
    await screenshot(b.page, `media-thumbnail-${L.locale}`);

    // The lightbox opens from the keyboard, shows the full image, and Esc closes it.
    await thumbBtn.focus();
    await b.page.keyboard.press("Enter");
    const box = b.page.getByTestId("lightbox");
    await box.waitFor();
    await b.page.waitForFunction(() => {
      const img = document.querySelector("[data-testid=lightbox-image]");
      return img && img.complete && img.naturalWidth === 800;
    });
    assert.equal(await b.page.evaluate(() => document.activeElement?.dataset.testid), "lightbox-close");
    assert.deepEqual(await unlabelledControls(b.page), []);
    await screenshot(b.page, `media-lightbox-${L.locale}`);
    await b.page.keyboard.press("Escape");
    await box.waitFor({ state: "detached" });
    assert.equal(await b.page.evaluate(() => document.activeElement?.dataset.testid), "attachment-image", "focus returns to the image");
    // The close button closes it too.
    await thumbBtn.click();
    await box.waitFor();
    await b.page.getByTestId("lightbox-close").click();
    await box.waitFor({ state: "detached" });

    // The original, fetched by B's page through its signed URL: no EXIF, no GPS.
    await thumbBtn.click();
    const original = await b.page.evaluate(async () => {
      const src = document.querySelector("[data-testid=lightbox-image]").getAttribute("src");
      const res = await fetch(src);
      return { status: res.status, bytes: [...new Uint8Array(await res.arrayBuffer())] };
    });
    await b.page.keyboard.press("Escape");
    assert.equal(original.status, 200);
    const orig = Buffer.from(original.bytes);
    assert.equal(orig.readUInt16BE(0), 0xffd8, "still a JPEG");
    assert.ok(!hasExifApp1(orig), "no Exif APP1 segment left");
    assert.ok(!orig.includes(GPS_MARKER), "no GPS bytes left");
    assert.ok(!orig.includes(Buffer.from("Exif\0\0", "latin1")), "no Exif header anywhere");

    // The same with B's token over the API.
    const bToken = await tokenOf(b.page);
    const viaApi = await fetch(`${env.server.url}/api/v1/media/${mediaId}`, { headers: { Authorization: `Bearer ${bToken}` } });
    assert.equal(viaApi.status, 200);
    const apiBytes = Buffer.from(await viaApi.arrayBuffer());
    assert.ok(!hasExifApp1(apiBytes) && !apiBytes.includes(GPS_MARKER));

    // A third user, not in the room: 404, with their token and with the thumbnail too.
    const c = await env.server.api("POST", "/auth/guest", { nickname: `Outsider ${i}` });
    for (const u of [`/api/v1/media/${mediaId}`, new URL(thumbSrc, env.server.url).pathname]) {
      const res = await fetch(`${env.server.url}${u}`, { headers: { Authorization: `Bearer ${c.token}` } });
      assert.equal(res.status, 404, `${u} for a non-member`);
    }
    const info = await fetch(`${env.server.url}/api/v1/media/${mediaId}/info`, { headers: { Authorization: `Bearer ${c.token}` } });
    assert.equal(info.status, 404, "info for a non-member");
    // Signing it for them leaves it out.
    const signed = await env.server.api("POST", "/media/sign", { ids: [mediaId] }, c.token);
    assert.equal(signed.media[mediaId], undefined);
    // No token and no signature: refused.
    const bare = await fetch(`${env.server.url}/api/v1/media/${mediaId}`);
    assert.ok([401, 404].includes(bare.status), `unsigned without a token: ${bare.status}`);
    // A signature made for B does not work once tampered with.
    const tampered = new URL(thumbSrc, env.server.url);
    const sig = tampered.searchParams.get("sig");
    tampered.searchParams.set("sig", (sig[0] === "A" ? "B" : "A") + sig.slice(1));
    assert.ok([401, 403, 404].includes((await fetch(tampered)).status), "a tampered signature");

    await a.page.getByTestId("match-disconnect").click();
    await closeAll(a, b);
  });

  test(`${L.locale}: a 12 MiB upload shows its progress and reaches the other member; a text file is a chip; a video and a sound play`, async () => {
    const a = await openPage(env.browser, env.server, { locale: L.locale });
    const b = await openPage(env.browser, env.server, { locale: L.locale });
    await asGuest(a.page, `Sender ${i}`);
    await asGuest(b.page, `Getter ${i}`);
    const roomId = await sharedRoom(a, b, `Files ${i}`);

    await recordProgress(a.page);
    const cdp = await throttleUploads(a.page, 8 * MiB);
    const big = noise(12 * MiB, 7 + i);
    await attach(a.page, { name: `archive-${i}.bin`, mimeType: "application/octet-stream", buffer: big });
    const bar = a.page.getByTestId("upload-progress");
    await bar.waitFor();
    assert.equal(await bar.getAttribute("aria-valuemin"), "0");
    assert.equal(await bar.getAttribute("aria-valuemax"), "100");
    assert.ok(await a.page.getByTestId("send").isDisabled(), "no sending while an upload runs");
    await a.page.waitForFunction(() => window.__progress.some((v) => v > 0 && v < 100));
    await screenshot(a.page, `media-progress-${L.locale}`);
    assert.deepEqual(await unlabelledControls(a.page), []);
    await a.page.locator("[data-testid=upload][data-state=done]").waitFor({ timeout: 30000 });
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const values = await a.page.evaluate(() => window.__progress);
    const middle = [...new Set(values.filter((v) => v > 0 && v < 100))];
    assert.ok(middle.length >= 2, `intermediate progress values: ${values.join(",")}`);
    await a.page.getByTestId("send").click();

    const bigChip = b.page.locator("li.msg.theirs [data-testid=attachment-file]", { hasText: `archive-${i}.bin` });
    await bigChip.waitFor();
    assert.equal(await bigChip.getByTestId("attachment-size").textContent(), "12 MB");
    const link = bigChip.getByTestId("attachment-download");
    // Signed asynchronously once shown.
    await link.and(b.page.locator("[href*='sig=']")).waitFor();
    assert.match(await link.getAttribute("href"), /sig=/);
    assert.equal(await link.textContent(), L.download);
    // The bytes arrived whole.
    const got = await b.page.evaluate(async () => {
      const a = document.querySelectorAll("li.msg.theirs [data-testid=attachment-file] [data-testid=attachment-download]");
      const res = await fetch(a[a.length - 1].getAttribute("href"));
      const buf = new Uint8Array(await res.arrayBuffer());
      let sum = 0;
      for (let k = 0; k < buf.length; k += 4093) sum = (sum * 31 + buf[k]) >>> 0;
      return { status: res.status, length: buf.length, sum };
    });
    let sum = 0;
    for (let k = 0; k < big.length; k += 4093) sum = (sum * 31 + big[k]) >>> 0;
    assert.deepEqual(got, { status: 200, length: big.length, sum });

    // A text file, a video and a sound, in one message, with no text.
    const text = Buffer.from("x".repeat(1536));
    const video = await canvasWebm(a.page);
    assert.ok(video.length > 100, "the recorder produced a video");
    await attach(a.page, [
      { name: `notes-${i}.txt`, mimeType: "text/plain", buffer: text },
      { name: `clip-${i}.webm`, mimeType: "video/webm", buffer: video },
      { name: `tone-${i}.wav`, mimeType: "audio/wav", buffer: toneWav() },
    ]);
    await a.page.locator("[data-testid=upload][data-state=done]").nth(2).waitFor();
    await a.page.getByTestId("send").click();
    const file = b.page.locator("li.msg.theirs [data-testid=attachment-file]", { hasText: `notes-${i}.txt` });
    await file.waitFor();
    assert.equal(await file.getByTestId("attachment-name").textContent(), `notes-${i}.txt`);
    assert.equal(await file.getByTestId("attachment-size").textContent(), L.size1536);
    const player = b.page.locator("li.msg.theirs video[data-testid=attachment-video]");
    await player.waitFor();
    assert.equal(await player.getAttribute("preload"), "metadata");
    assert.equal(await player.getAttribute("controls"), "");
    await b.page.waitForFunction(() => document.querySelector("video[data-testid=attachment-video]")?.readyState >= 1, null, { timeout: 10000 });
    const sound = b.page.locator("li.msg.theirs audio[data-testid=attachment-audio]");
    await sound.waitFor({ state: "attached" });
    assert.equal(await sound.getAttribute("preload"), "metadata");
    await b.page.waitForFunction(() => document.querySelector("audio[data-testid=attachment-audio]")?.duration > 0.4, null, { timeout: 10000 });
    assert.deepEqual(await unlabelledControls(b.page), []);
    assert.ok(await noHorizontalOverflow(b.page));
    await screenshot(b.page, `media-files-${L.locale}`);

    // After a reload (history) they are all still there, signed in one request.
    const signs = [];
    b.page.on("request", (req) => new URL(req.url()).pathname === "/api/v1/media/sign" && signs.push(JSON.parse(req.postData()).ids));
    await b.page.reload();
    await b.page.locator("li.msg.theirs video[data-testid=attachment-video]").waitFor();
    await b.page.locator("li.msg.theirs [data-testid=attachment-file]", { hasText: `archive-${i}.bin` }).waitFor();
    await b.page.waitForFunction(() => document.querySelector("video[data-testid=attachment-video]")?.readyState >= 1, null, { timeout: 10000 });
    assert.equal(signs.length, 1, `one sign call for the page: ${JSON.stringify(signs)}`);
    assert.equal(signs[0].length, 4);
    const page = await env.server.api("GET", `/rooms/${roomId}/messages`, undefined, await tokenOf(b.page));
    const kinds = page.messages.flatMap((m) => (m.attachments || []).map((x) => x.kind));
    assert.deepEqual(kinds, ["file", "file", "video", "audio"]);
    await closeAll(a, b);
  });

  test(`${L.locale}: cancelling an upload leaves nothing on the server and sends nothing`, async () => {
    const a = await openPage(env.browser, env.server, { locale: L.locale });
    const b = await openPage(env.browser, env.server, { locale: L.locale });
    await asGuest(a.page, `Quitter ${i}`);
    await asGuest(b.page, `Waiter ${i}`);
    const roomId = await sharedRoom(a, b, `Cancel ${i}`);
    const before = (await env.server.api("GET", `/rooms/${roomId}/messages`, undefined, await tokenOf(b.page))).messages.length;

    let created = null;
    a.page.on("response", (res) => {
      if (res.request().method() === "POST" && new URL(res.url()).pathname === "/api/v1/uploads" && res.status() === 201) {
        created = new URL(res.headers()["location"], env.server.url).pathname;
      }
    });
    const deleted = a.page.waitForResponse((res) => res.request().method() === "DELETE" && /\/api\/v1\/uploads\//.test(res.url()));
    await recordProgress(a.page);
    await throttleUploads(a.page, 2 * MiB);
    await attach(a.page, { name: `never-${i}.bin`, mimeType: "application/octet-stream", buffer: noise(12 * MiB, 99 + i) });
    await a.page.waitForFunction(() => window.__progress.some((v) => v > 0));
    assert.ok(created, "the resumable upload was created");
    await a.page.getByTestId("upload-cancel").click();
    await a.page.getByTestId("upload").waitFor({ state: "detached" });
    assert.equal(await a.page.getByTestId("upload-progress").count(), 0);
    assert.ok([204, 200].includes((await deleted).status()), "the server confirmed the cancel");
    assert.ok(await a.page.getByTestId("send").isDisabled(), "nothing left to send");

    const head = await fetch(`${env.server.url}${created}`, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0", Authorization: `Bearer ${await tokenOf(a.page)}` } });
    assert.ok([404, 410].includes(head.status), `HEAD after cancel: ${head.status}`);
    const id = created.split("/").pop();
    const info = await fetch(`${env.server.url}/api/v1/media/${id}/info`, { headers: { Authorization: `Bearer ${await tokenOf(a.page)}` } });
    assert.equal(info.status, 404, "no media from a cancelled upload");
    await new Promise((r) => setTimeout(r, 300));
    const after = (await env.server.api("GET", `/rooms/${roomId}/messages`, undefined, await tokenOf(b.page))).messages.length;
    assert.equal(after, before, "no message was sent");
    assert.equal(await b.page.locator("li.msg.theirs").count(), 0);
    await closeAll(a, b);
  });

  test(`${L.locale}: a connection dropped during an upload resumes from the server's offset`, async () => {
    const a = await openPage(env.browser, env.server, { locale: L.locale });
    const b = await openPage(env.browser, env.server, { locale: L.locale });
    await asGuest(a.page, `Flaky ${i}`);
    await asGuest(b.page, `Patient ${i}`);
    await sharedRoom(a, b, `Flaky ${i}`);
    a.allow(/ERR_CONNECTION_RESET|net::ERR_FAILED/);
    const methods = [];
    let dropped = 0;
    await a.page.route("**/api/v1/uploads/**", async (route) => {
      const req = route.request();
      methods.push(req.method());
      // The second piece's connection drops once.
      if (req.method() === "PATCH" && req.headers()["upload-offset"] !== "0" && dropped === 0) {
        dropped += 1;
        return route.abort("connectionreset");
      }
      return route.continue();
    });
    const data = noise(9 * MiB, 42 + i);
    await attach(a.page, { name: `flaky-${i}.bin`, mimeType: "application/octet-stream", buffer: data });
    await a.page.locator("[data-testid=upload][data-state=done]").waitFor({ timeout: 30000 });
    assert.equal(dropped, 1);
    assert.ok(methods.includes("HEAD"), `asked the server where it stood: ${methods.join(",")}`);
    await a.page.getByTestId("send").click();
    const chip = b.page.locator("li.msg.theirs [data-testid=attachment-file]", { hasText: `flaky-${i}.bin` });
    await chip.waitFor();
    assert.equal(await chip.getByTestId("attachment-size").textContent(), "9 MB");
    // The link is signed when the page gets to it: wait for that, not the chip.
    await b.page.waitForFunction(() =>
      /sig=/.test(document.querySelector("li.msg.theirs [data-testid=attachment-download]")?.getAttribute("href") || ""),
    );
    const got = await b.page.evaluate(async () => {
      const res = await fetch(document.querySelector("li.msg.theirs [data-testid=attachment-download]").getAttribute("href"));
      return (await res.arrayBuffer()).byteLength;
    });
    assert.equal(got, data.length);
    await closeAll(a, b);
  });

  test(`${L.locale}: attachments missed while the socket was down arrive with the replay`, async () => {
    const a = await openPage(env.browser, env.server, { locale: L.locale });
    const b = await openPage(env.browser, env.server, { locale: L.locale });
    // B's socket goes through a relay that can hold the room's frames and cut the line.
    const relay = { hold: false, sockets: [], resubscribes: [] };
    await b.page.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      relay.sockets.push(ws);
      ws.onMessage((data) => {
        for (const f of stompFrames(data)) {
          if (f.command === "SUBSCRIBE" && /^\/topic\/rooms\./.test(f.headers.destination) && relay.sockets.length > 1) {
            relay.resubscribes.push(f.headers["since-seq"]);
          }
        }
        server.send(data);
      });
      server.onMessage((data) => {
        if (relay.hold && String(data).includes("destination:/topic/rooms.")) return;
        ws.send(data);
      });
    });
    b.allow(/WebSocket/);
    await asGuest(a.page, `Early ${i}`);
    await asGuest(b.page, `Late ${i}`);
    await sharedRoom(a, b, `Replay ${i}`);
    await say(a.page, `before ${i}`);
    await b.page.locator("li.msg.theirs", { hasText: `before ${i}` }).waitFor();

    relay.hold = true;
    await attach(a.page, [
      { name: `missed-${i}.jpg`, mimeType: "image/jpeg", buffer: await canvasJpeg(a.page, 400, 300) },
      { name: `missed-${i}.txt`, mimeType: "text/plain", buffer: Buffer.from("missed while away") },
    ]);
    await a.page.locator("[data-testid=upload][data-state=done]").nth(1).waitFor();
    await a.page.getByTestId("send").click();
    await a.page.locator("li.msg.mine[data-seq] [data-testid=attachment-image]").waitFor();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await b.page.getByTestId("attachment-image").count(), 0, "B missed it live");

    // The line drops; B reconnects with since-seq and gets the message replayed.
    relay.hold = false;
    await relay.sockets[0].close();
    const img = b.page.locator("li.msg.theirs [data-testid=attachment-image] img");
    await img.waitFor({ timeout: 15000 });
    assert.ok(relay.resubscribes.length >= 1 && Number(relay.resubscribes[0]) > 0, `re-subscribed with since-seq: ${relay.resubscribes}`);
    assert.equal(await img.getAttribute("width"), "320");
    assert.equal(await img.getAttribute("height"), "240");
    await b.page.waitForFunction(() => document.querySelector("li.msg.theirs [data-testid=attachment-image] img")?.naturalWidth > 0);
    await b.page.locator("li.msg.theirs [data-testid=attachment-file]", { hasText: `missed-${i}.txt` }).waitFor();
    await closeAll(a, b);
  });

  test(`${L.locale}: a pasted image and a dropped file land in the tray; Remove takes one out`, async () => {
    const a = await openPage(env.browser, env.server, { locale: L.locale, viewport: i === 1 ? PHONE : undefined });
    await asGuest(a.page, `Paster ${i}`);
    await a.page.getByTestId("new-room").click();
    await a.page.getByTestId("room-name").fill(`Paste ${i}`);
    await a.page.getByTestId("create-submit").click();
    await a.page.getByTestId("composer").waitFor();
    const jpeg = [...(await canvasJpeg(a.page, 120, 90))];
    // What a browser hands the page for a pasted screenshot and for a dropped file.
    await a.page.evaluate((bytes) => {
      const pasted = new DataTransfer();
      pasted.items.add(new File([new Uint8Array(bytes)], "pasted.jpg", { type: "image/jpeg" }));
      document.querySelector("[data-testid=composer]").dispatchEvent(new ClipboardEvent("paste", { clipboardData: pasted, bubbles: true, cancelable: true }));
      const dropped = new DataTransfer();
      dropped.items.add(new File(["dropped text"], "dropped.txt", { type: "text/plain" }));
      const target = document.querySelector("[data-testid=scroller]");
      for (const type of ["dragenter", "dragover"]) {
        target.dispatchEvent(new DragEvent(type, { dataTransfer: dropped, bubbles: true, cancelable: true }));
      }
      window.__dropped = dropped;
    }, jpeg);
    // While files are dragged over the conversation, it says where they go.
    await a.page.locator(".drop-hint", { hasText: L.dropHint }).waitFor();
    await screenshot(a.page, `media-drop-${L.locale}`);
    await a.page.evaluate(() => {
      const target = document.querySelector("[data-testid=scroller]");
      target.dispatchEvent(new DragEvent("drop", { dataTransfer: window.__dropped, bubbles: true, cancelable: true }));
    });
    await a.page.locator(".drop-hint").waitFor({ state: "hidden" });
    await a.page.locator("[data-testid=upload][data-state=done]").nth(1).waitFor();
    assert.deepEqual(await a.page.$$eval("[data-testid=upload]", (els) => els.map((e) => e.dataset.name)), ["pasted.jpg", "dropped.txt"]);
    assert.equal(await a.page.locator("[data-testid=upload] img.tray-preview").count(), 1, "a preview of the pasted image");
    assert.deepEqual(await unlabelledControls(a.page), []);
    assert.ok(await noHorizontalOverflow(a.page));
    await screenshot(a.page, `media-tray-${L.locale}`);
    await a.page.locator("[data-testid=upload]", { hasText: "dropped.txt" }).getByTestId("upload-remove").click();
    await a.page.getByTestId("send").click();
    const sent = a.page.locator("li.msg.mine[data-seq]");
    await sent.getByTestId("attachment-image").waitFor();
    assert.equal(await sent.getByTestId("attachment-file").count(), 0, "the removed file was not sent");
    assert.equal(await a.page.getByTestId("tray").isHidden(), true);
    await closeAll(a);
  });

  test(`${L.locale}: a files-only message reported: the dialog quotes the names, the moderator sees them`, async () => {
    const modName = `media_mod_${i}`;
    await env.server.api("POST", "/auth/signup", { username: modName, password: "long enough pass" });
    execFileSync(BIN, ["admin", "grant", modName, "moderator", "--data-dir", env.server.dataDir], { encoding: "utf8" });
    const a = await openPage(env.browser, env.server, { locale: L.locale });
    const b = await openPage(env.browser, env.server, { locale: L.locale });
    await asGuest(a.page, `Poster ${i}`);
    await asGuest(b.page, `Reporter ${i}`);
    await sharedRoom(a, b, `Reported ${i}`);
    await attach(a.page, { name: `leaflet-${i}.txt`, mimeType: "text/plain", buffer: Buffer.alloc(2048, 66) });
    await a.page.locator("[data-testid=upload][data-state=done]").waitFor();
    await a.page.getByTestId("send").click();
    const msg = b.page.locator("li.msg.theirs", { has: b.page.getByTestId("attachment-file") });
    await msg.waitFor();
    await msg.hover();
    await msg.getByTestId("report-message").click();
    const dialog = b.page.getByTestId("report-message-dialog");
    assert.equal(await dialog.getByTestId("report-message-quote").textContent(), `📎 leaflet-${i}.txt`);
    await dialog.getByTestId("report-message-reason").fill(`spam file ${i}`);
    await dialog.getByTestId("report-message-send").click();
    await dialog.waitFor({ state: "detached" });

    const m = await openPage(env.browser, env.server, { locale: L.locale });
    await m.page.getByTestId("tab-login").click();
    await m.page.getByTestId("username").fill(modName);
    await m.page.getByTestId("password").fill("long enough pass");
    await m.page.getByTestId("login-submit").click();
    await m.page.getByTestId("nav-moderation").click();
    const item = m.page.locator("[data-testid=queue-item]", { hasText: `spam file ${i}` });
    await item.waitFor();
    assert.equal((await item.getByTestId("queue-files").textContent()).trim(), `📎 leaflet-${i}.txt (2 KB)`);
    await closeAll(a, b, m);
  });

  test(`${L.locale}: a blocked message with a file: Edit puts the text and the file back`, async () => {
    const a = await openPage(env.browser, env.server, { locale: L.locale });
    await asGuest(a.page, `Hothead ${i}`);
    await a.page.getByTestId("new-room").click();
    await a.page.getByTestId("room-name").fill(`Blocked ${i}`);
    await a.page.getByTestId("create-submit").click();
    await a.page.getByTestId("composer").waitFor();
    await attach(a.page, { name: `proof-${i}.txt`, mimeType: "text/plain", buffer: Buffer.from("evidence") });
    await a.page.locator("[data-testid=upload][data-state=done]").waitFor();
    await a.page.getByTestId("composer").fill("kill yourself");
    await a.page.getByTestId("send").click();
    const failed = a.page.locator("li.pending.failed[data-code=moderated]");
    await failed.getByTestId("edit-blocked").click();
    assert.equal(await a.page.getByTestId("composer").inputValue(), "kill yourself");
    await a.page.locator("[data-testid=upload][data-state=done]", { hasText: `proof-${i}.txt` }).waitFor();
    // Rewritten, it goes out with the same file.
    await a.page.getByTestId("composer").fill("here is the proof");
    await a.page.getByTestId("send").click();
    await a.page.locator("li.msg.mine[data-seq]", { hasText: "here is the proof" }).getByTestId("attachment-file").filter({ hasText: `proof-${i}.txt` }).waitFor();
    await closeAll(a);
  });

  test(`${L.locale}: refused uploads are explained in the user's language; a rate-limited one can be retried`, async () => {
    const a = await openPage(env.browser, env.server, { locale: L.locale });
    await asGuest(a.page, `Careless ${i}`);
    await a.page.getByTestId("new-room").click();
    await a.page.getByTestId("room-name").fill(`Broken ${i}`);
    await a.page.getByTestId("create-submit").click();
    await a.page.getByTestId("composer").waitFor();
    // A JPEG's start with garbage after it: not a readable image.
    const broken = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]), Buffer.from("JFIF\0"), noise(2000, 3)]);
    await attach(a.page, { name: `broken-${i}.jpg`, mimeType: "image/jpeg", buffer: broken });
    const item = a.page.locator("[data-testid=upload][data-state=failed]");
    await item.waitFor();
    const why = await item.getByTestId("upload-error").textContent();
    assert.equal(why, L.locale === "en-US" ? "This image is damaged or in a format that cannot be read." : "손상되었거나 읽을 수 없는 형식의 이미지입니다.");
    // The same bytes would be refused again: no Retry, only Remove.
    assert.equal(await item.getByTestId("upload-retry").count(), 0);
    assert.deepEqual(await unlabelledControls(a.page), []);
    await screenshot(a.page, `media-error-${L.locale}`);
    await item.getByTestId("upload-remove").click();
    await item.waitFor({ state: "detached" });

    // Rate limited once: explained, and Retry sends it when the user says so.
    let refusals = 0;
    await a.page.route((url) => url.pathname === "/api/v1/media", (route) => {
      if (refusals++ > 0) return route.continue();
      return route.fulfill({
        status: 429,
        contentType: "application/json",
        body: JSON.stringify({ error: { code: "rate_limited", message: "slow down", retry_after_ms: 1000 } }),
      });
    });
    await attach(a.page, { name: `later-${i}.txt`, mimeType: "text/plain", buffer: Buffer.from("try again later") });
    const limited = a.page.locator("[data-testid=upload][data-state=failed]");
    await limited.getByTestId("upload-error").filter({ hasText: L.rateLimited }).waitFor();
    await limited.getByTestId("upload-retry").click();
    await a.page.locator("[data-testid=upload][data-state=done]", { hasText: `later-${i}.txt` }).waitFor();
    assert.equal(refusals, 2);
    await a.page.getByTestId("send").click();
    await a.page.locator("li.msg.mine [data-testid=attachment-file]", { hasText: `later-${i}.txt` }).waitFor();

    // A file name moderation blocks: the user is told to rename it.
    await attach(a.page, { name: "kill yourself.txt", mimeType: "text/plain", buffer: Buffer.from("x") });
    const named = a.page.locator("[data-testid=upload][data-state=failed]", { hasText: "kill yourself.txt" });
    await named.getByTestId("upload-error").filter({ hasText: L.badName }).waitFor();
    assert.equal(await named.getByTestId("upload-retry").count(), 0);

    // Over the server's limit (40 MiB here): refused before a byte is sent, with the limit said.
    await attach(a.page, { name: `huge-${i}.bin`, mimeType: "application/octet-stream", buffer: Buffer.alloc(41 * MiB, 1) });
    const huge = a.page.locator("[data-testid=upload][data-state=failed]", { hasText: `huge-${i}.bin` });
    await huge.getByTestId("upload-error").filter({ hasText: L.tooLarge }).waitFor();
    await closeAll(a);
  });
}
