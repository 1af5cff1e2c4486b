// The live view of a running twin: server-sent events in, charts and the line out, controls as JSON POSTs.
// History is kept in rings of the server's sizes (the last hour by the second, the whole run by the minute),
// so the page's memory is bounded however long the run.
"use strict";

const FINE = 3600, COARSE = 2880, MAX_ROWS = 200;
const COLORS = { all: "#e6e9ee", status: "#4e9ddb", setup: "#b48ae8", parameters: "#2fc4d4", trays: "#d4d43a",
  flow: "#4cc44c", other: "#ff8c2e" };
const STATE_TEXT = { run: "run", idle: "idle", down: "down", alarm: "alarm", interlocked: "interlocked" };
const view = {
  layout: null, fine: [], coarse: [], line: null, last: null, controls: [], interlocks: new Map(),
  range: 300, updates: 0, lags: [], interlockLags: [], points: {}, ended: false, connectedAt: 0, stations: {},
};
window.twinView = view;
const $ = (id) => document.getElementById(id);

function push(ring, item, max) {
  ring.push(item);
  if (ring.length > max) ring.splice(0, ring.length - max);
}

function hms(s) {
  s = Math.max(0, Math.floor(s || 0));
  return Math.floor(s / 3600) + ":" + String(Math.floor(s / 60) % 60).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
}

function num(v, digits) {
  if (v === null || v === undefined) return "-";
  return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 0 : digits });
}

function text(el, value) { if (el.textContent !== value) el.textContent = value; }

// -- events --------------------------------------------------------------------------------------------
function connect() {
  const es = new EventSource("/events");
  es.addEventListener("hello", (e) => onHello(JSON.parse(e.data)));
  es.addEventListener("layout", (e) => onLayout(JSON.parse(e.data)));
  es.addEventListener("tick", (e) => onTick(JSON.parse(e.data)));
  es.addEventListener("line", (e) => onLine(JSON.parse(e.data)));
  es.addEventListener("control", (e) => onControl(JSON.parse(e.data)));
  es.addEventListener("end", (e) => { onEnd(JSON.parse(e.data)); es.close(); });
  es.onerror = () => { if (!view.ended) setState("reconnecting"); };
}

function onHello(d) {
  view.connectedAt = Date.now() / 1000;
  view.fine = d.history.fine.slice(-FINE);
  view.coarse = d.history.coarse.slice(-COARSE);
  view.controls = d.controls.slice(-MAX_ROWS);
  $("token-row").hidden = !d.token_needed;
  onLayout(d.layout);
  if (d.last && d.last.t) figures(d.last);
  if (d.line && d.line.stations) onLine(d.line);
  renderControls();
  charts();
  setState(d.last && d.last.phase ? d.last.phase : "starting");
}

function onLayout(layout) {
  view.layout = layout;
  text($("line-name"), layout.line + " · " + layout.target + " MES");
  text($("run-folder"), layout.run_folder);
  buildLine(layout);
  buildEquipmentChoice(layout);
  if (!$("speed").value) $("speed").value = layout.speed;
}

function onTick(d) {
  const s = d.sample;
  view.updates++;
  push(view.fine, s, FINE);
  if (d.coarse) push(view.coarse, d.coarse, COARSE);
  const lag = Date.now() - s.t * 1000;
  push(view.lags, lag, 600);
  text($("lag"), num(lag) + " ms");
  text($("updates"), String(view.updates));
  figures(s);
  if (d.line) onLine(d.line);
  charts();
  setState(s.phase);
}

function onControl(entry) {
  push(view.controls, entry, MAX_ROWS);
  renderControls();
  charts();
}

function onEnd(d) {
  view.ended = true;
  setState(d.state);
  text($("control-result"), "the run has ended (" + d.state + "): its folder is " + d.run_folder);
  for (const b of document.querySelectorAll("#controls button")) b.disabled = true;
}

function setState(state) {
  const el = $("run-state");
  text(el, state);
  el.className = "badge " + state;
}

// -- figures ---------------------------------------------------------------------------------------------
function figures(s) {
  view.last = s;
  const L = view.layout || {};
  text($("f-virtual"), hms(s.virtual_s));
  text($("f-progress"), L.duration_s ? "of " + hms(L.duration_s) + " (" + num(100 * s.virtual_s / L.duration_s, 0) + " %)" : "");
  text($("f-wall"), hms(s.wall_s));
  text($("f-speed"), num(s.speed_asked, 1) + " / " + num(s.speed_achieved, 1));
  text($("f-cells"), num(s.cells_out));
  text($("f-cph"), num(s.cells_per_hour));
  text($("f-requests"), num(s.requests) + " (" + num(s.groups.all ? s.groups.all.rps : 0) + "/s)");
  text($("f-errors"), num(s.failures));
  text($("f-late"), num(s.late_starts));
  const link = s.link, el = $("f-link");
  const state = !link.online ? "offline" : link.draining || link.backlog ? "draining" : "online";
  text(el, state);
  el.className = "badge " + state;
  let extra = link.backlog ? "backlog " + num(link.backlog) : "";
  if (link.drain_per_s) extra += ", draining " + num(link.drain_per_s) + "/s";
  if (link.outages) extra += (extra ? " · " : "") + link.outages + " outage" + (link.outages > 1 ? "s" : "");
  if (link.mes_up === false) extra += (extra ? " · " : "") + "MES process down";
  text($("f-backlog"), extra);
  const rows = Object.entries(s.errors || {});
  const body = $("errors").tBodies[0];
  body.innerHTML = "";
  for (const [code, n] of rows) {
    const tr = body.insertRow();
    tr.insertCell().textContent = /^-?\d+$/.test(code) ? "code " + code : code;
    tr.insertCell().textContent = num(n);
  }
  if (!rows.length) body.insertRow().insertCell().textContent = "no failed exchange";
  if (s.shards) shards(s.shards);
}

// A sharded run (twin run --workers N, a factory): each shard's rate under the totals; a dead one in red.
function shards(rows) {
  $("shards-section").hidden = false;
  text($("shards-note"), rows.length + " shards, the totals above are their sum");
  const body = $("shards").tBodies[0];
  body.innerHTML = "";
  for (const r of rows) {
    const tr = body.insertRow();
    if (r.dead) tr.className = "dead";
    for (const v of [r.shard, r.worker, r.line, r.copies.join(","), r.dead ? "DEAD" : num(r.rps), num(r.requests),
                     num(r.failures), hms(r.virtual_s), num(r.speed_achieved, 1)]) {
      tr.insertCell().textContent = String(v);
    }
  }
}

// -- the line ---------------------------------------------------------------------------------------------
function buildLine(layout) {
  const line = $("line");
  line.innerHTML = "";
  view.stations = {};
  const shown = new Set();
  for (const st of layout.stations) {
    const box = document.createElement("div");
    box.className = "station idle";
    box.dataset.station = st.id;
    box.dataset.state = "idle";
    box.title = st.process;
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = st.id;
    const eqs = document.createElement("div");
    eqs.className = "eqs";
    for (const code of (layout.equipment || {})[st.id] || []) {
      const e = document.createElement("span");
      e.className = "eq idle";
      e.title = code;
      e.dataset.equipment = code;
      eqs.appendChild(e);
    }
    box.append(name, eqs);
    line.appendChild(box);
    view.stations[st.id] = { box, eqs };
    if (st.output && !shown.has(st.output) && layout.buffers.includes(st.output)) {
      shown.add(st.output);
      const buf = document.createElement("div");
      buf.className = "buffer";
      buf.dataset.buffer = st.output;
      buf.innerHTML = "<b>-</b>";
      buf.appendChild(document.createTextNode(st.output));
      line.appendChild(buf);
    }
  }
  const legend = $("legend");
  legend.innerHTML = "";
  for (const s of layout.states) {
    const chip = document.createElement("span");
    chip.className = s;
    chip.textContent = STATE_TEXT[s] || s;
    legend.appendChild(chip);
  }
}

function onLine(line) {
  view.line = line;
  for (const st of line.stations) {
    const ui = view.stations[st.id];
    if (!ui) continue;
    if (ui.box.dataset.state !== st.state) {
      ui.box.dataset.state = st.state;
      ui.box.className = "station " + st.state;
    }
    const dots = ui.eqs.children;
    for (let i = 0; i < st.eq.length && i < dots.length; i++) {
      if (dots[i].dataset.state !== st.eq[i]) {
        dots[i].dataset.state = st.eq[i];
        dots[i].className = "eq " + st.eq[i];
      }
    }
  }
  for (const [id, [held, cap]] of Object.entries(line.buffers)) {
    const el = document.querySelector('.buffer[data-buffer="' + id + '"]');
    if (!el) continue;
    text(el.firstChild, cap ? held + "/" + cap : String(held));
    el.classList.toggle("full", !!cap && held >= cap);
  }
  renderInterlocks(line);
}

function renderInterlocks(line) {
  const now = Date.now() / 1000;
  for (const item of line.interlocks) {
    const key = item.equipment + "@" + item.received;
    if (view.interlocks.has(key)) continue;
    // seen live: how long after the equipment stopped this page shows it
    const lag = item.stopped >= view.connectedAt ? Math.max(0, (now - item.stopped) * 1000) : null;
    if (lag !== null) push(view.interlockLags, lag, MAX_ROWS);
    view.interlocks.set(key, Object.assign({ pageLagMs: lag }, item));
  }
  while (view.interlocks.size > MAX_ROWS) view.interlocks.delete(view.interlocks.keys().next().value);
  text($("il-count"), "(" + num(line.interlocks_total) + ")");
  const body = $("interlocks").tBodies[0];
  body.innerHTML = "";
  for (const item of Array.from(view.interlocks.values()).reverse()) {
    const tr = body.insertRow();
    tr.dataset.equipment = item.equipment;
    tr.insertCell().textContent = hms(item.virtual_s);
    tr.insertCell().textContent = item.equipment;
    tr.insertCell().textContent = item.code;
    tr.insertCell().textContent = num(item.reaction_ms, 1) + " ms";
    tr.insertCell().textContent = item.pageLagMs === null ? "-" : "+" + num(item.pageLagMs) + " ms";
  }
}

function buildEquipmentChoice(layout) {
  const select = $("i-eq");
  const keep = select.value;
  select.innerHTML = "";
  for (const [station, codes] of Object.entries(layout.equipment || {})) {
    const group = document.createElement("optgroup");
    group.label = station;
    for (const code of codes) group.appendChild(new Option(code, code));
    select.appendChild(group);
  }
  if (keep) select.value = keep;
}

// -- charts -------------------------------------------------------------------------------------------------
function windowed() {
  const fine = view.fine;
  if (view.range > 0 || !view.coarse.length) {
    const last = fine.length ? fine[fine.length - 1].wall_s : 0;
    const from = view.range > 0 ? last - view.range : -Infinity;
    return { points: fine.filter((s) => s.wall_s >= from), from: view.range > 0 ? Math.max(0, from) : null };
  }
  const edge = view.coarse[view.coarse.length - 1].wall_s;
  return { points: view.coarse.concat(fine.filter((s) => s.wall_s > edge)), from: null };
}

function marks(from) {
  return view.controls.filter((c) => c.ok).map((c) => ({ x: c.wall_s, label: c.control })).filter((m) => from === null || m.x >= from);
}

function groupSeries(points, key, dash) {
  const groups = (view.layout && view.layout.groups) || ["all"];
  return groups.filter((g) => points.some((s) => s.groups[g])).map((g) => ({
    name: g, color: COLORS[g] || "#999", width: g === "all" ? 2.2 : 1.3, dash,
    points: points.map((s) => [s.wall_s, s.groups[g] && (key === "rps" || s.groups[g].n !== 0) ? s.groups[g][key] : null]),
  }));
}

function keys(id, series) {
  const el = $(id);
  const html = series.map((s) => '<span><i style="background:' + s.color + '"></i>' + s.name + "</span>").join("");
  if (el.innerHTML !== html) el.innerHTML = html;
}

function charts() {
  const { points, from } = windowed();
  const m = marks(from);
  const opts = { marks: m, xFrom: from };
  const rps = groupSeries(points, "rps");
  view.points.rps = drawChart($("c-rps"), rps, opts);
  keys("k-rps", rps);
  const p99 = groupSeries(points, "p99");
  const p50 = groupSeries(points, "p50", [4, 3]).map((s) => Object.assign(s, { width: 1 }));
  view.points.lat = drawChart($("c-lat"), p99.concat(p50), Object.assign({ log: true, unit: "" }, opts));
  keys("k-lat", p99);
  view.points.speed = drawChart($("c-speed"), [
    { name: "asked", color: "#8b95a3", dash: [5, 4], points: points.map((s) => [s.wall_s, s.speed_asked]) },
    { name: "achieved", color: "#4cc44c", width: 2, points: points.map((s) => [s.wall_s, s.speed_achieved]) },
  ], opts);
  view.points.err = drawChart($("c-err"), [
    { name: "errors/s", color: "#ff5c5c", width: 1.6, points: points.map((s) => [s.wall_s, s.errors_per_s]) },
    { name: "backlog", color: "#ffb020", dash: [3, 2], points: points.map((s) => [s.wall_s, s.link.backlog]) },
  ], opts);
}

// -- controls ------------------------------------------------------------------------------------------------
async function control(name, args) {
  const headers = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers.Authorization = "Bearer " + token;
  const out = $("control-result");
  out.className = "dim";
  text(out, name + "...");
  let entry;
  try {
    const resp = await fetch("/api/control/" + name, { method: "POST", headers, body: JSON.stringify(args) });
    entry = await resp.json();
  } catch (err) {
    entry = { ok: false, error: "no answer from the twin (" + err + ")" };
  }
  out.className = entry.ok ? "dim" : "error";
  text(out, entry.ok ? name + ": done" : name + ": " + entry.error);
  return entry;
}

function renderControls() {
  const body = $("controls-log").tBodies[0];
  body.innerHTML = "";
  for (const c of view.controls.slice().reverse()) {
    const tr = body.insertRow();
    tr.insertCell().textContent = hms(c.wall_s);
    tr.insertCell().textContent = c.control + " " + JSON.stringify(c.args);
    const td = tr.insertCell();
    td.textContent = c.ok ? "done" : c.error;
    if (!c.ok) td.className = "error";
  }
}

function wire() {
  $("b-speed").onclick = () => control("speed", { speed: Number($("speed").value) });
  $("b-shape").onclick = () => control("shape", { shape: $("shape").value });
  $("b-faults").onclick = () => {
    const set = {};
    if ($("f-lat").value.trim()) set.latency = $("f-lat").value.trim();
    if ($("f-rate").value !== "") set.error_rate = Number($("f-rate").value);
    if ($("f-outage").value !== "") set.outage = { after_s: 0, for_s: Number($("f-outage").value), mode: $("f-mode").value };
    return control("faults", { set });
  };
  $("b-clear").onclick = () => control("faults", { clear: true });
  $("b-crash").onclick = () => control("crash", { restart_after_s: Number($("c-restart").value) });
  $("b-interlock").onclick = () => control("interlock", { equipment: $("i-eq").value, code: $("i-code").value });
  const stop = $("b-stop");
  stop.onclick = () => {
    if (stop.dataset.armed) { control("stop", {}); return; }
    stop.dataset.armed = "1";
    stop.textContent = "click again to stop";
    setTimeout(() => { delete stop.dataset.armed; stop.textContent = "stop the run"; }, 3000);
  };
  for (const b of document.querySelectorAll(".range button")) {
    b.onclick = () => {
      view.range = Number(b.dataset.range);
      for (const o of document.querySelectorAll(".range button")) o.classList.toggle("on", o === b);
      charts();
    };
  }
  window.addEventListener("resize", charts);
}

wire();
connect();
