// Shared set-up for the browser tests: the real server binary on a fresh data
// dir, Debian's chromium through playwright-core, and per-page checks that the
// page logs no console errors and makes no request to another origin.

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

export const BIN = process.env.QUICKTALK_BIN || path.resolve(import.meta.dirname, "../../target/debug/quicktalk");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
/** Where screenshots go (the README shows the committed ones in docs/screenshots). */
export const SHOTS = process.env.SCREENSHOT_DIR || null;

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export class Server {
  /** `args`: extra server flags, kept across restarts. */
  constructor(args = []) {
    this.args = args;
    this.dataDir = mkdtempSync(path.join(tmpdir(), "qt-e2e-"));
    this.proc = null;
    this.url = null;
  }

  /** Starts the binary; `port` 0 picks a free one (a restart reuses the same). */
  async start(port = 0) {
    const proc = spawn(BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", this.dataDir, "--log", "warn", ...this.args], {
      stdio: ["ignore", "pipe", "inherit"],
      // Abuse limits off for tests (contract §4); a flag in `args` still wins.
      env: { QUICKTALK_RATE_LIMITS: "off", ...process.env },
    });
    this.proc = proc;
    const line = await new Promise((resolve, reject) => {
      const rl = createInterface({ input: proc.stdout });
      const timer = setTimeout(() => reject(new Error("server did not print its address in 15 s")), 15000);
      rl.once("line", (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      proc.once("exit", (code) => reject(new Error(`server exited early with ${code}`)));
    });
    const m = line.match(/listening on (http:\/\/\S+)/);
    if (!m) throw new Error(`unexpected first line: ${line}`);
    this.url = m[1];
    this.port = Number(new URL(this.url).port);
    return this;
  }

  /** SIGTERM and wait for the exit (the server drains and closes sockets). */
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await exited;
    this.proc = null;
  }

  async cleanup() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  async api(method, p, body, token) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(`${this.url}/api/v1${p}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A new context + page with its own storage. `problems` collects console errors,
 * page errors and requests to other origins; `allow(re)` tolerates console
 * errors matching `re` (the expected socket failures while a server restarts).
 * `setup(context)` runs before the page is opened.
 */
export async function openPage(browser, server, { locale = "en-US", viewport = DESKTOP, setup } = {}) {
  const context = await browser.newContext({ locale, viewport });
  // `setup(context)`: permissions, init scripts… before the first page loads.
  if (setup) await setup(context);
  const page = await context.newPage();
  const problems = [];
  const allowed = [];
  page.on("console", (msg) => {
    if (msg.type() === "error" && !allowed.some((re) => re.test(msg.text()))) problems.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("request", (req) => {
    const u = req.url();
    // blob: URLs of this origin are the page's own (previews of files being uploaded).
    const local = [server.url, server.url.replace("http:", "ws:"), `blob:${server.url}/`, "data:"];
    if (!local.some((p) => u.startsWith(p))) {
      problems.push(`external request: ${u}`);
    }
  });
  await page.goto(server.url + "/");
  return { context, page, problems, allow: (re) => allowed.push(re) };
}

export async function screenshot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

export async function asGuest(page, nickname) {
  await page.getByTestId("tab-guest").click();
  if (nickname) await page.getByTestId("nickname").fill(nickname);
  await page.getByTestId("guest-submit").click();
  await page.locator("[data-testid=status][data-status=live]").waitFor();
}

export async function signUp(page, username, password = "correct horse battery", displayName) {
  await page.getByTestId("tab-signup").click();
  await page.getByTestId("username").fill(username);
  await page.getByTestId("password").fill(password);
  if (displayName) await page.getByTestId("display-name").fill(displayName);
  await page.getByTestId("signup-submit").click();
  await page.locator("[data-testid=status][data-status=live]").waitFor();
}

/** Sends `text` from the open conversation's composer (Enter). */
export async function say(page, text) {
  const box = page.getByTestId("composer");
  await box.fill(text);
  await box.press("Enter");
}

/** Texts of the stored messages in the open conversation, in order, with their seqs. */
export async function shownMessages(page) {
  return page.$$eval("[data-testid=messages] li[data-seq]", (els) =>
    els.map((e) => ({ seq: Number(e.dataset.seq), kind: e.dataset.kind, text: e.querySelector(".text")?.textContent ?? e.textContent })),
  );
}

export async function noHorizontalOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);
}

/** Visible form controls and buttons with no accessible name (should be none). */
export async function unlabelledControls(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea, button")]
      .filter((el) => el.offsetParent !== null && el.type !== "radio")
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.textContent.trim())
      .map((el) => el.outerHTML.slice(0, 80)),
  );
}

/**
 * One server (with extra flags) and one browser for a test file: registers the
 * before/after hooks and returns an object whose `server` and `browser` are set
 * once they run.
 */
export function useServerAndBrowser(args = []) {
  const env = { server: null, browser: null };
  before(async () => {
    env.server = await new Server(args).start();
    env.browser = await launch();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.cleanup();
  });
  return env;
}

/** The frames of a WebSocket text message (STOMP, NUL-terminated), for tests that route the socket. */
export function stompFrames(data) {
  return String(data)
    .split("\0")
    .filter((f) => f.replace(/^\s+/, "") !== "")
    .map((f) => {
      const [head, ...rest] = f.replace(/^\s+/, "").split("\n\n");
      const [command, ...lines] = head.split("\n");
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1)]));
      return { command, headers, body: rest.join("\n\n") };
    });
}
