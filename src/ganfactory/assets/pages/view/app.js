// The mesh viewer: a GLB in three.js under orbit controls, its input image, its nodes and animations.
// Parts (reconstruct --parts): mesh nodes whose extras name a part ({"ganfactory": {"part", "color"}}) can be drawn
// in their part's colour and toggled per part; the file's animations (wheels spinning, front wheels steering) play
// through one AnimationMixer, each clip switched on and off by its checkbox.
// Frame: the files' (y up, the car's front along +z, its left side along +x); azimuth 0 looks at the front, 90 at
// the left side, as in ganfactory.render.conventions. window.viewer is the page's hook for tests and scripts.
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";

const $ = (id) => document.getElementById(id);
const DEG = Math.PI / 180;
const canvas = $("canvas");
const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio);
const scene = new THREE.Scene();
const WHITE = new THREE.Color(0xffffff);
scene.background = WHITE;
const lights = new THREE.Group();
lights.add(new THREE.HemisphereLight(0xffffff, 0x444444, 2.0));
const sun = new THREE.DirectionalLight(0xffffff, 2.0);
sun.position.set(3, 6, 4);
lights.add(sun);
scene.add(lights);
const camera = new THREE.PerspectiveCamera(30, 1, 0.01, 1000);
const controls = new OrbitControls(camera, canvas);
const loader = new GLTFLoader();

let meshes = [];            // the server's list
let current = -1;
let model = null;           // the loaded glTF's scene
let gltfInfo = { nodes: [], animations: [] };
let materials = [];         // per drawn mesh: {mesh, lit, flat}
let radius = 1;
let fixedSize = null;       // [w, h] set by viewer.setSize, else the canvas' layout size
let silhouette = null;      // the override material while silhouette mode is on
let mixer = null;           // the loaded model's AnimationMixer
let actions = new Map();    // clip name -> AnimationAction
let clock = new THREE.Clock();
let playing = false;        // the render loop runs while a clip plays

function status(text, error = false) {
  const el = $("status");
  el.textContent = text;
  el.className = error ? "error" : "";
  el.hidden = !text;
}

function render() {
  renderer.render(scene, camera);
  const offset = camera.position.clone().sub(controls.target);
  const d = offset.length();
  const az = (Math.atan2(offset.x, offset.z) / DEG + 360) % 360;
  const el = Math.asin(Math.max(-1, Math.min(1, offset.y / d))) / DEG;
  $("camera-label").textContent = `azimuth ${az.toFixed(0)}°  elevation ${el.toFixed(0)}°  distance ${d.toPrecision(3)}`;
}

function resize() {
  const [w, h] = fixedSize || [canvas.clientWidth, canvas.clientHeight];
  if (!w || !h) return;
  renderer.setSize(w, h, fixedSize !== null);   // a fixed size also sets the canvas' CSS size
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
  render();
}
new ResizeObserver(() => { if (!fixedSize) resize(); }).observe(canvas);

function clipPlanes(distance) {            // generous: the mesh is never clipped within the zoom range
  camera.near = Math.min(radius * 0.01, distance * 0.01);
  camera.far = Math.max(radius * 100, distance * 4);
  controls.maxDistance = camera.far / 2;
  camera.updateProjectionMatrix();
}

// A camera at (azimuth, elevation, distance) from target, fov vertical, degrees: render.look_at's camera.
function setView({ azimuth = 0, elevation = 0, distance = 1, fov = 30, target = [0, 0, 0] }) {
  const a = azimuth * DEG, e = elevation * DEG;
  const t = new THREE.Vector3(...target);
  camera.up.set(0, 1, 0);
  camera.position.set(t.x + distance * Math.cos(e) * Math.sin(a), t.y + distance * Math.sin(e),
                      t.z + distance * Math.cos(e) * Math.cos(a));
  camera.fov = fov;
  clipPlanes(distance);
  controls.target.copy(t);
  camera.lookAt(t);
  controls.update();
  render();
}

// The input view (a reconstruction's predicted camera), or the mesh framed from the front-left.
function resetView() {
  const view = meshes[current] && meshes[current].view;
  if (view) {
    camera.up.set(0, 1, 0);
    camera.position.set(...view.position);
    camera.fov = view.fov;
    const target = new THREE.Vector3(...view.target);
    clipPlanes(camera.position.distanceTo(target));
    controls.target.copy(target);
    camera.lookAt(target);
    controls.update();
    render();
    return;
  }
  const box = new THREE.Box3().setFromObject(model);
  const centre = box.getCenter(new THREE.Vector3());
  setView({ azimuth: 45, elevation: 20, fov: 30, target: centre.toArray(),
            distance: radius / Math.sin(15 * DEG) / 0.8 });
}

function applyMaterials() {
  const lit = $("lit").checked, wire = $("wire").checked, parts = $("parts-colour").checked;
  for (const m of materials) {
    const use = parts && m.part ? m.part : m;
    m.mesh.material = lit ? use.lit : use.flat;
    m.mesh.material.wireframe = wire;
  }
  lights.visible = lit;
  render();
}

// Two copies of each of the file's materials: unlit (the texture as it is, our renderer's default; reconstructions
// bake their lighting into the texture, so this is the faithful picture) and diffusely lit by two lights, one normal
// per face (shows the shape; smooth normals would crease along the UV seams, where the file splits vertices). The file's own PBR materials are not used: without an environment map glTF's default metalness of 1
// draws them black.
function copies(material) {
  const common = { map: material.map || null, color: material.color || WHITE, side: material.side,
                   transparent: material.transparent, opacity: material.opacity, alphaTest: material.alphaTest };
  return { flat: new THREE.MeshBasicMaterial(common), lit: new THREE.MeshLambertMaterial({ ...common, flatShading: true }) };
}

// The part of a drawn mesh: its node's extras (three.js puts them in userData), else the nearest ancestor's.
function partOf(obj) {
  for (let o = obj; o; o = o.parent) {
    const info = o.userData && o.userData.ganfactory;
    if (info && info.part && info.color) return info;
  }
  return null;
}

function partCopies(info) {
  const color = new THREE.Color(...info.color.map((c) => c / 255)).convertSRGBToLinear();
  return { flat: new THREE.MeshBasicMaterial({ color }), lit: new THREE.MeshLambertMaterial({ color, flatShading: true }) };
}

function showParts() {
  const groups = new Map();
  for (const m of materials) {
    if (!m.partName) continue;
    if (!groups.has(m.partName)) groups.set(m.partName, []);
    groups.get(m.partName).push(m.mesh);
  }
  const ul = $("parts");
  ul.replaceChildren();
  for (const [name, objects] of groups) {
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${partOf(objects[0]).color.join(",")})`;
    const box = checkboxItem(ul, true, [swatch, ` ${name} (${objects.length})`],
                             (on) => setPartVisible(name, on));
    box.dataset.part = name;
  }
  $("parts-box").hidden = groups.size === 0;
  $("parts-colour").disabled = groups.size === 0;
}

function setPartVisible(name, on) {
  for (const m of materials) if (m.partName === name) m.mesh.visible = on;
  const box = document.querySelector(`#parts input[data-part="${name}"]`);
  if (box) box.checked = on;
  render();
}

function loop() {
  if (!playing) return;
  mixer.update(clock.getDelta());
  render();
  requestAnimationFrame(loop);
}

function setPlaying(name, on) {
  const action = actions.get(name);
  if (!action) throw new Error(`no animation named ${name}`);
  if (on) action.play(); else action.stop();
  const box = document.querySelector(`#animations input[data-clip="${name}"]`);
  if (box) box.checked = on;
  const any = [...actions.values()].some((a) => a.isRunning());
  if (any && !playing) { playing = true; clock.getDelta(); requestAnimationFrame(loop); }
  playing = any;
  render();
}

// Stop the clock and show every running clip at time t (seconds): what tests and stills use.
function setAnimationTime(t) {
  playing = false;
  for (const a of actions.values()) if (a.isRunning()) a.time = t;
  mixer.update(0);
  render();
}

function listNodes(root) {
  const nodes = [];
  root.traverse((obj) => {
    if (obj === root) return;
    const triangles = obj.isMesh ? (obj.geometry.index ? obj.geometry.index.count : obj.geometry.attributes.position.count) / 3 : 0;
    nodes.push({ name: obj.name || "(unnamed)", type: obj.type, triangles, object: obj });
  });
  return nodes;
}

// One row of a toggle list: <li><label><input type=checkbox> ...content</label></li>, appended to ``list``;
// returns the checkbox (callers tag it for scripts and tests).
function checkboxItem(list, checked, content, onChange) {
  const li = document.createElement("li");
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = checked;
  box.addEventListener("change", () => onChange(box.checked));
  label.append(box, ...content);
  li.append(label);
  list.append(li);
  return box;
}

function showInfo() {
  const ul = $("nodes");
  ul.replaceChildren();
  for (const node of gltfInfo.nodes) {
    checkboxItem(ul, node.object.visible, [` ${node.name}` + (node.triangles ? ` (${node.triangles} triangles)` : "")],
                 (on) => { node.object.visible = on; render(); });
  }
  const an = $("animations");
  an.replaceChildren();
  for (const clip of gltfInfo.animations) {
    const box = checkboxItem(an, false,
                             [` ${clip.name || "(unnamed)"} (${clip.duration.toFixed(2)} s, ${clip.tracks.length} tracks)`],
                             (on) => setPlaying(clip.name, on));
    box.dataset.clip = clip.name;
    box.title = "play";
  }
  if (!gltfInfo.animations.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "none in this file";
    an.append(li);
  }
}

async function select(i) {
  if (i < 0 || i >= meshes.length) return;
  document.body.dataset.ready = "0";
  current = i;
  const item = meshes[i];
  for (const [k, li] of [...$("list").children].entries()) li.classList.toggle("current", k === i);
  $("image-box").hidden = !item.image;
  if (item.image) $("input").src = item.image;
  status(`loading ${item.name}`);
  let gltf;
  try {
    gltf = await loader.loadAsync(item.glb);
  } catch (e) {
    status(`${item.name}: cannot load (${e.message || e})`, true);
    document.body.dataset.ready = "error";
    return;
  }
  if (current !== i) return;                     // another pick arrived meanwhile
  if (model) scene.remove(model);
  model = gltf.scene;
  scene.add(model);
  materials = [];
  model.traverse((obj) => {
    if (!obj.isMesh) return;
    const info = partOf(obj);
    materials.push({ mesh: obj, ...copies(obj.material), part: info ? partCopies(info) : null,
                     partName: info ? info.part : null });
  });
  gltfInfo = { nodes: listNodes(model), animations: gltf.animations || [] };
  playing = false;
  mixer = new THREE.AnimationMixer(model);
  actions = new Map(gltfInfo.animations.map((clip) => [clip.name, mixer.clipAction(clip)]));
  showParts();
  radius = Math.max(new THREE.Box3().setFromObject(model).getBoundingSphere(new THREE.Sphere()).radius, 1e-6);
  showInfo();
  applyMaterials();
  resetView();
  status("");
  document.body.dataset.mesh = String(i);
  document.body.dataset.ready = "1";
}

function setSilhouette(on) {
  if (on) {
    silhouette = silhouette || new THREE.MeshBasicMaterial({ color: 0xffffff });
    scene.overrideMaterial = silhouette;
    scene.background = new THREE.Color(0x000000);
  } else {
    scene.overrideMaterial = null;
    scene.background = WHITE;
  }
  render();
}

window.viewer = {
  select,
  setView,
  resetView,
  setSilhouette,
  setSize(w, h) { fixedSize = [w, h]; resize(); },
  setPlaying,
  setAnimationTime,
  setPartVisible,
  setPartsColour(on) { $("parts-colour").checked = on; applyMaterials(); },
  parts: () => [...new Set(materials.filter((m) => m.partName).map((m) => m.partName))],
  current: () => current,
  count: () => meshes.length,
  nodes: () => gltfInfo.nodes.map(({ name, type, triangles }) => ({ name, type, triangles })),
  animations: () => gltfInfo.animations.map((c) => ({ name: c.name, duration: c.duration, tracks: c.tracks.length })),
  camera: () => ({ position: camera.position.toArray(), target: controls.target.toArray(), fov: camera.fov }),
  webgl: () => renderer.getContext().getParameter(renderer.getContext().VERSION),
};

controls.addEventListener("change", render);
$("reset").addEventListener("click", resetView);
$("lit").addEventListener("change", applyMaterials);
$("wire").addEventListener("change", applyMaterials);
$("parts-colour").addEventListener("change", applyMaterials);
window.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement) return;
  if (e.key === "r" || e.key === "R") resetView();
  else if (e.key === "ArrowDown") { select(current + 1); e.preventDefault(); }
  else if (e.key === "ArrowUp") { select(current - 1); e.preventDefault(); }
});

async function start() {
  let info;
  try {
    const res = await fetch("/api/meshes");
    info = await res.json();
    if (!res.ok) throw new Error(info.error || res.statusText);
  } catch (e) {
    status(`cannot reach the server (${e.message || e})`, true);
    return;
  }
  meshes = info.meshes;
  $("title").textContent = `ganfactory view: ${info.title}`;
  document.title = `ganfactory view: ${info.title}`;
  $("list-box").hidden = meshes.length < 2;
  for (const [i, item] of meshes.entries()) {
    const li = document.createElement("li");
    li.textContent = item.name + (item.camera ? ` (azimuth ${item.camera.azimuth_deg.toFixed(0)}°)` : "");
    li.addEventListener("click", () => select(i));
    $("list").append(li);
  }
  resize();
  await select(0);
}

start();
