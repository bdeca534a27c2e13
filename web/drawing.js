// The drawing pad and MNIST's preprocessing of a drawn digit: white on black, the
// bounding box scaled so its longer side is 20 px (area averaging, which gives the
// anti-aliased grey edges MNIST has), then placed in a 28x28 frame with its centre
// of mass at the centre.

export const SIDE = 28;
const BOX = 20;

export class DrawPad {
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.g = canvas.getContext('2d', { willReadFrequently: true });
    this.onChange = onChange;
    this.drawing = false;
    this.last = null;
    this.clear();
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const ev of ['pointerup', 'pointercancel', 'pointerleave']) {
      canvas.addEventListener(ev, () => { this.drawing = false; this.last = null; });
    }
  }

  clear() {
    this.g.fillStyle = '#000';
    this.g.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.empty = true;
    this.onChange();
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (this.canvas.width / r.width),
            (e.clientY - r.top) * (this.canvas.height / r.height)];
  }

  down(e) {
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.drawing = true;
    this.last = this.point(e);
    this.stroke(this.last, this.last);
  }

  move(e) {
    if (!this.drawing) return;
    e.preventDefault();
    const p = this.point(e);
    this.stroke(this.last, p);
    this.last = p;
  }

  stroke(a, b) {
    const g = this.g;
    g.strokeStyle = '#fff';
    g.lineWidth = this.canvas.width / 13;
    g.lineCap = 'round';
    g.lineJoin = 'round';
    g.beginPath();
    g.moveTo(a[0], a[1]);
    g.lineTo(b[0], b[1]);
    g.stroke();
    this.empty = false;
    this.onChange();
  }

  // The drawing as MNIST pixels (Uint8Array of 784), or null if nothing is drawn.
  toMnist() {
    if (this.empty) return null;
    const { width: W, height: H } = this.canvas;
    const rgba = this.g.getImageData(0, 0, W, H).data;
    const grey = new Float32Array(W * H);
    let x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const v = rgba[(y * W + x) * 4];
        grey[y * W + x] = v;
        if (v > 0) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
      }
    }
    if (x1 < 0) return null;
    return mnistFrame(grey, W, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
  }
}

// grey: W-wide image; (bx, by, bw, bh) the ink's bounding box -> 28x28 uint8.
export function mnistFrame(grey, W, bx, by, bw, bh) {
  const scale = BOX / Math.max(bw, bh);  // target pixels per source pixel
  const tw = Math.max(1, Math.round(bw * scale)), th = Math.max(1, Math.round(bh * scale));
  // Each target pixel is the mean of the source pixels it covers (at least one,
  // so a digit drawn smaller than 20 px is enlarged without holes).
  const small = new Float32Array(tw * th);
  const span = (t, n) => {
    const lo = Math.min(n - 1, Math.floor(t / scale));
    return [lo, Math.max(lo + 1, Math.min(n, Math.ceil((t + 1) / scale)))];
  };
  for (let ty = 0; ty < th; ty++) {
    const [sy0, sy1] = span(ty, bh);
    for (let tx = 0; tx < tw; tx++) {
      const [sx0, sx1] = span(tx, bw);
      let sum = 0;
      for (let y = sy0; y < sy1; y++) for (let x = sx0; x < sx1; x++) sum += grey[(by + y) * W + bx + x];
      small[ty * tw + tx] = sum / ((sy1 - sy0) * (sx1 - sx0));
    }
  }
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      const i = y * tw + x;
      mass += small[i];
      mx += small[i] * (x + 0.5);
      my += small[i] * (y + 0.5);
    }
  }
  // Shift so the centre of mass lands on the frame's centre (14, 14).
  const ox = Math.round(SIDE / 2 - mx / mass), oy = Math.round(SIDE / 2 - my / mass);
  const out = new Uint8Array(SIDE * SIDE);
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      const X = x + ox, Y = y + oy;
      if (X >= 0 && X < SIDE && Y >= 0 && Y < SIDE) out[Y * SIDE + X] = Math.round(Math.min(255, small[y * tw + x]));
    }
  }
  return out;
}

// Paints 28x28 uint8 pixels (white on black) into a 28x28 canvas.
export function paintDigit(canvas, pixels) {
  const g = canvas.getContext('2d');
  const img = g.createImageData(SIDE, SIDE);
  for (let i = 0; i < SIDE * SIDE; i++) {
    img.data[i * 4] = img.data[i * 4 + 1] = img.data[i * 4 + 2] = pixels[i];
    img.data[i * 4 + 3] = 255;
  }
  g.putImageData(img, 0, 0);
}
