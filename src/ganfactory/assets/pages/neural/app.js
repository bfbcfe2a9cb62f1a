// The neural renderer page: a source (seed or upload), a camera from the sliders, properties taken from other seeds.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const state = {source: null, takes: {}, renders: 0, pending: 0, inputs: 0};
  let queued = false;
  let running = false;

  function status(text, kind) {
    const el = $("status");
    el.textContent = text;
    el.dataset.state = kind;
  }

  async function api(path, options) {
    const res = await fetch(path, options);
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || res.statusText);
    return data;
  }

  function showTakes() {
    const parts = Object.entries(state.takes).map(([p, s]) => `${p} from ${s}`);
    $("takes").textContent = parts.length ? `taken: ${parts.join(", ")}` : "all properties from the input";
  }

  // Renders are serialised; slider moves during a render coalesce into one more render with the latest values.
  async function render() {
    if (!state.source) return;
    if (running) { queued = true; return; }
    running = true;
    state.pending += 1;
    status("rendering...", "busy");
    try {
      do {
        queued = false;
        const q = new URLSearchParams({source: state.source, azimuth: $("azimuth").value,
                                       elevation: $("elevation").value, ...state.takes});
        const data = await api(`/api/render?${q}`);
        $("gan").src = data.gan;
        $("mesh").src = data.mesh;
        state.renders += 1;
      } while (queued);
      status(`${state.source}`, "idle");
    } catch (e) {
      status(e.message, "error");
    } finally {
      running = false;
      state.pending -= 1;
    }
  }

  function setCamera(az, el) {
    $("azimuth").value = Math.round(az) % 360;
    $("elevation").value = Math.round(Math.max(-10, Math.min(45, el)));
    sliderLabels();
  }

  function sliderLabels() {
    $("azimuth-value").textContent = `${$("azimuth").value}\u00b0`;
    $("elevation-value").textContent = `${$("elevation").value}\u00b0`;
  }

  // Run an async step counted as pending (window.nr.idle() waits for it); an error shows in the status line.
  async function step(fn) {
    state.pending += 1;
    try {
      await fn();
    } catch (e) {
      status(e.message, "error");
    } finally {
      state.pending -= 1;
    }
  }

  function useSource(promise) {
    status("reading the input...", "busy");
    return step(async () => {
      const data = await promise;
      state.source = data.source;
      state.takes = {};
      state.inputs += 1;
      $("input").src = data.input;
      setCamera(data.azimuth_deg, data.elevation_deg);
      showTakes();
      await render();
    });
  }

  function loadSeed() {
    const seed = $("seed").value;
    $("donor").value = String(Number(seed) + 1);
    return useSource(api(`/api/source?seed=${encodeURIComponent(seed)}`));
  }

  function take(property) {
    const donor = $("donor").value;
    return step(async () => {
      const data = await api(`/api/source?seed=${encodeURIComponent(donor)}`);
      state.takes[property] = data.source;
      $("donor").value = String(Number(donor) + 1);
      showTakes();
      await render();
    });
  }

  async function turnAround() {
    const start = Number($("azimuth").value);
    for (let k = 1; k <= 12; k++) {
      $("azimuth").value = (start + 30 * k) % 360;
      sliderLabels();
      await render();
    }
  }

  $("load-seed").addEventListener("click", loadSeed);
  $("seed").addEventListener("keydown", (e) => { if (e.key === "Enter") loadSeed(); });
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    if (file) useSource(api("/api/upload", {method: "POST", body: file}));
  });
  for (const id of ["azimuth", "elevation"]) {
    $(id).addEventListener("input", () => { sliderLabels(); render(); });
  }
  document.querySelectorAll(".take").forEach((b) => b.addEventListener("click", () => take(b.dataset.property)));
  $("reset").addEventListener("click", () => { state.takes = {}; showTakes(); render(); });
  $("turn").addEventListener("click", turnAround);

  window.nr = {
    state: () => ({source: state.source, takes: {...state.takes}}),
    renders: () => state.renders,
    idle: () => state.pending === 0 && !running,
    inputs: () => state.inputs,
  };
  loadSeed().then(() => { document.body.dataset.ready = "1"; });
})();
