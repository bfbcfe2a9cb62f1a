// The annotator page: one item at a time, its image under its label layer, edited at image resolution.
// The view maps image coordinates u (pixel centres at integers) to canvas pixels: s = (u + 0.5) * scale + offset.
import { LabelModel, fromBase64, toBase64 } from "/static/editor.js";

const $ = (id) => document.getElementById(id);
const SAVE_DELAY_MS = 400;

const state = {
  schema: null,
  items: [],
  index: -1,
  item: null, // {id, width, height, status, origin, prefilled}
  model: null,
  image: null, // ImageBitmap
  labelCanvas: document.createElement("canvas"),
  tool: "brush",
  cls: 1,
  keypoint: 0,
  brush: 1,
  opacity: 0.6,
  view: { scale: 1, ox: 0, oy: 0 },
  polygon: [],
  stroke: null,
  drag: null, // index of the keypoint being dragged
  pan: null,
  space: false,
  hover: null,
  dirty: false,
  saving: null,
  saveTimer: null,
  lastPlaced: null,
  colors: new Uint8Array(256 * 3),
};

// ------------------------------------------------------------------ server

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

function setSaveState(s, text) {
  const el = $("save-state");
  el.dataset.state = s;
  el.textContent = text || s;
}

function markDirty() {
  if (state.model && !state.model.end()) {      // the edit changed nothing: no undo step, nothing to save
    draw();
    return;
  }
  state.dirty = true;
  setSaveState("unsaved", "unsaved changes");
  clearTimeout(state.saveTimer);
  state.saveTimer = setTimeout(() => save(), SAVE_DELAY_MS);
  redrawLabels();
  renderKeypointList();
}

// Saves until nothing is dirty; concurrent calls wait for the one in flight.
async function save() {
  clearTimeout(state.saveTimer);
  while (state.saving) await state.saving;
  if (!state.dirty || !state.item) return;
  const item = state.item;
  const body = {
    label: toBase64(state.model.label),
    keypoints: state.schema.keypoints.length ? state.model.keypoints : null,
    status: "annotated",
  };
  state.dirty = false;
  setSaveState("saving", "saving…");
  state.saving = (async () => {
    try {
      await api("PUT", `/api/items/${encodeURIComponent(item.id)}/annotation`, body);
      item.status = "annotated";
      item.prefilled = false;
      $("prefill-note").hidden = true;
      const listed = state.items.find((x) => x.id === item.id);
      if (listed) listed.status = "annotated";
      renderItemList();
      if (!state.dirty) setSaveState("saved", "saved");
    } catch (e) {
      state.dirty = true;
      setSaveState("error", `save failed: ${e.message}`);
    }
  })();
  await state.saving;
  state.saving = null;
  if (state.dirty && $("save-state").dataset.state !== "error") await save();
}

// ------------------------------------------------------------------ items

async function loadItems() {
  state.items = (await api("GET", "/api/items")).items;
  renderItemList();
}

async function openItem(index) {
  if (index < 0 || index >= state.items.length) return;
  await save();
  const id = state.items[index].id;
  const ann = await api("GET", `/api/items/${encodeURIComponent(id)}/annotation`);
  const blob = await (await fetch(`/api/items/${encodeURIComponent(id)}/${ann.image}`)).blob();
  state.image = await createImageBitmap(blob);
  state.index = index;
  state.item = ann;
  const kps = ann.keypoints || state.schema.keypoints.map(() => [null, null, 0]);
  state.model = new LabelModel(ann.width, ann.height, ann.label ? fromBase64(ann.label) : null, kps);
  state.lastPlaced = null;
  state.labelCanvas.width = ann.width;
  state.labelCanvas.height = ann.height;
  state.polygon = [];
  $("item-name").textContent = `${id}${ann.origin === "real" ? " (real image)" : ""}`;
  $("prefill-note").hidden = !ann.prefilled;
  $("position").textContent = `${index + 1} / ${state.items.length}`;
  setSaveState("saved", ann.status === "annotated" ? "saved" : "saved (not annotated yet)");
  history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  fit();
  redrawLabels();
  renderItemList();
  renderKeypointList();
}

async function newSample(seed) {
  await save();
  const res = await api("POST", "/api/items/new", seed === undefined ? {} : { seed });
  await loadItems();
  await openItem(state.items.findIndex((x) => x.id === res.id));
}

function renderItemList() {
  const ol = $("items");
  ol.replaceChildren(
    ...state.items.map((it, i) => {
      const li = document.createElement("li");
      li.textContent = it.id + (it.origin === "real" ? " (real)" : "");
      li.dataset.status = it.status;
      li.className = i === state.index ? "current" : "";
      li.onclick = () => openItem(i);
      return li;
    }),
  );
  $("prev").disabled = state.index <= 0;
  $("next").disabled = state.index >= state.items.length - 1;
}

// ------------------------------------------------------------------ palette and keypoints

function renderPalette() {
  const ul = $("palette");
  ul.replaceChildren(
    ...state.schema.classes.map((c, i) => {
      const li = document.createElement("li");
      li.dataset.classId = c.id;
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = `rgb(${c.color.join(",")})`;
      const name = document.createElement("span");
      name.textContent = c.name;
      li.append(sw, name);
      if (i < 10) {
        const k = document.createElement("kbd");
        k.textContent = String(i);
        li.append(k);
      }
      li.className = c.id === state.cls ? "active" : "";
      li.onclick = () => selectClass(c.id);
      return li;
    }),
  );
}

function selectClass(id) {
  state.cls = id;
  if (state.tool === "eraser" || state.tool === "keypoint" || state.tool === "pan") selectTool("brush");
  renderPalette();
}

function renderKeypointList() {
  const ul = $("keypoints");
  if (!state.model) return;
  ul.replaceChildren(
    ...state.schema.keypoints.map((name, k) => {
      const p = state.model.keypoints[k];
      const li = document.createElement("li");
      li.dataset.keypoint = k;
      li.className = k === state.keypoint ? "active" : "";
      const text = document.createElement("span");
      text.textContent = p[0] === null ? `${name}: –` : `${name}: ${p[0]}, ${p[1]}`;
      const vis = document.createElement("input");
      vis.type = "checkbox";
      vis.title = "visible";
      vis.checked = p[2] === 1;
      vis.disabled = p[0] === null;
      vis.onclick = (e) => {
        e.stopPropagation();
        state.model.begin();
        state.model.toggleVisible(k);
        markDirty();
      };
      const clear = document.createElement("button");
      clear.textContent = "×";
      clear.title = "remove";
      clear.onclick = (e) => {
        e.stopPropagation();
        state.model.begin();
        state.model.clearKeypoint(k);
        markDirty();
      };
      li.append(text, vis, clear);
      li.onclick = () => {
        state.keypoint = k;
        selectTool("keypoint");
        renderKeypointList();
      };
      return li;
    }),
  );
}

function selectTool(tool) {
  state.tool = tool;
  state.polygon = [];
  for (const b of document.querySelectorAll("#tools button")) b.classList.toggle("active", b.dataset.tool === tool);
  draw();
}

// ------------------------------------------------------------------ view

const canvas = $("canvas");
const ctx = canvas.getContext("2d");

function fit() {
  if (!state.item) return;
  resizeCanvas();
  const { width, height } = state.item;
  const scale = Math.max(1, Math.floor(Math.min(canvas.width / width, canvas.height / height)));
  state.view = { scale, ox: Math.round((canvas.width - width * scale) / 2), oy: Math.round((canvas.height - height * scale) / 2) };
  draw();
}

function zoom(factor, cx = canvas.width / 2, cy = canvas.height / 2) {
  const v = state.view;
  const scale = Math.min(256, Math.max(0.5, v.scale * factor));
  v.ox = cx - ((cx - v.ox) * scale) / v.scale;
  v.oy = cy - ((cy - v.oy) * scale) / v.scale;
  v.scale = scale;
  draw();
}

function resizeCanvas() {
  const r = canvas.getBoundingClientRect();
  if (canvas.width !== Math.round(r.width) || canvas.height !== Math.round(r.height)) {
    canvas.width = Math.round(r.width);
    canvas.height = Math.round(r.height);
  }
}

// Canvas pixel -> continuous image coordinates (pixel centres at integers).
function toImage(sx, sy) {
  const v = state.view;
  return [(sx - v.ox) / v.scale - 0.5, (sy - v.oy) / v.scale - 0.5];
}

function eventPixel(e) {
  const r = canvas.getBoundingClientRect();
  const [u, v] = toImage(e.clientX - r.left, e.clientY - r.top);
  return { u, v, x: Math.round(u), y: Math.round(v) };
}

function redrawLabels() {
  if (!state.model) return;
  const { width, height } = state.model;
  const img = new ImageData(width, height);
  const lab = state.model.label;
  for (let i = 0; i < lab.length; i++) {
    const c = lab[i];
    img.data[4 * i] = state.colors[3 * c];
    img.data[4 * i + 1] = state.colors[3 * c + 1];
    img.data[4 * i + 2] = state.colors[3 * c + 2];
    img.data[4 * i + 3] = c === 0 ? 0 : 255;
  }
  state.labelCanvas.getContext("2d").putImageData(img, 0, 0);
  draw();
}

function draw() {
  updateHistoryButtons();
  resizeCanvas();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.image) return;
  const v = state.view;
  ctx.imageSmoothingEnabled = false;
  ctx.setTransform(v.scale, 0, 0, v.scale, v.ox, v.oy);
  ctx.drawImage(state.image, 0, 0);
  ctx.globalAlpha = state.opacity;
  ctx.drawImage(state.labelCanvas, 0, 0);
  ctx.globalAlpha = 1;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  const screen = (u, w) => [(u + 0.5) * v.scale + v.ox, (w + 0.5) * v.scale + v.oy];
  // keypoints: filled when visible, hollow when hidden
  state.model.keypoints.forEach((p, k) => {
    if (p[0] === null) return;
    const [sx, sy] = screen(p[0], p[1]);
    ctx.beginPath();
    ctx.arc(sx, sy, Math.max(4, v.scale * 0.35), 0, 2 * Math.PI);
    ctx.lineWidth = 2;
    ctx.strokeStyle = k === state.keypoint ? "#ff0" : "#fff";
    ctx.fillStyle = "#f0f";
    if (p[2]) ctx.fill();
    ctx.stroke();
    ctx.fillStyle = "#fff";
    ctx.font = "11px sans-serif";
    ctx.fillText(state.schema.keypoints[k], sx + 7, sy - 7);
  });
  if (state.polygon.length) {
    ctx.beginPath();
    state.polygon.forEach(([u, w], i) => {
      const [sx, sy] = screen(u, w);
      if (i) ctx.lineTo(sx, sy);
      else ctx.moveTo(sx, sy);
    });
    if (state.hover) ctx.lineTo(...screen(state.hover.u, state.hover.v));
    ctx.strokeStyle = "#ff0";
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
  if (state.hover && (state.tool === "brush" || state.tool === "eraser")) {
    const [sx, sy] = screen(state.hover.x, state.hover.y);
    ctx.beginPath();
    ctx.arc(sx, sy, (state.brush / 2) * v.scale, 0, 2 * Math.PI);
    ctx.strokeStyle = "rgba(255,255,255,.7)";
    ctx.lineWidth = 1;
    ctx.stroke();
  }
}

// ------------------------------------------------------------------ editing with the pointer

canvas.addEventListener("contextmenu", (e) => e.preventDefault());

canvas.addEventListener("pointerdown", (e) => {
  if (!state.model) return;
  canvas.setPointerCapture(e.pointerId);
  if (e.button !== 0 || state.space || state.tool === "pan") {
    state.pan = { x: e.clientX, y: e.clientY, ox: state.view.ox, oy: state.view.oy };
    return;
  }
  const p = eventPixel(e);
  const m = state.model;
  state.hover = p;
  if (state.tool === "brush" || state.tool === "eraser") {
    m.begin();
    const cls = state.tool === "eraser" ? 0 : state.cls;
    m.disc(p.x, p.y, state.brush, cls);
    state.stroke = { x: p.x, y: p.y, cls };
    redrawLabels();
    showCursor(p);
  } else if (state.tool === "fill") {
    if (!m.inside(p.x, p.y)) return;
    m.begin();
    m.fill(p.x, p.y, state.cls);
    markDirty();
  } else if (state.tool === "polygon") {
    const first = state.polygon[0];
    if (state.polygon.length >= 3 && Math.hypot(first[0] - p.u, first[1] - p.v) * state.view.scale < 8) closePolygon();
    else state.polygon.push([snapToCorner(p.u), snapToCorner(p.v)]);
    draw();
  } else if (state.tool === "keypoint" && state.schema.keypoints.length) {
    if (!m.inside(p.x, p.y)) return;
    m.begin();
    const near = keypointNear(e);
    if (near >= 0) {
      // press on a placed keypoint: drag it (it keeps its visibility; the selection stays on it)
      state.keypoint = near;
      state.drag = near;
      renderKeypointList();
      draw();
      return;
    }
    m.setKeypoint(state.keypoint, p.x, p.y, 1);
    state.lastPlaced = state.keypoint;
    state.keypoint = (state.keypoint + 1) % state.schema.keypoints.length;
    markDirty();
  }
});

/** The cursor readout: the pixel under the pointer and its class now (also right after an edit painted it). */
function showCursor(p) {
  if (!p || !state.model) return;
  const cls = state.model.at(p.x, p.y);
  const name = cls >= 0 ? (state.schema.classes.find((c) => c.id === cls) || { name: cls }).name : "";
  $("cursor-info").textContent = cls >= 0 ? `x ${p.x}, y ${p.y}: ${name}` : "";
}

/** Undo and redo buttons are enabled only when there is a step to take. */
function updateHistoryButtons() {
  $("undo").disabled = !(state.model && state.model.canUndo());
  $("redo").disabled = !(state.model && state.model.canRedo());
}

/** The placed keypoint drawn under the pointer (within its marker's radius, at least 6 screen px), or -1. */
function keypointNear(e) {
  const r = canvas.getBoundingClientRect();
  const v = state.view;
  const reach = Math.max(6, v.scale * 0.5);
  let best = -1;
  let bestDist = Infinity;
  state.model.keypoints.forEach((p, k) => {
    if (p[0] === null) return;
    const dx = (p[0] + 0.5) * v.scale + v.ox - (e.clientX - r.left);
    const dy = (p[1] + 0.5) * v.scale + v.oy - (e.clientY - r.top);
    const d = Math.hypot(dx, dy);
    if (d <= reach && d < bestDist) [best, bestDist] = [k, d];
  });
  return best;
}

canvas.addEventListener("pointermove", (e) => {
  if (!state.model) return;
  const p = eventPixel(e);
  state.hover = p;
  showCursor(p);
  if (state.pan) {
    state.view.ox = state.pan.ox + e.clientX - state.pan.x;
    state.view.oy = state.pan.oy + e.clientY - state.pan.y;
  } else if (state.drag !== null) {
    if (state.model.inside(p.x, p.y)) {
      state.model.setKeypoint(state.drag, p.x, p.y, state.model.keypoints[state.drag][2]);
    }
  } else if (state.stroke) {
    state.model.line(state.stroke.x, state.stroke.y, p.x, p.y, state.brush, state.stroke.cls);
    state.stroke.x = p.x;
    state.stroke.y = p.y;
    redrawLabels();
    return;
  }
  draw();
});

function endPointer() {
  if (state.stroke) {
    state.stroke = null;
    markDirty();
  }
  if (state.drag !== null) {
    state.drag = null;
    markDirty();
  }
  state.pan = null;
}
canvas.addEventListener("pointerup", endPointer);
canvas.addEventListener("pointercancel", endPointer);
canvas.addEventListener("pointerleave", () => {
  state.hover = null;
  draw();
});
canvas.addEventListener("dblclick", () => {
  if (state.tool === "polygon") closePolygon();
});
canvas.addEventListener(
  "wheel",
  (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
  },
  { passive: false },
);

// Polygon vertices snap to pixel corners (half-integers): a polygon then covers whole pixels, and which ones does
// not depend on where inside a screen pixel the click fell.
function snapToCorner(u) {
  return Math.round(u - 0.5) + 0.5;
}

function closePolygon() {
  // a double-click adds the same vertex twice: drop repeats
  const pts = state.polygon.filter((p, i, a) => i === 0 || Math.hypot(p[0] - a[i - 1][0], p[1] - a[i - 1][1]) > 1e-6);
  state.polygon = [];
  if (pts.length >= 3) {
    state.model.begin();
    state.model.polygon(pts, state.cls);
    markDirty();
  } else draw();
}

// Undo and redo select the keypoint they changed, so that the next click places that one again.
function stepHistory(step) {
  if (!state.model) return;
  const before = state.model.snapshot().keypoints;
  if (!step()) return;
  const k = state.model.changedKeypoint(before);
  if (k >= 0) {
    state.keypoint = k;
    state.lastPlaced = null;
  }
  markDirty();
  showCursor(state.hover);
}
function undo() {
  stepHistory(() => state.model.undo());
}
function redo() {
  stepHistory(() => state.model.redo());
}

async function setStatus(status) {
  await save();
  await api("PUT", `/api/items/${encodeURIComponent(state.item.id)}/annotation`, { status });
  state.items[state.index].status = status;
  renderItemList();
}

// ------------------------------------------------------------------ keyboard and buttons

const TOOL_KEYS = { b: "brush", e: "eraser", f: "fill", p: "polygon", k: "keypoint", h: "pan" };

window.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement && e.target.type !== "range" && e.target.type !== "checkbox") return;
  const key = e.key.toLowerCase();
  // a focused slider keeps its own arrow keys (they move the slider, not the item)
  if (e.target instanceof HTMLInputElement && e.target.type === "range" && key.startsWith("arrow")) return;
  if (e.ctrlKey || e.metaKey) {
    if (key === "z" && !e.shiftKey) undo();
    else if (key === "y" || (key === "z" && e.shiftKey)) redo();
    else if (key === "s") save();
    else return;
    e.preventDefault();
    return;
  }
  if (key === " ") state.space = true;
  else if (/^[0-9]$/.test(key) && state.schema.classes[Number(key)]) selectClass(state.schema.classes[Number(key)].id);
  else if (TOOL_KEYS[key]) selectTool(TOOL_KEYS[key]);
  else if (key === "v" && state.model) {
    // the selected keypoint, or, when it is not placed yet, the one just placed (placing moves the selection on)
    const m = state.model;
    const k = m.keypoints[state.keypoint] && m.keypoints[state.keypoint][0] === null && state.lastPlaced != null
      ? state.lastPlaced : state.keypoint;
    m.begin();
    m.toggleVisible(k);
    markDirty();
  } else if (key === "[" || key === "]") setBrush(state.brush + (key === "]" ? 1 : -1));
  else if (key === "+" || key === "=") zoom(1.25);
  else if (key === "-") zoom(0.8);
  else if (key === "home") fit();
  else if (key === "arrowleft") openItem(state.index - 1);
  else if (key === "arrowright") openItem(state.index + 1);
  else if (key === "n") newSample();
  else if (key === "enter" && state.tool === "polygon") closePolygon();
  else if (key === "escape") {
    state.polygon = [];
    draw();
  } else return;
  e.preventDefault();
});
window.addEventListener("keyup", (e) => {
  if (e.key === " ") state.space = false;
});
window.addEventListener("resize", () => draw());
window.addEventListener("beforeunload", (e) => {
  if (state.dirty || state.saving) e.preventDefault();
});

function setBrush(n) {
  state.brush = Math.max(1, Math.min(32, n));
  $("brush-size").value = state.brush;
  $("brush-size-value").textContent = state.brush;
  draw();
}

for (const b of document.querySelectorAll("#tools button")) b.onclick = () => selectTool(b.dataset.tool);
$("brush-size").oninput = (e) => setBrush(Number(e.target.value));
$("opacity").oninput = (e) => {
  state.opacity = Number(e.target.value) / 100;
  draw();
};
$("undo").onclick = undo;
$("redo").onclick = redo;
$("save").onclick = () => save();
$("zoom-in").onclick = () => zoom(1.25);
$("zoom-out").onclick = () => zoom(0.8);
$("fit").onclick = fit;
$("prev").onclick = () => openItem(state.index - 1);
$("next").onclick = () => openItem(state.index + 1);
$("new").onclick = () => newSample();
$("skip").onclick = () => setStatus("skipped");

// ------------------------------------------------------------------ active learning panel

async function pollActive() {
  try {
    const a = await api("GET", "/api/active");
    const text = {
      off: "off",
      waiting: `waiting for ${a.min_annotated} annotated item(s)`,
      training: `training on the annotations so far… (last model: ${a.trained_on} items)`,
      ready: `interpreter trained on ${a.trained_on} item(s) in ${a.seconds} s; new samples are pre-filled`,
      failed: `training failed: ${a.error}`,
    }[a.state];
    $("active-state").textContent = text || a.state;
    $("active-state").dataset.state = a.state;
    $("suggestions").replaceChildren(
      ...a.suggestions.map((s) => {
        const li = document.createElement("li");
        li.textContent = `seed ${s.seed} · uncertainty ${s.uncertainty.toFixed(3)}`;
        li.dataset.seed = s.seed;
        li.onclick = () => newSample(s.seed);
        return li;
      }),
    );
  } catch (e) {
    $("active-state").textContent = `unavailable: ${e.message}`;
  }
}

// ------------------------------------------------------------------ start

async function start() {
  const project = await api("GET", "/api/project");
  state.schema = project.schema;
  $("project").textContent = `${project.root} · ${project.generator || "generator"}`;
  for (const c of state.schema.classes) state.colors.set(c.color, 3 * c.id);
  state.cls = state.schema.classes.length > 1 ? state.schema.classes[1].id : 0;
  renderPalette();
  selectTool("brush");
  await loadItems();
  const wanted = decodeURIComponent(location.hash.slice(1));
  const at = state.items.findIndex((x) => x.id === wanted);
  if (at >= 0) await openItem(at);
  else if (state.items.length) await openItem(0);
  else await newSample();
  if (project.active) {
    pollActive();
    setInterval(pollActive, 2000);
  } else $("active").hidden = true;
  document.body.dataset.ready = "1";
}

// For tests and the console: where an image pixel's centre is on the screen, and what the label holds there.
window.annotator = {
  imageToClient(x, y) {
    const r = canvas.getBoundingClientRect();
    const v = state.view;
    return [r.left + (x + 0.5) * v.scale + v.ox, r.top + (y + 0.5) * v.scale + v.oy];
  },
  labelAt: (x, y) => state.model.at(x, y),
  keypoints: () => state.model.keypoints,
  itemId: () => state.item && state.item.id,
  scale: () => state.view.scale,
};

start().catch((e) => setSaveState("error", `could not start: ${e.message}`));
