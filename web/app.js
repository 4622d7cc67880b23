// net-collector dashboard: plain JavaScript, no framework, no build step, no external resources.
// State lives in the URL hash (#profile=..&range=..&start=..&end=..&metric=..&proto=..&filter=..
// &mode=..) so a view can be shared. Data: /api/profiles, /api/series, /api/events, /api/flows,
// /api/status; /api/stream pushes "step" when the profiler wrote new steps.
"use strict";

const RANGES = { hour: "-1h", day: "-1d", week: "-7d", month: "-30d", year: "-365d" };
const LIST_ORDERS = ["newest", "first", "last", "bytes", "packets", "duration", "bps", "pps", "bpp"];
const TOP_ORDERS = ["bytes", "packets", "flows", "bps", "pps", "bpp"];

const $ = (id) => document.getElementById(id);
const el = (tag, attrs, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
};

// ---- state in the URL ---------------------------------------------------------------------
const state = {
  profile: "", range: "hour", start: "", end: "", metric: "traffic", proto: "any",
  filter: null, mode: "list", key: "srcip", order: "", limit: "100",
};

function readHash() {
  const p = new URLSearchParams(location.hash.replace(/^#/, ""));
  state.profile = p.get("profile") || "";
  state.range = p.get("range") || (p.get("start") ? "custom" : "hour");
  state.start = p.get("start") || "";
  state.end = p.get("end") || "";
  state.metric = p.get("metric") || "traffic";
  state.proto = p.get("proto") || "any";
  state.filter = p.has("filter") ? p.get("filter") : null;
  state.mode = p.get("mode") || "list";
  state.key = p.get("key") || "srcip";
  state.order = p.get("order") || "";
  state.limit = p.get("limit") || "100";
}

function writeHash() {
  const p = new URLSearchParams();
  if (state.profile) p.set("profile", state.profile);
  p.set("range", state.range);
  if (state.range === "custom") {
    p.set("start", state.start);
    p.set("end", state.end);
  }
  p.set("metric", state.metric);
  p.set("proto", state.proto);
  if (state.filter !== null) {
    p.set("filter", state.filter);
    p.set("mode", state.mode);
    if (state.mode === "top") p.set("key", state.key);
    if (state.order) p.set("order", state.order);
    p.set("limit", state.limit);
  }
  const h = "#" + p.toString();
  if (location.hash !== h) history.replaceState(null, "", h);
}

function windowParams() {
  if (state.range === "custom" && state.start && state.end) return { start: state.start, end: state.end };
  return { start: RANGES[state.range] || "-1h", end: "now" };
}

function isLive() {
  return state.range !== "custom";
}

// ---- formatting ---------------------------------------------------------------------------
function si(v, unit, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  const steps = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [m, p] of steps) {
    if (a >= m) return String(Number((v / m).toPrecision(digits))) + " " + p + unit;
  }
  if (a === 0) return "0 " + unit;
  // Number(...) turns toPrecision's "2.0e+2" back into "200".
  return (a < 0.01 ? v.toExponential(1) : String(Number(v.toPrecision(digits)))) + " " + unit;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function timeText(unixS, withDate = true) {
  const d = new Date(unixS * 1000);
  const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
  if (!withDate) return hm;
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + hm;
}

function isoText(iso) {
  if (!iso) return "ongoing";
  const t = Date.parse(iso);
  return Number.isNaN(t) ? String(iso) : timeText(t / 1000) + ":" + pad(new Date(t).getSeconds());
}

// ---- fetching -----------------------------------------------------------------------------
async function api(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null) q.set(k, v);
  }
  const url = path + (q.toString() ? "?" + q.toString() : "");
  let res;
  try {
    res = await fetch(url, { cache: "no-store" });
  } catch (e) {
    return { ok: false, status: 0, body: { error: "the daemon does not answer (" + e.message + ")" } };
  }
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = { error: "bad answer from " + path + " (status " + res.status + ")" };
  }
  return { ok: res.ok, status: res.status, body };
}

// ---- profiles -----------------------------------------------------------------------------
let profiles = [];
let profilesEnabled = true;

async function loadProfiles() {
  const r = await api("/api/profiles");
  const sel = $("profile");
  sel.textContent = "";
  if (!r.ok) {
    showHint("Profiles could not be read: " + (r.body && r.body.error));
    return;
  }
  profilesEnabled = r.body.enabled;
  profiles = r.body.profiles || [];
  for (const p of profiles) sel.append(el("option", { value: p.name }, p.name));
  if (!profilesEnabled) {
    showHint("Profiles are off in this daemon: enable them in the configuration (profiles:).");
  } else if (!profiles.length) {
    showHint(null, true);
  } else {
    $("hint").hidden = true;
  }
  if (!profiles.some((p) => p.name === state.profile)) state.profile = profiles.length ? profiles[0].name : "";
  sel.value = state.profile;
  sel.disabled = !profiles.length;
}

function showHint(text, noProfiles) {
  const h = $("hint");
  h.textContent = "";
  if (noProfiles) {
    h.append("No profiles yet. Add one from the command line, for example:",
      el("pre", {}, "net-collector profile add zone1\n" +
        "net-collector profile channel add zone1/ssh --filter 'port 22' --colour '#48C6FF'\n" +
        "net-collector profile channel add zone1/dns --filter 'port 53' --colour '#7BD47B' --sign -\n" +
        "net-collector profile commit zone1"),
      "or declare it under profiles: in the configuration. The page updates when the first steps are written.");
  } else {
    h.textContent = text;
  }
  h.hidden = false;
}

// ---- series and graph ---------------------------------------------------------------------
let series = null;   // last /api/series answer
let events = [];     // last /api/events answer's events
let seriesSeq = 0;

async function loadSeries() {
  const seq = ++seriesSeq;
  const w = windowParams();
  if (!state.profile) {
    series = null;
    draw();
    renderChannels();
    $("window").textContent = "";
    await loadEvents(w);
    return;
  }
  const r = await api("/api/series", { profile: state.profile, start: w.start, end: w.end, metric: state.metric, proto: state.proto });
  if (seq !== seriesSeq) return;  // a newer request is on its way
  if (!r.ok) {
    series = null;
    showHint("Graph: " + r.body.error);
  } else {
    series = r.body;
    if (profiles.length) $("hint").hidden = true;
    $("window").textContent = timeText(series.window.start) + " – " + timeText(series.window.end);
  }
  await loadEvents(series ? { start: "@" + series.window.start, end: "@" + series.window.end } : w);
  draw();
  renderChannels();
  $("dd-window").textContent = series ? "(" + timeText(series.window.start) + " – " + timeText(series.window.end) + ")" : "";
}

async function loadEvents(w) {
  const r = await api("/api/events", w);
  events = r.ok && r.body.enabled ? r.body.events || [] : [];
  renderEvents(r.ok ? r.body.enabled : false, r.ok ? null : r.body.error);
}

// Plot geometry, shared by draw() and the drag selection.
const geo = { left: 70, right: 12, top: 12, bottom: 28, width: 0, height: 0, t0: 0, t1: 1 };

function xOf(t) {
  return geo.left + ((t - geo.t0) / (geo.t1 - geo.t0)) * (geo.width - geo.left - geo.right);
}
function tOf(x) {
  return geo.t0 + ((x - geo.left) / (geo.width - geo.left - geo.right)) * (geo.t1 - geo.t0);
}

function niceStep(range, target) {
  const raw = range / target;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

function draw() {
  const canvas = $("graph");
  const rect = canvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(rect.width * dpr));
  canvas.height = Math.max(1, Math.round(rect.height * dpr));
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  geo.width = rect.width;
  geo.height = rect.height;
  g.fillStyle = "#ffffff";
  g.fillRect(0, 0, rect.width, rect.height);
  g.font = "11px system-ui, sans-serif";
  const plotL = geo.left, plotR = rect.width - geo.right, plotT = geo.top, plotB = rect.height - geo.bottom;
  g.strokeStyle = "#c8ced6";
  g.strokeRect(plotL + 0.5, plotT + 0.5, plotR - plotL - 1, plotB - plotT - 1);
  if (!series || !series.points) {
    g.fillStyle = "#6b7480";
    g.textAlign = "center";
    g.fillText(state.profile ? "no data in this window yet" : "no profile", (plotL + plotR) / 2, (plotT + plotB) / 2);
    return;
  }
  const n = series.points;
  geo.t0 = series.window.start;
  geo.t1 = series.window.end;
  const chans = series.channels.filter((c) => c.values && c.values.length);
  // Stack: '+' channels upward, '-' channels downward, each in drawing order.
  const up = new Array(n).fill(0), down = new Array(n).fill(0);
  const layers = [];
  for (const c of chans) {
    const base = c.sign === "-" ? down : up;
    const lo = base.slice();
    for (let i = 0; i < n; i++) base[i] += c.values[i] || 0;
    layers.push({ c, lo, hi: base.slice(), neg: c.sign === "-" });
  }
  let maxUp = Math.max(0, ...up), maxDown = Math.max(0, ...down);
  if (maxUp === 0 && maxDown === 0) maxUp = 1;
  const yOf = (v) => {
    const span = maxUp + maxDown;
    return plotT + ((maxUp - v) / span) * (plotB - plotT);
  };
  // Time before the profile's data start: grey.
  if (series.profile_start && series.profile_start > geo.t0) {
    g.fillStyle = "#eceff3";
    const x = Math.min(plotR, xOf(series.profile_start));
    g.fillRect(plotL, plotT, x - plotL, plotB - plotT);
  }
  // Events: translucent bands.
  events.forEach((e, idx) => {
    const s = Date.parse(e.start) / 1000;
    const en = e.end ? Date.parse(e.end) / 1000 : geo.t1;
    if (Number.isNaN(s) || en < geo.t0 || s > geo.t1) return;
    const x0 = Math.max(plotL, xOf(s)), x1 = Math.min(plotR, Math.max(xOf(en), xOf(s) + 2));
    g.fillStyle = "rgba(229, 83, 61, 0.15)";
    g.fillRect(x0, plotT, x1 - x0, plotB - plotT);
    g.fillStyle = "#e5533d";
    g.fillRect(x0, plotT, 2, plotB - plotT);
    g.textAlign = "left";
    g.fillText("#" + (idx + 1), x0 + 3, plotT + 11);
  });
  // Layers.
  const x = (i) => xOf(series.start + (i + 0.5) * series.step);
  for (const L of layers) {
    g.beginPath();
    for (let i = 0; i < n; i++) {
      const v = L.neg ? -L.hi[i] : L.hi[i];
      if (i === 0) g.moveTo(x(i), yOf(v));
      else g.lineTo(x(i), yOf(v));
    }
    for (let i = n - 1; i >= 0; i--) g.lineTo(x(i), yOf(L.neg ? -L.lo[i] : L.lo[i]));
    g.closePath();
    g.fillStyle = L.c.colour || "#888";
    g.fill();
  }
  // Axis at zero and y labels.
  g.strokeStyle = "#1d2430";
  g.beginPath();
  g.moveTo(plotL, yOf(0) + 0.5);
  g.lineTo(plotR, yOf(0) + 0.5);
  g.stroke();
  const ystep = niceStep(maxUp + maxDown, 5);
  g.fillStyle = "#4a5360";
  g.textAlign = "right";
  g.strokeStyle = "#eef1f4";
  for (let v = -Math.floor(maxDown / ystep) * ystep; v <= maxUp + 1e-9; v += ystep) {
    const y = yOf(v);
    g.fillText(si(Math.abs(v), series.unit.replace("/s", "") + "/s", 2), plotL - 4, y + 4);
    if (Math.abs(v) > 1e-12) {
      g.beginPath();
      g.moveTo(plotL, y + 0.5);
      g.lineTo(plotR, y + 0.5);
      g.stroke();
    }
  }
  // Time labels.
  const span = geo.t1 - geo.t0;
  const candidates = [60, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 604800, 2592000];
  const tstep = candidates.find((c) => span / c <= 8) || 2592000;
  g.textAlign = "center";
  g.fillStyle = "#4a5360";
  for (let t = Math.ceil(geo.t0 / tstep) * tstep; t <= geo.t1; t += tstep) {
    const xx = xOf(t);
    g.fillText(timeText(t, span > 86400 * 2), xx, plotB + 16);
    g.fillRect(xx, plotB, 1, 4);
  }
}

function renderChannels() {
  const body = $("channels").tBodies[0];
  body.textContent = "";
  if (!series) return;
  const unit = series.unit;
  const tunit = series.total_unit === "bytes" ? "B" : " " + series.total_unit;
  for (const c of series.channels) {
    const s = c.stats;
    body.append(el("tr", {},
      el("td", {}, el("span", { class: "swatch", style: "background:" + c.colour })),
      el("td", {}, c.name + (c.error ? " (" + c.error + ")" : "")),
      el("td", {}, c.sign === "-" ? "−" : "+"),
      el("td", { class: "num" }, s ? si(s.min, unit) : "–"),
      el("td", { class: "num" }, s ? si(s.max, unit) : "–"),
      el("td", { class: "num" }, s ? si(s.average, unit) : "–"),
      el("td", { class: "num" }, s ? si(s.p95, unit) : "–"),
      el("td", { class: "num" }, s ? si(s.total, tunit.trim() === "B" ? "B" : series.total_unit) : "–")));
  }
}

function renderEvents(enabled, error) {
  const box = $("events");
  box.textContent = "";
  if (error) {
    box.append(el("p", { class: "muted" }, "Events could not be read: " + error));
    return;
  }
  if (!enabled) {
    box.append(el("p", { class: "muted" }, "Spike detection is off in this daemon (correlation:)."));
    return;
  }
  if (!events.length) {
    box.append(el("p", { class: "muted" }, "No spike events in this window."));
    return;
  }
  events.forEach((e, idx) => {
    const s = e.subject || {};
    const who = [s.kind === "address" ? "address " + s.name : "port " + s.name];
    if (s.bridge) who.push("bridge " + s.bridge);
    if (s.ofport !== null && s.ofport !== undefined) who.push("ofport " + s.ofport);
    if (s.vm) who.push("VM " + s.vm);
    const rate = (v) => (e.metric === "packets" ? si(v, "p/s") : si((v || 0) * 8, "bit/s"));
    const div = el("div", { class: "event", id: "event-" + (idx + 1) },
      el("div", { class: "title" }, "#" + (idx + 1) + " " + (e.direction || "") + " " + (e.metric || "") +
        " spike on " + who.join(", ")),
      el("div", {}, isoText(e.start) + " → " + isoText(e.end) + ": peak " + rate(e.observed) +
        " vs baseline " + rate(e.baseline) + (e.ratio ? " (" + Number(e.ratio).toFixed(1) + "×)" : "")));
    const top = e.top || [];
    if (top.length) {
      const ul = el("ul", {});
      for (const t of top.slice(0, 5)) {
        ul.append(el("li", {}, t.key + " — " + si(t.bytes, "B") + ", " + Math.round((t.share || 0) * 100) + "%"));
      }
      div.append(el("div", { class: "small" }, "top peers:"), ul);
    }
    const nl = e.netlink || {};
    const facts = [];
    if (nl.operstate) facts.push("link " + nl.operstate);
    if (nl.mtu) facts.push("mtu " + nl.mtu);
    if (nl.addresses && nl.addresses.length) facts.push(nl.addresses.join(" "));
    for (const ch of nl.changes || []) facts.push(isoText(ch.time) + " " + ch.what);
    if (e.exporters && e.exporters.length) facts.push("exporters " + e.exporters.join(", "));
    if (facts.length) div.append(el("div", { class: "small muted" }, facts.join(" · ")));
    box.append(div);
  });
}

// ---- drag to zoom ---------------------------------------------------------------------------
let dragFrom = null;

function setupDrag() {
  const canvas = $("graph"), sel = $("selection");
  const px = (ev) => ev.clientX - canvas.getBoundingClientRect().left;
  canvas.addEventListener("mousedown", (ev) => {
    if (!series) return;
    dragFrom = Math.max(geo.left, Math.min(geo.width - geo.right, px(ev)));
    sel.style.left = dragFrom + "px";
    sel.style.width = "0px";
    sel.hidden = false;
  });
  window.addEventListener("mousemove", (ev) => {
    if (dragFrom === null) return;
    const x = Math.max(geo.left, Math.min(geo.width - geo.right, px(ev)));
    sel.style.left = Math.min(x, dragFrom) + "px";
    sel.style.width = Math.abs(x - dragFrom) + "px";
  });
  window.addEventListener("mouseup", (ev) => {
    if (dragFrom === null) return;
    const x = Math.max(geo.left, Math.min(geo.width - geo.right, px(ev)));
    const a = Math.min(x, dragFrom), b = Math.max(x, dragFrom);
    dragFrom = null;
    sel.hidden = true;
    if (b - a < 5) return;
    const t0 = Math.floor(tOf(a)), t1 = Math.ceil(tOf(b));
    if (t1 - t0 < 10) return;
    state.range = "custom";
    state.start = "@" + t0;
    state.end = "@" + t1;
    update();
  });
}

// ---- drill-down -----------------------------------------------------------------------------
let ddSeq = 0;

function fillOrders() {
  const sel = $("order");
  const list = state.mode === "top" ? TOP_ORDERS : LIST_ORDERS;
  sel.textContent = "";
  for (const o of list) sel.append(el("option", { value: o }, o));
  sel.value = list.includes(state.order) ? state.order : list[0];
  document.querySelectorAll(".top-only").forEach((e) => (e.hidden = state.mode !== "top"));
}

async function runDrill() {
  const seq = ++ddSeq;
  const info = $("dd-info");
  $("filter-error").hidden = true;
  const head = $("results").tHead, body = $("results").tBodies[0];
  const w = series ? { start: "@" + series.window.start, end: "@" + series.window.end } : windowParams();
  info.textContent = "running…";
  const params = { filter: state.filter || "", start: w.start, end: w.end, mode: state.mode, order: $("order").value, limit: state.limit };
  if (state.mode === "top") params.key = state.key;
  const r = await api("/api/flows", params);
  if (seq !== ddSeq) return;
  head.textContent = "";
  body.textContent = "";
  if (!r.ok) {
    info.textContent = "";
    showQueryError(r);
    return;
  }
  const res = r.body;
  const cols = res.mode === "list" ? res.columns : res.columns.concat(["first", "last"]);
  head.append(el("tr", {}, ...cols.map((c) => el("th", { class: isNum(c) ? "num" : "" }, c))));
  for (const row of res.rows) {
    body.append(el("tr", { class: "row" }, ...cols.map((c) => el("td", { class: isNum(c) ? "num" : "" }, cell(row, c)))));
  }
  const t = res.totals || {};
  info.textContent = res.rows.length + " rows" + (res.truncated ? " (more match: raise the limit or narrow the filter)" : "") +
    " · " + (t.flows || 0) + " matching flows, " + si(t.bytes || 0, "B") + " · scanned " + (t.rows_scanned || 0) +
    " rows in " + (t.seconds || 0).toFixed(2) + " s";
}

function isNum(c) {
  return ["packets", "bytes", "flows", "bps", "pps", "bpp", "duration", "sampling_rate", "src_port", "dst_port"].includes(c);
}

function cell(row, c) {
  if (c === "duration") {
    const a = Date.parse(row.first), b = Date.parse(row.last);
    return Number.isNaN(a) || Number.isNaN(b) ? "" : ((b - a) / 1000).toFixed(3);
  }
  const v = row[c];
  if (v === undefined || v === null) return "";
  if (c === "first" || c === "last") return isoText(v);
  if (c === "bytes") return si(v, "B");
  if (c === "bps") return si(v, "bit/s");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function showQueryError(r) {
  const box = $("filter-error");
  const fe = r.body && r.body.filter_error;
  $("filter-error-msg").textContent = r.status === 503 ? "Busy: " + r.body.error : r.body.error || "error " + r.status;
  const pre = $("filter-caret");
  pre.textContent = "";
  if (fe) {
    const lines = (state.filter || "").split("\n");
    const line = lines[(fe.line || 1) - 1] || "";
    pre.textContent = line + "\n" + " ".repeat(Math.max(0, (fe.column || 1) - 1)) + "^ " + fe.message;
    pre.hidden = false;
  } else {
    pre.hidden = true;
  }
  box.hidden = false;
}

// ---- live updates -------------------------------------------------------------------------
let refreshTimer = null;

function connectStream() {
  if (!window.EventSource) return;
  const es = new EventSource("/api/stream");
  es.addEventListener("open", () => $("live").classList.add("on"));
  es.addEventListener("error", () => $("live").classList.remove("on"));
  es.addEventListener("step", () => {
    if (!isLive()) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(loadSeries, 300);  // one refresh for a burst of steps
  });
  es.addEventListener("status", (ev) => {
    try {
      showStatus(JSON.parse(ev.data));
    } catch (e) {
      /* ignore a malformed status */
    }
  });
}

function showStatus(s) {
  const parts = ["version " + ((s.daemon && s.daemon.version) || s.version)];
  if (s.step_s) parts.push("step " + s.step_s + " s");
  parts.push(s.store ? "flow store on" : "no flow store");
  if (!s.events) parts.push("no spike events");
  if (s.daemon_error) parts.push("status: " + s.daemon_error);
  $("status").textContent = parts.join(" · ");
}

// ---- wiring -------------------------------------------------------------------------------
function syncControls() {
  $("profile").value = state.profile;
  $("metric").value = state.metric;
  $("proto").value = state.proto;
  document.querySelectorAll("#ranges button").forEach((b) => b.classList.toggle("active", b.dataset.range === state.range));
  if (state.filter !== null) $("filter").value = state.filter;
  $("mode").value = state.mode;
  $("key").value = state.key;
  $("limit").value = state.limit;
  fillOrders();
}

async function update() {
  writeHash();
  syncControls();
  await loadSeries();
}

async function main() {
  readHash();
  syncControls();
  setupDrag();
  $("profile").addEventListener("change", () => { state.profile = $("profile").value; update(); });
  $("metric").addEventListener("change", () => { state.metric = $("metric").value; update(); });
  $("proto").addEventListener("change", () => { state.proto = $("proto").value; update(); });
  $("ranges").addEventListener("click", (ev) => {
    const r = ev.target.dataset && ev.target.dataset.range;
    if (!r) return;
    state.range = r;
    update();
  });
  $("mode").addEventListener("change", () => { state.mode = $("mode").value; state.order = ""; fillOrders(); });
  $("drill").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.filter = $("filter").value;
    state.mode = $("mode").value;
    state.key = $("key").value.trim() || "srcip";
    state.order = $("order").value;
    state.limit = $("limit").value || "100";
    writeHash();
    runDrill();
  });
  window.addEventListener("hashchange", async () => {
    readHash();
    syncControls();
    await loadSeries();
    if (state.filter !== null && !$("run").disabled) runDrill();
  });
  window.addEventListener("resize", () => draw());
  const st = await api("/api/status");
  if (st.ok) showStatus(st.body);
  const haveStore = st.ok && st.body.store;
  if (!haveStore) {
    $("run").disabled = true;
    $("dd-info").textContent = "Drill-down needs the flow store, which is off in this daemon (store:).";
  }
  await loadProfiles();
  await update();
  if (state.filter !== null && haveStore) runDrill();
  connectStream();
  document.body.dataset.ready = "1";  // for the browser check
}

main();
