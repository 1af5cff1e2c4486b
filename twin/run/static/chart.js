// A small line chart on a canvas: several series over one time axis, linear or log y, vertical marks.
// Written for this page (no library, nothing from the network): the series are the page's ring buffers.
"use strict";

function drawChart(canvas, series, opts) {
  const o = Object.assign({ log: false, marks: [], unit: "", xFrom: null, xTo: null, yMin: null }, opts || {});
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) return 0;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const left = 52, right = 8, top = 6, bottom = 18;
  const pw = w - left - right, ph = h - top - bottom;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, points = 0;
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (y === null || !isFinite(y) || (o.log && y <= 0)) continue;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x);
      y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      points++;
    }
  }
  if (o.xFrom !== null) x0 = o.xFrom;
  if (o.xTo !== null) x1 = o.xTo;
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#8b95a3";
  if (!points) {
    ctx.fillText("waiting for data", left + 8, top + 16);
    return 0;
  }
  if (x1 <= x0) x1 = x0 + 1;
  if (o.yMin !== null) y0 = Math.min(y0, o.yMin);
  if (o.log) {
    y0 = Math.pow(10, Math.floor(Math.log10(y0)));
    y1 = Math.pow(10, Math.ceil(Math.log10(y1 * 1.01)));
  } else {
    y0 = Math.min(0, y0);
    y1 = y1 > 0 ? y1 * 1.12 : 1;
  }
  const fy = o.log
    ? (y) => top + ph - (Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0)) * ph
    : (y) => top + ph - (y - y0) / (y1 - y0) * ph;
  const fx = (x) => left + (x - x0) / (x1 - x0) * pw;
  // grid and y labels
  ctx.strokeStyle = "#2c3540";
  ctx.lineWidth = 1;
  const ticks = o.log ? logTicks(y0, y1) : linTicks(y0, y1);
  for (const t of ticks) {
    const y = Math.round(fy(t)) + 0.5;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w - right, y); ctx.stroke();
    ctx.fillText(fmt(t) + o.unit, 2, y + 4);
  }
  // x labels: wall time since the start
  const xt = linTicks(x0, x1, 6);
  for (const t of xt) {
    const x = fx(t);
    if (x < left || x > w - right) continue;
    ctx.fillText(clock(t), x - 14, h - 4);
  }
  // control marks
  let row = 0;
  for (const m of o.marks) {
    if (m.x < x0 || m.x > x1) continue;
    const x = Math.round(fx(m.x)) + 0.5;
    ctx.strokeStyle = "#c9a0ff";
    ctx.setLineDash([3, 3]);
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + ph); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#c9a0ff";
    ctx.fillText(m.label, x + 3, top + 10 + 12 * (row++ % 3));  // staggered: marks close together stay legible
    ctx.fillStyle = "#8b95a3";
  }
  // the series
  ctx.save();
  ctx.beginPath(); ctx.rect(left, top, pw, ph); ctx.clip();
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = s.width || 1.5;
    ctx.setLineDash(s.dash || []);
    ctx.beginPath();
    let pen = false;
    for (const [x, y] of s.points) {
      if (y === null || !isFinite(y) || (o.log && y <= 0)) { pen = false; continue; }
      const px = fx(x), py = fy(y);
      if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      pen = true;
    }
    ctx.stroke();
  }
  ctx.restore();
  ctx.setLineDash([]);
  return points;
}

function linTicks(a, b, n) {
  const span = b - a, want = n || 4;
  if (span <= 0) return [a];
  const step0 = span / want, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= step0) || step0;
  const out = [];
  for (let t = Math.ceil(a / step) * step; t <= b + 1e-9; t += step) out.push(t);
  return out;
}

function logTicks(a, b) {
  const out = [];
  for (let e = Math.round(Math.log10(a)); e <= Math.round(Math.log10(b)); e++) out.push(Math.pow(10, e));
  return out;
}

function fmt(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 10000) return (v / 1000).toFixed(0) + "k";
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return (+v.toFixed(1)).toString();
  return (+v.toPrecision(2)).toString();
}

function clock(s) {
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(sec).padStart(2, "0");
}
