// The technician's page: follows the agent through /api/stream (server-sent events),
// draws the map itself in SVG (no tiles: a strip has no internet) and the 24 h plots
// on canvas. Everything from the agent is put in the page as text, never as HTML: a
// callsign comes off the air and anyone can transmit one.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const RANGES_KM = [2, 5, 10, 25, 50, 100, 200, 400];
const KM_PER_DEG_LAT = 110.57;
const state = {
  map: null, rangeKm: null, autoRange: true, aircraft: [], events: [],
  lastMessage: 0, coverage: [],
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function fmt(v, digits) {
  if (v === null || v === undefined) return "";
  return digits === undefined ? String(v) : Number(v).toFixed(digits);
}

// -- projection: kilometres east and north of the site ---------------------------------

function project(lat, lon) {
  const s = state.map.site;
  const x = (lon - s.lon) * KM_PER_DEG_LAT * Math.cos((s.lat * Math.PI) / 180);
  const y = (lat - s.lat) * KM_PER_DEG_LAT;
  return [x, -y];
}

function hasSite() {
  return state.map && state.map.site.lat !== null && state.map.site.lon !== null;
}

function setRange(km) {
  state.rangeKm = km;
  const m = $("map");
  m.setAttribute("viewBox", `${-km} ${-km} ${2 * km} ${2 * km}`);
  $("map-range").textContent = `${km} km around the site`;
  drawStatic();
  drawCoverage();
  drawAircraft();
}

function fitRange() {
  // The selected aircraft and the configured areas decide; an airliner 150 km out
  // would shrink the strip to a dot (zoom out to see it).
  let far = 5;
  const chosen = state.aircraft.filter((a) => a.selected);
  for (const a of chosen.length ? chosen : state.aircraft) {
    if (a.distance_km !== null) far = Math.max(far, a.distance_km);
  }
  for (const f of state.map.geofences) {
    if (f.center) far = Math.max(far, dist(f.center) + (f.radius_km || 0));
    for (const p of f.polygon) far = Math.max(far, dist(p));
  }
  return RANGES_KM.find((r) => r >= far * 1.1) || RANGES_KM[RANGES_KM.length - 1];
}

function dist(p) {
  const [x, y] = project(p[0], p[1]);
  return Math.hypot(x, y);
}

// -- the fixed layers ----------------------------------------------------------------

function clear(id) {
  const g = $(id);
  while (g.firstChild) g.removeChild(g.firstChild);
  return g;
}

function fontKm() {
  return state.rangeKm / 22;
}

function drawStatic() {
  if (!hasSite()) return;
  const r = state.rangeKm;
  const rings = clear("layer-rings");
  for (const km of state.map.rings_km) {
    if (km > r * 1.45) continue;
    rings.append(el("svg:circle", { cx: 0, cy: 0, r: km, class: "ring", fill: "none",
      stroke: "#9aa5b1", "stroke-width": 1, "vector-effect": "non-scaling-stroke",
      "stroke-dasharray": "4 4" }));
    rings.append(el("svg:text", { x: km * 0.71 + fontKm() * 0.2, y: -km * 0.71,
      "font-size": fontKm(), fill: "#52606d" }, `${km} km`));
  }
  const fences = clear("layer-fences");
  for (const f of state.map.geofences) {
    const colour = f.kind === "strip" ? "#2f9e44" : "#7048e8";
    const common = { fill: colour, "fill-opacity": 0.12, stroke: colour, "stroke-width": 2,
      "vector-effect": "non-scaling-stroke", class: `fence ${f.kind}` };
    let label;
    if (f.center) {
      const [x, y] = project(f.center[0], f.center[1]);
      fences.append(el("svg:circle", { ...common, cx: x, cy: y, r: f.radius_km }));
      label = [x, y - f.radius_km];
    } else {
      const pts = f.polygon.map((p) => project(p[0], p[1]));
      fences.append(el("svg:polygon", { ...common, points: pts.map((p) => p.join(",")).join(" ") }));
      label = pts[0];
    }
    fences.append(el("svg:text", { x: label[0], y: label[1] - fontKm() * 0.3,
      "font-size": fontKm(), fill: colour, "text-anchor": "middle" }, f.name));
  }
  const aero = clear("layer-aero");
  const size = fontKm() * 0.5;
  for (const a of state.map.aerodromes) {
    const [x, y] = project(a.lat, a.lon);
    if (Math.abs(x) > r * 1.2 || Math.abs(y) > r * 1.2) continue;
    const g = el("svg:g", { class: "aerodrome" });
    g.append(el("svg:title", {}, `${a.code} ${a.name}`));
    g.append(el("svg:rect", { x: x - size / 2, y: y - size / 2, width: size, height: size,
      fill: "none", stroke: "#495057", "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
    g.append(el("svg:text", { x: x + size, y: y + size / 2, "font-size": fontKm() * 0.75,
      fill: "#495057" }, a.code));
    aero.append(g);
  }
  const site = clear("layer-site");
  const s = fontKm() * 0.45;
  site.append(el("svg:path", { d: `M0 ${-s} L${s} ${s} L${-s} ${s} Z`, fill: "#1f2933" }));
  site.append(el("svg:text", { x: s * 1.4, y: s * 2.4, "font-size": fontKm() * 0.8,
    fill: "#1f2933" }, state.map.site.name));
}

function drawCoverage() {
  const g = clear("layer-coverage");
  if (!hasSite() || state.coverage.length < 3) return;
  const pts = state.coverage.map((p) => project(p.lat, p.lon).join(","));
  g.append(el("svg:polygon", { points: pts.join(" "), fill: "#2b8a3e", "fill-opacity": 0.06,
    stroke: "#2b8a3e", "stroke-width": 1.5, "vector-effect": "non-scaling-stroke",
    id: "coverage-outline" }));
}

// -- aircraft ------------------------------------------------------------------------

function drawAircraft() {
  const trails = clear("layer-trails");
  const planes = clear("layer-aircraft");
  if (!hasSite()) return;
  const k = fontKm();
  for (const a of state.aircraft) {
    if (a.lat === null || a.lon === null) continue;
    const colour = a.selected ? "#e8590c" : "#3b6fb6";
    if (a.trail.length > 1) {
      trails.append(el("svg:polyline", { points: a.trail.map((p) => project(p[0], p[1]).join(",")).join(" "),
        fill: "none", stroke: colour, "stroke-opacity": 0.55, "stroke-width": a.selected ? 2.5 : 1.5,
        "vector-effect": "non-scaling-stroke" }));
    }
    const [x, y] = project(a.lat, a.lon);
    const s = (a.selected ? 0.75 : 0.5) * k;
    const g = el("svg:g", { class: a.selected ? "plane selected" : "plane",
      transform: `translate(${x} ${y}) rotate(${a.track_deg || 0})`, "data-icao": a.icao });
    g.append(el("svg:title", {}, `${a.icao} ${a.callsign || ""}`));
    g.append(el("svg:path", { d: `M0 ${-s} L${s * 0.7} ${s * 0.8} L0 ${s * 0.35} L${-s * 0.7} ${s * 0.8} Z`,
      fill: colour, stroke: "#fff", "stroke-width": 1, "vector-effect": "non-scaling-stroke" }));
    planes.append(g);
    const label = (a.callsign || a.icao) + (a.agl_ft !== null ? ` ${a.agl_ft}ft` : "");
    planes.append(el("svg:text", { x: x + s, y: y - s * 0.4, "font-size": k * 0.8,
      fill: colour, "font-weight": a.selected ? "bold" : "normal" }, label));
  }
}

function drawTable() {
  const body = $("aircraft").tBodies[0];
  const rows = state.aircraft.map((a) => {
    const tr = el("tr", { class: a.selected ? "selected" : "", "data-icao": a.icao });
    const cells = [
      [a.icao], [a.callsign], [a.category], [a.agl_ft, "n"], [fmt(a.gs_kt, 0), "n"],
      [fmt(a.distance_km, 1), "n"], [fmt(a.signal_dbfs, 1), "n"], [fmt(a.age_s, 0), "n"],
      [a.why.join(" "), "why"],
    ];
    for (const [v, cls] of cells) tr.append(el("td", cls ? { class: cls } : {}, v));
    return tr;
  });
  body.replaceChildren(...rows);
  const sel = state.aircraft.filter((a) => a.selected).length;
  $("aircraft-count").textContent = `${state.aircraft.length} tracked, ${sel} selected`;
}

// -- health --------------------------------------------------------------------------

function drawHealth(st) {
  $("site").textContent = st.site;
  document.title = `${st.state === "green" ? "" : st.state.toUpperCase() + " "}${st.site} - adsb-agent`;
  $("overall").className = `dot ${st.state}`;
  const r = st.rates || {};
  $("rates").textContent = `${fmt(r.messages_per_s, 0)} msg/s, ${fmt(r.positions_per_s, 1)} pos/s`;
  const rank = { red: 0, amber: 1, green: 2, grey: 3 };
  const sorted = st.badges.slice().sort((a, b) => rank[a.state] - rank[b.state]);
  const items = sorted.map((b) => {
    const compact = b.state === "green" || b.state === "grey" ? " compact" : "";
    const li = el("li", { class: `badge ${b.state}${compact}`, "data-name": b.name, "data-state": b.state });
    li.append(el("span", { class: "state" }, b.state));
    li.append(el("b", {}, b.name));
    li.append(el("span", { class: "text" }, b.text));
    if (b.fix) li.append(el("span", { class: "fix" }, b.fix));
    return li;
  });
  $("health").replaceChildren(...items);
}

// -- events --------------------------------------------------------------------------

function addEvents(events) {
  const seen = new Set(state.events.map((e) => e.n));
  const fresh = events.filter((e) => !seen.has(e.n));
  state.events = fresh.concat(state.events).sort((a, b) => b.n - a.n).slice(0, 100);
  const items = state.events.map((e) => {
    const li = el("li", { "data-event": e.event });
    const t = new Date(e.ts * 1000);
    li.append(el("time", { datetime: t.toISOString() }, t.toLocaleTimeString()));
    li.append(el("span", { class: "kind" }, e.event));
    li.append(document.createTextNode(`${e.callsign || e.icao}` + (e.agl_ft !== null ? ` ${e.agl_ft} ft AGL ` : " ")));
    li.append(el("span", { class: "tags" }, (e.tags || []).join(" ")));
    return li;
  });
  $("events").replaceChildren(...items);
}

// -- plots ---------------------------------------------------------------------------

function canvasFor(id) {
  const c = $(id);
  const ratio = window.devicePixelRatio || 1;
  const w = c.clientWidth || 300;
  const h = c.clientHeight || 120;
  c.width = Math.round(w * ratio);
  c.height = Math.round(h * ratio);
  const ctx = c.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  return [ctx, w, h];
}

function linePlot(id, points, colour, span) {
  const [ctx, w, h] = canvasFor(id);
  const left = 38, bottom = 16, top = 6;
  const vals = points.map((p) => p[1]).filter((v) => v !== null);
  ctx.fillStyle = "#5b6470";
  if (!vals.length) {
    ctx.fillText(id === "plot-noise" ? "no data: only IQ inputs (a dongle) measure it" : "no data yet", left, h / 2);
    return;
  }
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (lo > 0 && id !== "plot-noise") lo = 0;
  if (hi - lo < 1e-9) hi = lo + 1;
  const now = Date.now() / 1000;
  const t0 = now - span;
  const X = (t) => left + ((t - t0) / span) * (w - left - 4);
  const Y = (v) => top + (1 - (v - lo) / (hi - lo)) * (h - top - bottom);
  ctx.strokeStyle = "#d8dde3";
  ctx.beginPath(); ctx.moveTo(left, top); ctx.lineTo(left, h - bottom); ctx.lineTo(w, h - bottom); ctx.stroke();
  ctx.fillText(fmt(hi, hi < 10 ? 1 : 0), 2, top + 9);
  ctx.fillText(fmt(lo, lo < 10 && lo > -10 ? 1 : 0), 2, h - bottom);
  const hours = span / 3600;
  for (const frac of [1, 0.75, 0.5, 0.25, 0]) {
    const ago = frac * hours;
    const x = X(now - ago * 3600);
    const label = ago === 0 ? "now" : ago < 1 ? `-${Math.round(ago * 60)}min` : `-${ago}h`;
    ctx.fillText(label, Math.max(Math.min(x - 10, w - 26), left), h - 3);
  }
  ctx.strokeStyle = colour; ctx.lineWidth = 1.5; ctx.beginPath();
  let pen = false;
  for (const [t, v] of points) {
    if (v === null) { pen = false; continue; }
    if (pen) ctx.lineTo(X(t), Y(v)); else ctx.moveTo(X(t), Y(v));
    pen = true;
  }
  ctx.stroke();
  if (points.length === 1 && vals.length) { ctx.fillStyle = colour; ctx.fillRect(X(points[0][0]) - 2, Y(vals[0]) - 2, 4, 4); }
}

function histPlot(id, hist) {
  const [ctx, w, h] = canvasFor(id);
  const counts = hist.counts || [];
  const left = 4, bottom = 16;
  ctx.fillStyle = "#5b6470";
  const max = Math.max(0, ...counts);
  if (!max) { ctx.fillText("no levels yet", 38, h / 2); return; }
  const bw = (w - left) / counts.length;
  counts.forEach((n, i) => {
    const level = hist.low_dbfs + i * hist.bin_db;
    ctx.fillStyle = level >= -3 ? "#c62828" : "#3b6fb6";
    const bh = (n / max) * (h - bottom - 4);
    ctx.fillRect(left + i * bw, h - bottom - bh, Math.max(bw - 1, 1), bh);
    if (level % 10 === 0) { ctx.fillStyle = "#5b6470"; ctx.fillText(String(level), left + i * bw, h - 3); }
  });
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

async function refreshHistory() {
  try {
    const hist = await getJSON("/api/history");
    // Zoom to what there is: the last hour, 6 hours, or the whole 24 h.
    const first = hist.rows.length ? hist.rows[0][0] : Date.now() / 1000;
    const age = Date.now() / 1000 - first;
    const span = age < 3000 ? 3600 : age < 6 * 3600 ? 6 * 3600 : 24 * 3600;
    const col = (i) => hist.rows.map((r) => [r[0] + hist.step_s / 2, r[i]]);
    linePlot("plot-messages", col(1), "#3b6fb6", span);
    linePlot("plot-positions", col(2), "#e8590c", span);
    linePlot("plot-aircraft", col(3), "#2b8a3e", span);
    linePlot("plot-noise", col(4), "#7048e8", span);
    histPlot("plot-hist", hist.histogram);
  } catch (err) { console.warn(err); }
}

async function refreshCoverage() {
  try {
    state.coverage = (await getJSON("/api/coverage")).points;
    drawCoverage();
  } catch (err) { console.warn(err); }
}

// -- the live stream -----------------------------------------------------------------

function connect() {
  const es = new EventSource("/api/stream");
  es.addEventListener("aircraft", (m) => {
    const d = JSON.parse(m.data);
    state.aircraft = d.aircraft;
    state.lastMessage = Date.now();
    if (state.autoRange && hasSite()) {
      const r = fitRange();
      if (r !== state.rangeKm) setRange(r);
    }
    drawAircraft();
    drawTable();
  });
  es.addEventListener("status", (m) => drawHealth(JSON.parse(m.data)));
  es.addEventListener("events", (m) => addEvents(JSON.parse(m.data).events));
}

function watchLive() {
  const age = (Date.now() - state.lastMessage) / 1000;
  const live = $("live");
  if (!state.lastMessage) { live.className = "live grey"; live.textContent = "connecting"; }
  else if (age < 3) { live.className = "live green"; live.textContent = "live"; }
  else { live.className = "live red"; live.textContent = `no data for ${age.toFixed(0)} s`; }
}

async function start() {
  try {
    state.map = await getJSON("/api/map");
  } catch (err) {
    $("live").textContent = "cannot reach the agent";
    $("live").className = "live red";
    return;
  }
  $("zoom-in").addEventListener("click", () => {
    state.autoRange = false;
    const i = RANGES_KM.indexOf(state.rangeKm);
    setRange(RANGES_KM[Math.max(i - 1, 0)]);
  });
  $("zoom-out").addEventListener("click", () => {
    state.autoRange = false;
    const i = RANGES_KM.indexOf(state.rangeKm);
    setRange(RANGES_KM[Math.min(i + 1, RANGES_KM.length - 1)]);
  });
  $("zoom-fit").addEventListener("click", () => { state.autoRange = true; setRange(fitRange()); });
  if (hasSite()) setRange(fitRange());
  else $("map-range").textContent = "set site.lat and site.lon to draw the map";
  connect();
  refreshCoverage();
  refreshHistory();
  setInterval(refreshCoverage, 60000);
  setInterval(refreshHistory, 30000);
  setInterval(watchLive, 1000);
  window.addEventListener("resize", refreshHistory);
}

start();
