// The mesh viewer: a GLB in three.js under orbit controls, its input image, its nodes and animations.
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
  const lit = $("lit").checked, wire = $("wire").checked;
  for (const m of materials) {
    m.mesh.material = lit ? m.lit : m.flat;
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

function listNodes(root) {
  const nodes = [];
  root.traverse((obj) => {
    if (obj === root) return;
    const triangles = obj.isMesh ? (obj.geometry.index ? obj.geometry.index.count : obj.geometry.attributes.position.count) / 3 : 0;
    nodes.push({ name: obj.name || "(unnamed)", type: obj.type, triangles, object: obj });
  });
  return nodes;
}

function showInfo() {
  const ul = $("nodes");
  ul.replaceChildren();
  for (const node of gltfInfo.nodes) {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = node.object.visible;
    box.addEventListener("change", () => { node.object.visible = box.checked; render(); });
    label.append(box, ` ${node.name}` + (node.triangles ? ` (${node.triangles} triangles)` : ""));
    li.append(label);
    ul.append(li);
  }
  const an = $("animations");
  an.replaceChildren();
  for (const clip of gltfInfo.animations) {
    const li = document.createElement("li");
    li.textContent = `${clip.name || "(unnamed)"} (${clip.duration.toFixed(2)} s, ${clip.tracks.length} tracks)`;
    an.append(li);
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
    materials.push({ mesh: obj, ...copies(obj.material) });
  });
  gltfInfo = { nodes: listNodes(model), animations: gltf.animations || [] };
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
