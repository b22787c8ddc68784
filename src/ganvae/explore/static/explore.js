// ganvae explore: one panel per model; the seed, the digit and the drawing are shared.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, children = []) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.appendChild(c);
  return e;
};

async function api(path, body) {
  const opts = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify(body)};
  const res = await fetch(path, opts);
  if (!res.ok) {
    let msg = res.statusText;
    try { const j = await res.json(); msg = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) {}
    throw new Error(msg);
  }
  return (res.headers.get("content-type") || "").includes("json") ? res.json() : res.blob();
}

function status(text) { $("#status").textContent = text || ""; }

const state = {panels: [], limits: {}};

function digit(panel) {
  if (!panel.info.conditional) return null;
  const d = parseInt($("#digit").value, 10);
  return panel.info.classes.includes(d) ? d : panel.info.classes[0];
}

// ---------------------------------------------------------------- samples and selection
async function loadSamples(panel) {
  const seed = parseInt($("#seed").value, 10) || 0;
  const res = await api("/api/sample", {model: panel.info.name, seed, n: 16, digit: digit(panel)});
  panel.latents = res.latents;
  const grid = $(".grid", panel.root);
  grid.replaceChildren(...res.images.map((src, i) => {
    const img = el("img", {src, alt: `sample ${i}`, "data-index": i});
    img.addEventListener("click", () => select(panel, i));
    return img;
  }));
  panel.selA = panel.selB = null;
  select(panel, 0);
}

function select(panel, i) {
  if (panel.selA === null || panel.selB !== null) { panel.selA = i; panel.selB = null; }
  else if (i !== panel.selA) { panel.selB = i; }
  $(".grid", panel.root).querySelectorAll("img").forEach((img, j) => {
    img.classList.toggle("sel-a", j === panel.selA);
    img.classList.toggle("sel-b", j === panel.selB);
  });
  setLatent(panel, panel.latents[panel.selA]);
  if (panel.selB !== null) interpolate(panel, panel.latents[panel.selA], panel.latents[panel.selB]);
}

// ---------------------------------------------------------------- the selected latent and the sliders
function setLatent(panel, z) {
  panel.base = z.slice();
  $(".sliders", panel.root).querySelectorAll("input").forEach((s) => { s.value = 0; });
  redraw(panel);
}

function currentLatent(panel) {
  const z = panel.base.slice();
  $(".sliders", panel.root).querySelectorAll("input").forEach((s, k) => {
    const a = parseFloat(s.value) * panel.scales[k];
    panel.dirs[k].forEach((d, j) => { z[j] += a * d; });
  });
  return z;
}

// at most one decode in flight per panel; the latest slider position wins
async function redraw(panel) {
  if (panel.busy) { panel.again = true; return; }
  panel.busy = true;
  try {
    const t0 = performance.now();
    const res = await api("/api/decode", {model: panel.info.name, latents: [currentLatent(panel)], digit: digit(panel)});
    const big = $(".big", panel.root);
    big.src = res.images[0];
    big.dataset.ms = String(Math.round(performance.now() - t0));
    $(".latency", panel.root).textContent = `${big.dataset.ms} ms`;
  } catch (e) { status(e.message); }
  panel.busy = false;
  if (panel.again) { panel.again = false; redraw(panel); }
}

async function loadDirections(panel) {
  const res = await api(`/api/directions?model=${encodeURIComponent(panel.info.name)}&k=6`);
  panel.dirs = res.directions; panel.scales = res.scales;
  const box = $(".sliders", panel.root);
  box.replaceChildren(...res.directions.map((_, k) => {
    const s = el("input", {type: "range", min: "-3", max: "3", step: "0.05", value: "0", class: "dir", "data-k": k});
    s.addEventListener("input", () => redraw(panel));
    return el("label", {text: `direction ${k + 1} `}, [s]);
  }));
  $(".dir-source", panel.root).textContent = res.source;
}

// ---------------------------------------------------------------- interpolation
async function interpolate(panel, a, b) {
  const res = await api("/api/interpolate", {model: panel.info.name, a, b, steps: 12, digit: digit(panel)});
  $(".strip", panel.root).replaceChildren(...res.images.map((src) => el("img", {src})));
  clearInterval(panel.timer);
  const frames = res.images.concat(res.images.slice(1, -1).reverse());
  let t = 0;
  const anim = $(".anim", panel.root);
  anim.hidden = false;
  panel.timer = setInterval(() => { anim.src = frames[t++ % frames.length]; }, 100);
}

// ---------------------------------------------------------------- drawing
const canvas = $("#canvas");
const ctx = canvas.getContext("2d");
function clearCanvas() { ctx.fillStyle = $("#paper").value; ctx.fillRect(0, 0, canvas.width, canvas.height); }
clearCanvas();
let drawing = false;
function pos(ev) { const r = canvas.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; }
canvas.addEventListener("pointerdown", (ev) => { drawing = true; ctx.beginPath(); ctx.moveTo(...pos(ev)); });
canvas.addEventListener("pointermove", (ev) => {
  if (!drawing) return;
  ctx.lineTo(...pos(ev)); ctx.strokeStyle = $("#ink").value; ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.stroke();
});
window.addEventListener("pointerup", () => { drawing = false; });
$("#clear").addEventListener("click", clearCanvas);

// the drawing at a model's size, values in [0, 1], row-major: grey (the pixels' brightness) for a grey model; for a
// colour model the red plane, then the green, then the blue
function drawingPixels(h, w, channels) {
  const small = el("canvas", {width: w, height: h});
  const sctx = small.getContext("2d");
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(canvas, 0, 0, w, h);
  const data = sctx.getImageData(0, 0, w, h).data;
  if (channels === 3) {
    const planes = [[], [], []];
    for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) planes[c].push(data[i + c] / 255);
    return planes[0].concat(planes[1], planes[2]);
  }
  const out = [];  // Rec. 601 luma, as Pillow's convert("L")
  for (let i = 0; i < data.length; i += 4) out.push(Math.min(1, (0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]) / 255));
  return out;
}

async function useDrawing(panel) {
  const [h, w] = panel.info.image_size;
  const image = drawingPixels(h, w, panel.info.channels || 1);
  const out = $(".drawn", panel.root);
  if (panel.info.has_encoder) {
    const res = await api("/api/encode", {model: panel.info.name, image, digit: digit(panel)});
    $(".recon", panel.root).src = res.reconstruction;
    $(".nearest", panel.root).replaceChildren(...res.nearest.map((src) => el("img", {src})));
    out.hidden = false;
    $(".drawn-note", panel.root).textContent = "reconstruction, then the nearest of 256 samples";
    setLatent(panel, res.latent);
    return;
  }
  const job = await api("/api/invert", {model: panel.info.name, image, steps: state.inversionSteps, digit: digit(panel)});
  out.hidden = false;
  $(".nearest", panel.root).replaceChildren();
  for (;;) {
    const j = await api(`/api/jobs/${job.id}`);
    if (j.image) $(".recon", panel.root).src = j.image;
    $(".drawn-note", panel.root).textContent = `inversion: step ${j.step} / ${j.steps}, loss ${j.loss === null ? "-" : j.loss.toFixed(4)}, ${j.seconds} s`;
    if (j.state === "done") { setLatent(panel, j.latent); $(".recon", panel.root).dataset.done = "1"; return; }
    if (j.state === "failed") throw new Error(j.error);
    await new Promise((r) => setTimeout(r, 200));
  }
}
$("#use-drawing").addEventListener("click", () => {
  for (const p of state.panels) useDrawing(p).catch((e) => status(e.message));
});

// ---------------------------------------------------------------- cppn renders
async function render(panel) {
  const size = parseInt($(".render-size", panel.root).value, 10);
  const note = $(".render-note", panel.root);
  note.textContent = `rendering ${size}x${size}...`;
  const t0 = performance.now();
  const blob = await api("/api/render", {model: panel.info.name, latent: currentLatent(panel), size, digit: digit(panel)});
  const img = $(".render-img", panel.root);
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  img.dataset.size = String(size);
  applyZoom(panel);
  note.textContent = `${size}x${size} in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
}
function applyZoom(panel) {
  const img = $(".render-img", panel.root);
  const size = parseInt(img.dataset.size || "0", 10);
  img.style.width = `${Math.round(size * parseFloat($(".zoom", panel.root).value) / 100)}px`;
}

// ---------------------------------------------------------------- panels
function buildPanel(info, index) {
  const root = el("section", {class: "panel", id: `panel-${index}`});
  root.innerHTML = `
    <h2></h2>
    <div class="grid"></div>
    <div class="selected">
      <div><img class="big" alt="selected"><div class="note">decode: <span class="latency"></span></div></div>
      <div class="sliders"></div>
    </div>
    <div class="note dir-source"></div>
    <div class="strip"></div>
    <img class="anim" alt="walk" hidden>
    <div class="drawn" hidden><img class="big recon" alt="from the drawing"><div class="nearest"></div>
      <div class="note drawn-note"></div></div>`;
  $("h2", root).textContent = `${info.name} (${info.family}, latent ${info.latent_dim})`;
  if (info.renders_any_size) {
    const box = el("div", {class: "render"});
    box.innerHTML = `<label>render <select class="render-size"></select></label> <button class="render-btn">render</button>
      <label>zoom <input class="zoom" type="range" min="5" max="400" value="25">%</label>
      <div class="note render-note"></div><div class="render-view"><img class="render-img" alt="render"></div>`;
    for (const s of [256, 512, 1024, 2048, 4096].filter((s) => s <= state.limits.max_render)) {
      $(".render-size", box).appendChild(el("option", {value: s, text: `${s}x${s}`}));
    }
    $(".render-size", box).value = "1024";
    root.appendChild(box);
  }
  const panel = {info, root, latents: [], selA: null, selB: null, base: [], dirs: [], scales: []};
  if (info.renders_any_size) {
    $(".render-btn", root).addEventListener("click", () => render(panel).catch((e) => status(e.message)));
    $(".zoom", root).addEventListener("input", () => applyZoom(panel));
  }
  return panel;
}

async function refreshAll() {
  status("");
  try { await Promise.all(state.panels.map(loadSamples)); } catch (e) { status(e.message); }
}

async function main() {
  const res = await api("/api/models");
  state.limits = res.limits;
  state.inversionSteps = Math.min(200, res.limits.max_invert_steps);
  state.panels = res.models.map(buildPanel);
  $("#panels").replaceChildren(...state.panels.map((p) => p.root));
  const classes = [...new Set(res.models.filter((m) => m.conditional).flatMap((m) => m.classes))].sort((a, b) => a - b);
  if (classes.length) {
    $("#digit-box").hidden = false;
    for (const c of classes) $("#digit").appendChild(el("option", {value: c, text: String(c)}));
    $("#digit").addEventListener("change", refreshAll);
  }
  $("#seed").addEventListener("change", refreshAll);
  $("#new-seed").addEventListener("click", () => { $("#seed").value = Math.floor(Math.random() * 1e6); refreshAll(); });
  await Promise.all(state.panels.map(loadDirections));
  await refreshAll();
  document.body.dataset.ready = "1";
}
main().catch((e) => status(e.message));
