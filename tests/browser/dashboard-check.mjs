#!/usr/bin/env node
// Headless-browser check of the net-collector dashboard (issue 14), with Debian's chromium
// through playwright-core (never a downloaded browser).
//
//   node dashboard-check.mjs URL SCREENSHOT.png [--filter F --expect-rows N] [--bad-filter F]
//                            [--profile P] [--timeout-ms MS] [--chromium PATH]
//
// Checks, in order:
//   load      the page loads and reports ready (body[data-ready=1]);
//   graph     the graph canvas holds pixels of the channels' colours (not just the frame);
//   drill     the drill-down with --filter (default "any") shows rows: exactly N with
//             --expect-rows N, else at least one;
//   bad       the drill-down with --bad-filter (default "dst port 99999") shows the error with
//             its position (a caret under the filter text, at the column the API reported);
//   zoom      dragging across the graph zooms: the URL gets range=custom&start=@..&end=@.. and
//             the graph reloads with the narrower window;
//   clean     no console error, no page error, no failed request the whole time (the one 400 of
//             the bad filter's /api/flows request is expected: Chromium logs it as a console
//             error "Failed to load resource ... 400", which is allowed for that URL only).
// Saves a full-page screenshot (before the zoom), prints one JSON summary on stdout; exit 0 only when every check
// passes (1 = a check failed, 2 = usage or the browser could not start).
// Needs: npm ci in this folder (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1), /usr/bin/chromium.
import { chromium } from "playwright-core";

function usage(msg) {
  if (msg) console.error("dashboard-check: " + msg);
  console.error("usage: node dashboard-check.mjs URL SCREENSHOT.png [--filter F --expect-rows N] [--bad-filter F] [--profile P] [--timeout-ms MS] [--chromium PATH]");
  process.exit(2);
}

const args = process.argv.slice(2);
const pos = [];
const opt = { filter: "any", expectRows: null, badFilter: "dst port 99999", profile: null, timeoutMs: 30000, chromium: process.env.CHROMIUM || "/usr/bin/chromium" };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const val = () => (i + 1 < args.length ? args[++i] : usage(a + " needs a value"));
  if (a === "--filter") opt.filter = val();
  else if (a === "--expect-rows") opt.expectRows = Number(val());
  else if (a === "--bad-filter") opt.badFilter = val();
  else if (a === "--profile") opt.profile = val();
  else if (a === "--timeout-ms") opt.timeoutMs = Number(val());
  else if (a === "--chromium") opt.chromium = val();
  else if (a.startsWith("--")) usage("unknown option " + a);
  else pos.push(a);
}
if (pos.length !== 2) usage();
const [url, shot] = pos;

const summary = { url, screenshot: shot, checks: {}, console_errors: [], page_errors: [], failed_requests: [], ok: false };
const check = (name, ok, detail) => {
  summary.checks[name] = { ok: !!ok, ...detail };
  return ok;
};

let browser;
try {
  browser = await chromium.launch({
    executablePath: opt.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"],
  });
} catch (e) {
  summary.error = "cannot start " + opt.chromium + ": " + e.message;
  console.log(JSON.stringify(summary, null, 2));
  process.exit(2);
}

let expect400 = false;  // while the bad filter runs
let closing = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(opt.timeoutMs);
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const where = (m.location() && m.location().url) || "";
    if (expect400 && /status of 400/.test(m.text()) && where.includes("/api/flows")) return;
    summary.console_errors.push({ text: m.text(), url: where });
  });
  page.on("pageerror", (e) => summary.page_errors.push(String(e && e.stack ? e.stack : e)));
  page.on("requestfailed", (r) => {
    if (closing) return;
    summary.failed_requests.push({ url: r.url(), error: r.failure() && r.failure().errorText });
  });
  page.on("response", (r) => {
    const u = r.url();
    if (r.status() >= 400 && !(expect400 && r.status() === 400 && u.includes("/api/flows"))) {
      summary.failed_requests.push({ url: u, status: r.status() });
    }
  });

  let target = url;
  if (opt.profile) target += (url.includes("#") ? "&" : "#") + "profile=" + encodeURIComponent(opt.profile);
  await page.goto(target, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready='1']");
  check("load", true, { title: await page.title() });

  // graph: pixels of the channels' colours on the canvas.
  const g = await page.evaluate(() => {
    const c = document.getElementById("graph");
    const ctx = c.getContext("2d");
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    /* global series */
    const cols = (typeof series !== "undefined" && series ? series.channels : []).map((ch) => {
      const h = (ch.colour || "").replace("#", "");
      return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
    });
    let channel = 0, nonWhite = 0;
    for (let i = 0; i < d.length; i += 4) {
      const r = d[i], gg = d[i + 1], b = d[i + 2];
      if (r < 250 || gg < 250 || b < 250) nonWhite++;
      if (cols.some(([cr, cg, cb]) => Math.abs(r - cr) <= 6 && Math.abs(gg - cg) <= 6 && Math.abs(b - cb) <= 6)) channel++;
    }
    return { width: c.width, height: c.height, channel_pixels: channel, non_white_pixels: nonWhite, channels: cols.length };
  });
  check("graph", g.channels > 0 && g.channel_pixels > 100, g);

  // drill-down with a filter that has matches.
  const runFilter = async (text) => {
    await page.fill("#filter", text);
    await page.selectOption("#mode", "list");
    const done = page.waitForResponse((r) => r.url().includes("/api/flows"));
    await page.click("#run");
    const resp = await done;
    await page.waitForFunction(() => document.getElementById("dd-info").textContent !== "running…" ||
      !document.getElementById("filter-error").hidden);
    return resp;
  };
  const resp = await runFilter(opt.filter);
  const rows = await page.locator("#results tbody tr").count();
  const drillOk = resp.status() === 200 && (opt.expectRows === null ? rows > 0 : rows === opt.expectRows);
  check("drill", drillOk, { filter: opt.filter, status: resp.status(), rows, expected: opt.expectRows === null ? ">0" : opt.expectRows, info: await page.textContent("#dd-info") });

  // a bad filter shows its error with the position.
  expect400 = true;
  const bad = await runFilter(opt.badFilter);
  let badBody = {};
  try {
    badBody = await bad.json();
  } catch (e) {
    badBody = {};
  }
  await page.waitForSelector("#filter-error:not([hidden])");
  const caret = await page.textContent("#filter-caret");
  const msg = await page.textContent("#filter-error-msg");
  const fe = badBody.filter_error || {};
  const lines = caret.split("\n");
  const caretCol = lines.length > 1 ? lines[1].indexOf("^") + 1 : 0;
  const badOk = bad.status() === 400 && !!fe.message && caretCol === fe.column && msg.includes(fe.message);
  check("bad", badOk, { filter: opt.badFilter, status: bad.status(), message: msg, caret, caret_column: caretCol, api_column: fe.column ?? null });
  // give the 400's console message time to arrive while it is still expected
  await page.waitForTimeout(200);
  expect400 = false;

  // The screenshot shows the graph with the data, the channel table and the bad filter's error.
  await page.screenshot({ path: shot, fullPage: true });

  // zoom: dragging across the middle of the graph sets a custom range in the URL and redraws.
  const box = await page.locator("#graph").boundingBox();
  const before = await page.evaluate(() => (typeof series !== "undefined" && series ? series.window : null));
  const reloaded = page.waitForResponse((r) => r.url().includes("/api/series"));
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  const zr = await reloaded;
  await page.waitForFunction((b) => typeof series !== "undefined" && series && b && series.window.start > b.start, before);
  const after = await page.evaluate(() => series.window);
  const hash = await page.evaluate(() => location.hash);
  check("zoom", zr.status() === 200 && /range=custom/.test(hash) && after.start > before.start && after.end < before.end,
    { hash, before, after });

  closing = true;
  await page.close();
} catch (e) {
  summary.error = String(e && e.message ? e.message : e);
} finally {
  closing = true;
  await browser.close().catch(() => {});
}

check("clean", summary.console_errors.length === 0 && summary.page_errors.length === 0 && summary.failed_requests.length === 0, {});
summary.ok = !summary.error && Object.values(summary.checks).every((c) => c.ok);
console.log(JSON.stringify(summary, null, 2));
process.exit(summary.ok ? 0 : 1);
