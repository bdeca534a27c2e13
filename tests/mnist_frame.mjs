// The page's MNIST framing (web/drawing.js) of a raw image, for the C++ test to
// compare with runtime/mnist_frame.cpp: node mnist_frame.mjs W H FILE prints 784
// comma-separated pixels. The ink's bounding box is found as DrawPad.toMnist does.
import { readFileSync } from 'node:fs';
import { mnistFrame } from '../web/drawing.js';

const [W, H] = [Number(process.argv[2]), Number(process.argv[3])];
const grey = Float32Array.from(readFileSync(process.argv[4]));
let x0 = W, y0 = H, x1 = -1, y1 = -1;
for (let y = 0; y < H; y++) {
  for (let x = 0; x < W; x++) {
    if (grey[y * W + x] > 0) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
}
const out = x1 < 0 ? new Uint8Array(784) : mnistFrame(grey, W, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
process.stdout.write(Array.from(out).join(','));
