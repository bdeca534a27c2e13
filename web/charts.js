// Small canvas charts: a line chart with axes and a legend, redrawn at most once a
// frame. Hand-drawn (≈100 lines) instead of a chart library to keep the page light.

const AXIS = '#8a8f98';
const GRID = 'rgba(138, 143, 152, 0.18)';
const FONT = '11px system-ui, sans-serif';

function niceTicks(lo, hi, count) {
  const span = hi - lo || 1;
  const step0 = span / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= count) || 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(t);
  return { ticks, step };
}

function fmt(v, step) {
  // A diverging run's loss reaches 1e8 and more: "3.9e8" fits the axis margin.
  if (Math.abs(v) >= 1e5) return v.toExponential(1).replace('e+', 'e');
  const digits = Math.max(0, Math.min(4, -Math.floor(Math.log10(step))));
  return v.toFixed(digits);
}

export class LineChart {
  // series: [{label, color, axis: 'left' | 'right'}]; xLabel names the x unit;
  // empty: what the chart says while it has no points.
  constructor(canvas, { series, xLabel, leftRange, rightRange, empty = '' }) {
    this.canvas = canvas;
    this.empty = empty;
    this.series = series.map((s) => ({ ...s, points: [] }));
    this.xLabel = xLabel;
    this.fixed = { left: leftRange, right: rightRange };
    this.pending = false;
    new ResizeObserver(() => this.redraw()).observe(canvas);
  }

  add(index, x, y) {
    this.series[index].points.push([x, y]);
    this.redraw();
  }

  clear() {
    for (const s of this.series) s.points = [];
    this.redraw();
  }

  redraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  range(axis) {
    if (this.fixed[axis]) return this.fixed[axis];
    let lo = Infinity, hi = -Infinity;
    for (const s of this.series) {
      if ((s.axis || 'left') !== axis) continue;
      for (const [, y] of s.points) { lo = Math.min(lo, y); hi = Math.max(hi, y); }
    }
    if (!isFinite(lo)) return null;
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
    return [Math.max(0, lo - pad), hi + pad];
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = FONT;
    // The y ticks first: the margins grow to fit their widest label.
    const yTicks = {};
    const margin = { left: 44, right: 10 };
    for (const axis of ['left', 'right']) {
      const r = this.range(axis);
      if (!r) continue;
      const yt = niceTicks(r[0], r[1], 4);
      yTicks[axis] = { r, ticks: yt.ticks, labels: yt.ticks.map((t) => fmt(t, yt.step)) };
      const widest = Math.max(...yTicks[axis].labels.map((l) => g.measureText(l).width));
      margin[axis] = Math.max(axis === 'left' ? 44 : 10, Math.ceil(widest) + 8);
    }
    if (this.series.some((s) => s.axis === 'right')) margin.right = Math.max(margin.right, 44);
    const box = { l: margin.left, r: w - margin.right, t: 22, b: h - 24 };

    let xmax = 0;
    for (const s of this.series) for (const [x] of s.points) xmax = Math.max(xmax, x);
    xmax = Math.max(xmax, 1);
    const X = (x) => box.l + (x / xmax) * (box.r - box.l);
    const xt = niceTicks(0, xmax, Math.max(2, Math.floor((box.r - box.l) / 70)));
    g.fillStyle = AXIS;
    g.textAlign = 'center';
    for (const t of xt.ticks) g.fillText(fmt(t, xt.step), X(t), box.b + 14);
    g.textAlign = 'right';
    g.fillText(this.xLabel, box.r, h - 1);

    const axes = {};
    for (const axis of ['left', 'right']) {
      if (!yTicks[axis]) continue;
      const { r, ticks, labels } = yTicks[axis];
      const Y = (y) => box.b - ((y - r[0]) / (r[1] - r[0])) * (box.b - box.t);
      axes[axis] = Y;
      g.textAlign = axis === 'left' ? 'right' : 'left';
      for (const [i, t] of ticks.entries()) {
        g.fillStyle = AXIS;
        g.fillText(labels[i], axis === 'left' ? box.l - 4 : box.r + 4, Y(t) + 4);
        if (axis === 'left') { g.fillStyle = GRID; g.fillRect(box.l, Math.round(Y(t)), box.r - box.l, 1); }
      }
    }
    g.strokeStyle = AXIS;
    g.strokeRect(box.l + 0.5, box.t + 0.5, box.r - box.l, box.b - box.t);
    if (this.empty && !this.series.some((s) => s.points.length)) {
      g.fillStyle = AXIS;
      g.textAlign = 'center';
      g.fillText(this.empty, (box.l + box.r) / 2, (box.t + box.b) / 2);
    }

    let legendX = box.l;
    for (const s of this.series) {
      const Y = axes[s.axis || 'left'];
      g.fillStyle = s.color;
      g.textAlign = 'left';
      g.fillRect(legendX, 8, 10, 3);
      g.fillText(s.label, legendX + 14, 13);
      legendX += g.measureText(s.label).width + 30;
      if (!Y || !s.points.length) continue;
      g.strokeStyle = s.color;
      g.lineWidth = 1.6;
      g.beginPath();
      s.points.forEach(([x, y], i) => (i ? g.lineTo(X(x), Y(y)) : g.moveTo(X(x), Y(y))));
      g.stroke();
      if (s.points.length < 40) for (const [x, y] of s.points) g.fillRect(X(x) - 2, Y(y) - 2, 4, 4);
    }
  }
}
