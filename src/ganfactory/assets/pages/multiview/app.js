// The view-code annotation page: one click among 12 azimuth bins per view code, an elevation guess, autosave, undo.
"use strict";
(() => {
  const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "-", "="];
  const ELEV_KEYS = ["q", "w", "e", "r"];
  const $ = (id) => document.getElementById(id);
  let project = null;
  let answers = {};          // view code (string) -> {azimuth_bin, elevation_deg}
  let current = 0;
  let elevation = 0;         // the sticky elevation guess
  let pending = 0;
  const history = [];        // undo stack: {v, before: answer | null}
  const prefetched = new Set();

  async function api(method, path, body) {
    const res = await fetch(path, {method, headers: body ? {"Content-Type": "application/json"} : {},
                                   body: body ? JSON.stringify(body) : undefined});
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || res.statusText);
    return data;
  }

  function setState(state) {
    const el = $("save-state");
    el.dataset.state = state;
    el.textContent = state;
  }

  function gridUrl(v) { return `/api/views/${v}/grid.png`; }

  function prefetch(v) {
    if (v < 0 || v >= project.view_codes || prefetched.has(v)) return;
    prefetched.add(v);
    new Image().src = gridUrl(v);
  }

  function nextUnanswered(from) {
    for (let k = 1; k <= project.view_codes; k++) {
      const v = (from + k) % project.view_codes;
      if (!(String(v) in answers)) return v;
    }
    return Math.min(from + 1, project.view_codes - 1);
  }

  function render() {
    const n = Object.keys(answers).length;
    $("progress").textContent = `${n} / ${project.view_codes} annotated`;
    $("view-label").textContent = `view code ${current}`;
    const a = answers[String(current)];
    document.querySelectorAll(".bin").forEach((b) => b.classList.toggle("chosen", !!a && +b.dataset.bin === a.azimuth_bin));
    document.querySelectorAll(".elev").forEach((b) => b.classList.toggle("chosen", +b.dataset.elev === elevation));
  }

  function show(v) {
    current = Math.max(0, Math.min(project.view_codes - 1, v));
    const a = answers[String(current)];
    if (a) elevation = a.elevation_deg;    // the height shown is the one a click saves
    const img = $("grid");
    img.onload = () => { document.body.dataset.ready = "1"; img.dataset.view = String(current); };
    img.src = gridUrl(current);
    prefetched.add(current);
    prefetch(nextUnanswered(current));
    render();
  }

  async function send(v, answer) {
    pending++;
    setState("saving");
    try {
      const data = answer === null ? await api("DELETE", `/api/views/${v}`)
                                   : await api("PUT", `/api/views/${v}`, answer);
      answers = data.answers;
      pending--;
      if (pending === 0) setState("saved");
    } catch (e) {
      pending--;
      setState("error");
      throw e;
    }
    render();
  }

  function choose(bin) {
    const v = current;
    const before = answers[String(v)] || null;
    const answer = {azimuth_bin: bin, elevation_deg: elevation};
    history.push({v, before});
    answers[String(v)] = answer;       // shown at once; the server's reply replaces it
    send(v, answer);
    show(nextUnanswered(v));
  }

  function chooseElevation(e) {
    elevation = e;
    const a = answers[String(current)];
    if (a && a.elevation_deg !== e) {  // changing an answered view code's height saves it too
      history.push({v: current, before: a});
      const answer = {azimuth_bin: a.azimuth_bin, elevation_deg: e};
      answers[String(current)] = answer;
      send(current, answer);
    }
    render();
  }

  function undo() {
    const last = history.pop();
    if (!last) return;
    if (last.before === null) delete answers[String(last.v)]; else answers[String(last.v)] = last.before;
    send(last.v, last.before);
    show(last.v);
  }

  function buildControls() {
    const dial = $("dial");
    const r = 125, cx = 150, cy = 150;
    for (let b = 0; b < project.azimuth_bins; b++) {
      const deg = b * 360 / project.azimuth_bins;
      const rad = deg * Math.PI / 180;
      const btn = document.createElement("button");
      btn.className = "bin";
      btn.dataset.bin = String(b);
      btn.innerHTML = `${deg}&deg;<kbd>${KEYS[b] || ""}</kbd>`;
      // seen from above, front up: azimuth 0 at the top, 90 (the car's left side) on the left
      btn.style.left = `${cx - r * Math.sin(rad)}px`;
      btn.style.top = `${cy - r * Math.cos(rad)}px`;
      btn.title = `camera at ${deg} degrees (key ${KEYS[b]})`;
      btn.addEventListener("click", () => choose(b));
      dial.appendChild(btn);
    }
    const box = $("elevation");
    project.elevation_choices.forEach((e, i) => {
      const btn = document.createElement("button");
      btn.className = "elev";
      btn.dataset.elev = String(e);
      btn.innerHTML = `${e}&deg; <kbd>${ELEV_KEYS[i].toUpperCase()}</kbd>`;
      btn.addEventListener("click", () => chooseElevation(e));
      box.appendChild(btn);
    });
    $("prev").addEventListener("click", () => show(current - 1));
    $("next").addEventListener("click", () => show(current + 1));
    $("undo").addEventListener("click", undo);
    document.addEventListener("keydown", (ev) => {
      if (ev.target.tagName === "INPUT") return;
      const key = ev.key.toLowerCase();
      if ((ev.ctrlKey || ev.metaKey) && key === "z") { ev.preventDefault(); undo(); return; }
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const bin = KEYS.indexOf(ev.key);
      if (bin >= 0 && bin < project.azimuth_bins) { choose(bin); return; }
      const e = ELEV_KEYS.indexOf(key);
      if (e >= 0 && e < project.elevation_choices.length) { chooseElevation(project.elevation_choices[e]); return; }
      if (key === "z") undo();
      else if (ev.key === "ArrowLeft") show(current - 1);
      else if (ev.key === "ArrowRight") show(current + 1);
    });
  }

  async function start() {
    project = await api("GET", "/api/project");
    answers = project.answers;
    buildControls();
    show(Object.keys(answers).length ? nextUnanswered(-1) : 0);
  }

  window.mv = {
    viewCode: () => current,
    answers: () => JSON.parse(JSON.stringify(answers)),
    saved: () => pending === 0 && $("save-state").dataset.state === "saved",
  };
  start().catch((e) => { setState("error"); console.error(e); });
})();
