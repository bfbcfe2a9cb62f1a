// The label model of one item, independent of the page: a uint8 class id per image pixel, keypoints, and undo /
// redo as whole snapshots (labels are small: a 256 px image is 64 KiB, so 200 snapshots stay cheap and exact).
// Coordinates: pixel centres at integers; pixel (x, y) covers [x - 0.5, x + 0.5) x [y - 0.5, y + 0.5).

const HISTORY = 200;

export class LabelModel {
  constructor(width, height, label, keypoints) {
    this.width = width;
    this.height = height;
    this.label = label ? Uint8Array.from(label) : new Uint8Array(width * height);
    this.keypoints = keypoints.map((p) => [...p]);
    this.past = [];
    this.future = [];
    this.pendingFuture = null;
  }

  snapshot() {
    return { label: this.label.slice(), keypoints: this.keypoints.map((p) => [...p]) };
  }

  restore(s) {
    this.label = s.label;
    this.keypoints = s.keypoints;
  }

  // Call before every edit: the state it saves is what undo returns to. Call `end()` when the edit is over: an
  // edit that changed nothing (a click on a keypoint without dragging, a brush press outside the image) then
  // leaves no undo step, and the redo steps it would have dropped are kept.
  begin() {
    this.past.push(this.snapshot());
    if (this.past.length > HISTORY) this.past.shift();
    this.pendingFuture = this.future;
    this.future = [];
  }

  // Returns whether the edit changed anything (true outside an edit).
  end() {
    const last = this.past[this.past.length - 1];
    let changed = true;
    if (last && this.pendingFuture !== null && this.same(last)) {
      this.past.pop();
      this.future = this.pendingFuture;
      changed = false;
    }
    this.pendingFuture = null;
    return changed;
  }

  same(s) {
    if (s.label.length !== this.label.length || s.keypoints.length !== this.keypoints.length) return false;
    for (let i = 0; i < s.label.length; i++) if (s.label[i] !== this.label[i]) return false;
    return s.keypoints.every((p, k) => p.every((v, j) => v === this.keypoints[k][j]));
  }

  canUndo() {
    return this.past.length > 0;
  }

  canRedo() {
    return this.future.length > 0;
  }

  // The first keypoint whose value differs from `keypoints` (a snapshot's), or -1.
  changedKeypoint(keypoints) {
    return this.keypoints.findIndex((p, k) => !p.every((v, j) => v === keypoints[k][j]));
  }

  undo() {
    if (!this.past.length) return false;
    this.future.push(this.snapshot());
    this.restore(this.past.pop());
    return true;
  }

  redo() {
    if (!this.future.length) return false;
    this.past.push(this.snapshot());
    this.restore(this.future.pop());
    return true;
  }

  inside(x, y) {
    return x >= 0 && y >= 0 && x < this.width && y < this.height;
  }

  at(x, y) {
    return this.inside(x, y) ? this.label[y * this.width + x] : -1;
  }

  // A round brush of `size` pixels across centred on pixel (cx, cy): size 1 is one pixel, 3 is a 3x3 block.
  disc(cx, cy, size, cls) {
    const r = size / 2;
    const reach = Math.ceil(r);
    for (let dy = -reach; dy <= reach; dy++) {
      for (let dx = -reach; dx <= reach; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        if (dx * dx + dy * dy <= r * r && this.inside(x, y)) this.label[y * this.width + x] = cls;
      }
    }
  }

  // A stroke from pixel (x0, y0) to (x1, y1): a disc at every pixel step of the longer axis.
  line(x0, y0, x1, y1, size, cls) {
    const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0));
    for (let i = 0; i <= steps; i++) {
      const t = steps ? i / steps : 0;
      this.disc(Math.round(x0 + (x1 - x0) * t), Math.round(y0 + (y1 - y0) * t), size, cls);
    }
  }

  // Flood fill: the 4-connected region of pixels sharing (x, y)'s class becomes `cls`.
  fill(x, y, cls) {
    const from = this.at(x, y);
    if (from < 0 || from === cls) return 0;
    const w = this.width;
    const stack = [y * w + x];
    let count = 0;
    while (stack.length) {
      const i = stack.pop();
      if (this.label[i] !== from) continue;
      this.label[i] = cls;
      count++;
      const px = i % w;
      const py = (i - px) / w;
      if (px > 0) stack.push(i - 1);
      if (px < w - 1) stack.push(i + 1);
      if (py > 0) stack.push(i - w);
      if (py < this.height - 1) stack.push(i + w);
    }
    return count;
  }

  // A closed polygon (vertices in image coordinates): every pixel whose centre lies inside (even-odd rule).
  polygon(points, cls) {
    if (points.length < 3) return 0;
    let count = 0;
    for (let y = 0; y < this.height; y++) {
      const xs = [];
      for (let i = 0; i < points.length; i++) {
        const [ax, ay] = points[i];
        const [bx, by] = points[(i + 1) % points.length];
        if ((ay <= y) !== (by <= y)) xs.push(ax + ((y - ay) * (bx - ax)) / (by - ay));
      }
      xs.sort((a, b) => a - b);
      for (let k = 0; k + 1 < xs.length; k += 2) {
        for (let x = Math.max(0, Math.ceil(xs[k])); x < Math.min(this.width, xs[k + 1]); x++) {
          this.label[y * this.width + x] = cls;
          count++;
        }
      }
    }
    return count;
  }

  setKeypoint(k, x, y, visible) {
    this.keypoints[k] = [x, y, visible];
  }

  toggleVisible(k) {
    const p = this.keypoints[k];
    if (p[0] !== null) this.keypoints[k] = [p[0], p[1], p[2] ? 0 : 1];
  }

  clearKeypoint(k) {
    this.keypoints[k] = [null, null, 0];
  }
}

export function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

export function fromBase64(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}
