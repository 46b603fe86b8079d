// The classify page: calls the JSON API, shows the answer, draws the record's strip plot (SVG, no library).
"use strict";

const COLOURS = { N: "#2b6cb0", S: "#d69e2e", V: "#c53030", F: "#805ad5", Q: "#718096" };
const colour = (c) => COLOURS[c] || "#2f855a";

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs = {}) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

async function post(url, form) {
  const res = await fetch(url, { method: "POST", body: form });
  let body;
  try { body = await res.json(); } catch (e) { body = { detail: `HTTP ${res.status}` }; }
  return { status: res.status, body };
}

function showError(box, body) {
  box.replaceChildren(el("div", { class: "error", role: "alert" }, body.detail || "failed"));
}

function modelCard(card) {
  if (!card) return el("span");
  const bench = card.benchmark && card.benchmark.accuracy != null ? `; benchmark accuracy ${(100 * card.benchmark.accuracy).toFixed(2)}%` : "";
  const acc = card.accuracy != null ? `; test accuracy ${(100 * card.accuracy).toFixed(2)}%` : "";
  return el("p", { class: "model-card" },
    `Model: run ${card.run} (${card.model}, ${card.method} beats, ${card.folds} folds, ${card.labels} labels), ` +
    `data ${String(card.data_hash || "?").slice(0, 12)}${acc}${bench}`);
}

function probTable(probs) {
  const t = el("table", { class: "probs" }, el("tr", {}, el("th", {}, "class"), el("th", {}, "probability"), el("th", {})));
  for (const [c, p] of Object.entries(probs)) {
    const bar = el("span", { class: "bar", style: `width:${Math.round(120 * p)}px;background:${colour(c)}` });
    t.append(el("tr", {}, el("td", {}, c), el("td", {}, p.toFixed(3)), el("td", { style: "text-align:left" }, bar)));
  }
  return t;
}

async function onBeat(ev) {
  ev.preventDefault();
  const box = document.getElementById("beat-result");
  box.textContent = "classifying…";
  const { status, body } = await post("/api/beat", new FormData(ev.target));
  if (status === 422 && body.beat_image === false) {
    box.replaceChildren(el("div", { class: "error", id: "not-beat" }, body.detail), el("p", { class: "hint" }, "Rule: " + body.rule));
    return;
  }
  if (status !== 200) return showError(box, body);
  const seen = el("figure", {}, el("img", { src: body.model_input, alt: "the image as the model saw it", id: "model-input" }),
    el("figcaption", { class: "hint" }, "as the model saw it"));
  box.replaceChildren(el("p", { class: "verdict", id: "beat-class" }, `Class ${body.class}`),
    el("div", { class: "beat-view" }, seen, probTable(body.probabilities)), modelCard(body.model));
}

function stripPlot(data, box) {
  const fs = data.fs, sig = data.signal, beats = data.beats;
  const wrap = el("div", { id: "strip" });
  const controls = el("div", {});
  const width = el("select", { id: "strip-seconds" });
  for (const s of [5, 10, 30, 60]) width.append(el("option", s === 10 ? { value: s, selected: "" } : { value: s }, `${s} s`));
  const slider = el("input", { type: "range", min: 0, max: Math.max(0, Math.floor(data.seconds)), value: 0, step: 0.5, id: "strip-start", style: "width:60%" });
  controls.append("window ", width, " start ", slider);
  const plot = svg("svg", { class: "strip", viewBox: "0 0 1000 240", preserveAspectRatio: "none", role: "img" });
  const legend = el("p", { class: "legend" });
  for (const c of data.classes) legend.append(el("span", {}, el("i", { style: `background:${colour(c)}` }), `${c}: ${data.counts[c]}`));
  wrap.append(controls, plot, legend);
  box.append(wrap);

  function draw() {
    const secs = Number(width.value), t0 = Number(slider.value);
    const a = Math.max(0, Math.floor(t0 * fs)), b = Math.min(sig.length, Math.ceil((t0 + secs) * fs));
    plot.replaceChildren();
    if (b - a < 2) return;
    let lo = Infinity, hi = -Infinity;
    for (let i = a; i < b; i++) { if (sig[i] < lo) lo = sig[i]; if (sig[i] > hi) hi = sig[i]; }
    if (hi - lo < 1e-6) { hi += 0.5; lo -= 0.5; }
    const x = (i) => ((i - a) / (b - a)) * 1000, y = (v) => 230 - ((v - lo) / (hi - lo)) * 220;
    const step = Math.max(1, Math.floor((b - a) / 4000));
    // each beat's stretch of trace (midpoint to midpoint) in its class colour
    const s = beats.sample, n = s.length;
    let k = 0;
    while (k < n && s[k] < a) k++;
    const bounds = [];
    for (let j = Math.max(0, k - 1); j < n && s[j] < b + fs; j++) {
      const from = j === 0 ? 0 : Math.floor((s[j - 1] + s[j]) / 2), to = j === n - 1 ? sig.length : Math.floor((s[j] + s[j + 1]) / 2);
      bounds.push([Math.max(a, from), Math.min(b, to), beats.class[j], s[j]]);
    }
    const grey = [];
    for (let i = a; i < b; i += step) grey.push(`${x(i).toFixed(1)},${y(sig[i]).toFixed(1)}`);
    plot.append(svg("polyline", { points: grey.join(" "), fill: "none", stroke: "#a0aec0", "stroke-width": 1 }));
    for (const [from, to, cls, r] of bounds) {
      if (to - from < 2) continue;
      const pts = [];
      for (let i = from; i < to; i += step) pts.push(`${x(i).toFixed(1)},${y(sig[i]).toFixed(1)}`);
      const line = svg("polyline", { points: pts.join(" "), fill: "none", stroke: colour(cls), "stroke-width": 1.6, class: `beat beat-${cls}` });
      const title = svg("title"); title.textContent = `${cls} at ${(r / fs).toFixed(2)} s`; line.append(title);
      plot.append(line);
      if (r >= a && r < b) {
        const lab = svg("text", { x: x(r), y: 12, "font-size": 11, fill: colour(cls), "text-anchor": "middle" });
        lab.textContent = cls; plot.append(lab);
      }
    }
  }
  width.addEventListener("change", draw);
  slider.addEventListener("input", draw);
  draw();
}

function countsTable(data) {
  const t = el("table", { id: "counts" }, el("tr", {}, ...data.classes.map((c) => el("th", {}, c)), el("th", {}, "beats")));
  const total = Object.values(data.counts).reduce((x, y) => x + y, 0);
  t.append(el("tr", {}, ...data.classes.map((c) => el("td", {}, data.counts[c])), el("td", {}, total)));
  return t;
}

function ec57Table(ag) {
  const box = el("div", { id: "agreement" });
  const d = ag.detection || {};
  box.append(el("p", {}, `Reference: ${ag.reference_beats} beats; detector Se ${pct(d.sensitivity)}, +P ${pct(d.ppv)}; ${ag.matched_beats} beats matched.`));
  if (!ag.ec57) return box;
  const e = ag.ec57;
  const m = el("table", {}, el("tr", {}, el("th", {}, "reference \\ predicted"), ...e.columns.map((c) => el("th", {}, c))));
  e.matrix.forEach((row, i) => m.append(el("tr", {}, el("th", {}, e.rows[i]), ...row.map((v) => el("td", {}, v)))));
  const f = el("table", {}, el("tr", {}, el("th", {}, "EC57"), ...e.rows.map((c) => el("th", {}, c))));
  for (const k of ["sensitivity", "ppv", "fpr", "f1"]) f.append(el("tr", {}, el("th", {}, k), ...e.rows.map((c) => el("td", {}, pct(e[k][c])))));
  box.append(el("h3", {}, `EC57 agreement (accuracy ${pct(e.accuracy)})`), m, f);
  return box;
}

const pct = (v) => (v == null ? "—" : `${(100 * v).toFixed(1)}%`);

function csvDownload(data) {
  const ref = data.agreement && data.agreement.reference_class;
  const rows = [["sample", "time_s", "class", ...data.classes.map((c) => `p_${c}`), ...(ref ? ["reference"] : [])].join(",")];
  const b = data.beats;
  for (let i = 0; i < b.sample.length; i++) rows.push([b.sample[i], b.time_s[i], b.class[i], ...b.probabilities[i], ...(ref ? [ref[i] || ""] : [])].join(","));
  const url = URL.createObjectURL(new Blob([rows.join("\n") + "\n"], { type: "text/csv" }));
  return el("a", { href: url, download: "predictions.csv", id: "csv-download" }, "Download per-beat predictions (CSV)");
}

async function onRecord(ev) {
  ev.preventDefault();
  const box = document.getElementById("record-result");
  const f = ev.target, form = new FormData();
  const csv = f.querySelector("#rec-csv").files[0];
  if (csv) { form.append("csv", csv); form.append("fs", f.querySelector("#rec-fs").value); }
  else {
    for (const k of ["hea", "dat", "atr"]) { const file = f.querySelector(`#rec-${k}`).files[0]; if (file) form.append(k, file); }
  }
  box.textContent = "detecting, drawing and classifying beats…";
  const { status, body } = await post("/api/record?signal=true", form);
  if (status !== 200) return showError(box, body);
  box.replaceChildren(el("p", { class: "verdict", id: "record-summary" }, `${body.beats.sample.length} beats in ${body.seconds.toFixed(1)} s (${body.lead}, ${body.fs} Hz)`),
    countsTable(body), csvDownload(body));
  stripPlot(body, box);
  if (body.agreement) box.append(ec57Table(body.agreement));
  box.append(modelCard(body.model));
}

document.getElementById("beat-form").addEventListener("submit", onBeat);
document.getElementById("record-form").addEventListener("submit", onRecord);
