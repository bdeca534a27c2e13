// The page: controls, charts and views over the training worker (worker.js).
// The worker owns the model; the page only sends requests and draws replies.
import { LineChart } from './charts.js';
import { DrawPad, paintDigit } from './drawing.js';

const $ = (id) => document.getElementById(id);
const LOSS_EVERY = 10;      // batches per point of the loss chart
const LOSS_SMOOTHING = 0.05; // weight of a new batch in the moving average
const SAMPLES_PER_S_WINDOW = 1.0;
// Epochs take ~0.1 s here, and redrawing the weight images, confusion matrix and
// gallery after each one kept the page's main thread ~60% busy, competing with
// the worker on a 2-core machine. They redraw at most this often (the last
// state always lands); the epoch table still gets every epoch's numbers.
const HEAVY_VIEWS_EVERY_MS = 250;

// fn(...args) now if `ms` have passed since its last run, otherwise once when
// they have, with the newest args (earlier pending ones are dropped). cancel()
// drops a pending call (its state is no longer the page's).
function throttled(fn, ms) {
  let last = -Infinity, timer = null, pending = null;
  const run = () => { timer = null; last = performance.now(); const args = pending; pending = null; fn(...args); };
  const call = (...args) => {
    pending = args;
    if (timer) return;
    const wait = last + ms - performance.now();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
  call.cancel = () => { clearTimeout(timer); timer = null; pending = null; };
  return call;
}

const worker = new Worker('worker.js', { type: 'module' });
const send = (type, body = {}, transfer = []) => worker.postMessage({ type, ...body }, transfer);

const lossChart = new LineChart($('loss-chart'), {
  xLabel: 'epochs',
  empty: 'Press Start: the loss appears here',
  series: [{ label: 'training loss (smoothed)', color: '#2463eb' }],
});
const validChart = new LineChart($('valid-chart'), {
  xLabel: 'epoch',
  empty: 'filled in after each epoch',
  series: [{ label: 'validation loss', color: '#d97706' },
           { label: 'validation accuracy', color: '#059669', axis: 'right' }],
});

// ---- state shown on the page -------------------------------------------------
// listening: whether training reports are wanted (false from Reset until the next
// Start, so reports already on their way from the worker are dropped).
// actsFrom: whose layers "What the network sees" shows: 'drawing', 'test' (the
// looked-up test image) or null (nothing yet, or the drawing was cleared).
// inspected: the index of the test image asked for in "Look up a test image"
// (#inspect-pred's data-index is set only while its answer is the current model's).
// catalog: the runtime's models ({name, description, parameters, optimizer, lr,
// ...}, models/zoo's model_names()) as the worker reports them.
const ui = { state: 'loading', listening: false, actsFrom: null, inspected: null, galleryLabels: [],
             galleryFigures: [], epochRows: new Map(), catalog: [] };
const curve = { smoothed: null, batchesSeen: 0, batchesPerEpoch: 1 };
const rate = { samples: 0, seconds: 0 };
const epochClock = { compute: 0, wallStart: 0 };

function setStatus(text) { $('status').textContent = text; }
function showError(message) {
  $('error').hidden = false;
  $('error').textContent = message;
}
// Messages about the model before an action that changes it (start, reset, pick, load).
function clearMessages() {
  $('error').hidden = true;
  $('model-msg').textContent = '';
  $('model-msg').className = '';
}

function setState(state) {
  ui.state = state;
  const ready = state !== 'loading' && state !== 'loading-model';
  $('model').disabled = !ready;
  $('build').disabled = !ready;
  $('printout-file').disabled = !ready;
  $('start').disabled = !ready;
  $('continue').disabled = !ready;
  $('reset').disabled = !ready;
  $('save').disabled = !ready;
  $('load').disabled = !ready;
  $('pause').disabled = !(state === 'training' || state === 'paused');
  $('pause').textContent = state === 'paused' ? 'Resume' : 'Pause';
  const words = { training: 'Training…', paused: 'Paused.', stopped: 'Stopped.',
                  reset: 'Model reset to fresh weights from the seed.', ready: 'Ready.' };
  if (state === 'done') return setStatus(finishedText());
  if (words[state]) setStatus(words[state]);
}

// What the run changed: the test accuracy now and before Start (the pretrained
// model scores the same as a default run, which is otherwise easy to miss).
function finishedText() {
  const epochs = ui.epochRows.size;
  const now = $('test-acc').textContent;
  const before = ui.accuracyBefore;
  return `Training finished: ${epochs} epoch${epochs === 1 ? '' : 's'}, test accuracy ${now}` +
         (before && before !== '–' ? ` (before Start: ${before}${ui.modelBefore ? ` ${ui.modelBefore}` : ''}).` : '.');
}

// ---- the first layer's weights, red positive / blue negative ----------------------
// Logistic: each class's 784 weights as a 28x28 image; MLP: each hidden unit's;
// CNN: each first-layer filter (k x k). The canvases are made once per model and
// keep their ImageData: redrawn several times a second while training.
const weightView = { key: '', canvases: [], images: [] };

function buildWeightView(shape) {
  const conv = shape.length === 4;
  const units = shape[0];
  // A filter's k x k (its first input channel's); a unit's inputs as a square
  // image if they make one (784: 28x28), else as one row.
  const side = Math.round(Math.sqrt(shape[1]));
  const [width, height] = conv ? [shape[3], shape[2]] : side * side === shape[1] ? [side, side] : [shape[1], 1];
  weightView.key = shape.join('x');
  weightView.canvases = [];
  weightView.images = [];
  $('weights').textContent = '';
  $('weights').className = `weights${conv ? ' filters' : units > 16 ? ' many' : ''}`;
  const kind = conv ? 'filter' : ui.model?.architecture === 'logistic' ? 'class' : 'unit';
  for (let u = 0; u < units; u++) {
    const fig = document.createElement('figure');
    const cv = document.createElement('canvas');
    cv.width = width;
    cv.height = height;
    cv.setAttribute('role', 'img');
    cv.setAttribute('aria-label', `weights of ${kind} ${u}`);
    fig.append(cv, Object.assign(document.createElement('figcaption'), { textContent: String(u) }));
    $('weights').append(fig);
    weightView.canvases.push(cv);
  }
  $('h-weights').textContent = conv ? `First-layer filters (${units} of ${height}×${width})`
    : kind === 'class' ? 'Weights' : `First-layer units (${units})`;
  $('weights-hint').innerHTML = conv
    ? 'Each convolution filter of the first layer, as it slides over the image: <span class="pos">red</span> weights respond to ink, <span class="neg">blue</span> ones to its absence.'
    : kind === 'class'
      ? 'Each class\'s 784 weights as a 28×28 image: <span class="pos">red</span> pixels add to the class score, <span class="neg">blue</span> ones take away.'
      : `Each unit's ${shape[1]} input weights${height > 1 ? ` as a ${height}×${width} image` : ''}: the patterns it looks for (<span class="pos">red</span> +, <span class="neg">blue</span> −).`;
}

// A network whose first learning layer is neither a Linear nor a Conv2d.
function noWeightView() {
  weightView.key = 'none';
  $('weights').textContent = '';
  $('h-weights').textContent = 'Weights';
  $('weights-hint').textContent = 'This network has no Linear or Conv2d layer whose weights could be drawn.';
}

function drawWeights(layer) {
  if (!layer) return noWeightView();
  const { shape, data } = layer;
  if (shape.join('x') !== weightView.key) buildWeightView(shape);
  const per = data.length / shape[0];
  weightView.canvases.forEach((cv, u) => {
    const n = cv.width * cv.height;  // a filter's first input channel
    const row = data.subarray(u * per, u * per + n);
    let scale = 1e-6;
    for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(row[i]));
    const g = cv.getContext('2d');
    weightView.images[u] ||= g.createImageData(cv.width, cv.height);
    const px = weightView.images[u].data;
    for (let i = 0, o = 0; i < n; i++, o += 4) {
      const t = row[i] / scale;  // -1..1: red positive, blue negative, white 0
      const a = Math.round(255 * (1 - Math.abs(t)));
      px[o] = t >= 0 ? 255 : a;
      px[o + 1] = a;
      px[o + 2] = t >= 0 ? a : 255;
      px[o + 3] = 255;
    }
    g.putImageData(weightView.images[u], 0, 0);
  });
}

// ---- what the network sees: each layer's output for one image ---------------------
// Every layer of any Sequential, in stages: a layer followed by an elementwise one
// (BatchNorm, ReLU) is shown once, after it (a convolution normalised and
// rectified); reshapes (Flatten, Unflatten, View) and Dropout (the identity when
// predicting) join the stage before them. Maps (C, H, W) as images; units (N) as a
// strip of squares. Canvases are reused while the stages keep their shapes.
const actsView = { key: '', rows: [] };
const ELEMENTWISE = new Set(['ReLU', 'BatchNorm1d', 'BatchNorm2d']);
const PASS_THROUGH = new Set(['Flatten', 'Unflatten', 'View', 'Dropout']);

// [{...the stage's last layer, names, types}]: the logits (the probabilities
// panel shows them) and what precedes only them are left out.
function shownLayers(layers) {
  const stages = [];
  let names = [], types = [], shown = null;  // shown: the stage's last layer that computes
  layers.forEach((l, i) => {
    names.push(l.name);
    types.push(l.type);
    if (!PASS_THROUGH.has(l.type)) shown = l;
    const next = layers[i + 1];
    if (!next) return;
    if (ELEMENTWISE.has(next.type) || PASS_THROUGH.has(next.type)) return;  // the stage goes on
    if (shown) stages.push({ ...shown, names, types });  // (else a reshape of the input)
    names = [];
    types = [];
    shown = null;
  });
  return stages;
}

function stageTitle(l) {
  const names = l.names.length > 1 ? `${l.names[0]}–${l.names[l.names.length - 1]}` : l.names[0];
  const what = l.types.filter((t) => !PASS_THROUGH.has(t) || l.types.length === 1).join(' → ');
  return l.shape.length === 3 ? `${names} ${what}: ${l.shape[0]} maps of ${l.shape[1]}×${l.shape[2]}`
                              : `${names} ${what}: ${l.shape.reduce((a, b) => a * b, 1)} units`;
}

// No layers shown: the hint says why, for the model on the page now.
function clearActivations() {
  actsView.key = '';
  $('acts').textContent = '';
  $('acts-hint').textContent = ui.model && !ui.model.hasLayers
    ? `The ${ui.model.architecture} model has no hidden layers: its weights are the whole story.`
    : 'Draw a digit or look up a test image: each layer\'s output for it appears here.';
}

function drawActivations(layers) {
  if (!layers || layers.length === 0) return clearActivations();
  const shown = shownLayers(layers);
  if (shown.length === 0) return clearActivations();
  const key = shown.map((l) => `${l.names.join(',')}:${l.shape.join('x')}`).join('|');
  if (key !== actsView.key) {
    actsView.key = key;
    $('acts').textContent = '';
    actsView.rows = shown.map((l) => {
      const maps = l.shape.length === 3;
      const count = maps ? l.shape[0] : l.shape.reduce((a, b) => a * b, 1);
      const box = document.createElement('div');
      box.className = 'layer';
      const title = stageTitle(l);
      const grid = document.createElement('div');
      grid.className = maps ? 'maps' : 'maps units';
      const canvases = [];
      for (let c = 0; c < count; c++) {
        const cv = document.createElement('canvas');
        cv.width = maps ? l.shape[2] : 1;
        cv.height = maps ? l.shape[1] : 1;
        cv.setAttribute('role', 'img');
        cv.setAttribute('aria-label', `${l.name} ${maps ? 'map' : 'unit'} ${c}`);
        grid.append(cv);
        canvases.push(cv);
      }
      box.append(Object.assign(document.createElement('div'), { textContent: title }), grid);
      $('acts').append(box);
      return { canvases, maps };
    });
    $('acts-hint').innerHTML = 'Each layer\'s output for <span id="acts-source"></span>: brighter is larger (each row scaled to its own largest value; negative values, before a ReLU, are black).';
  }
  shown.forEach((l, r) => {
    const { canvases } = actsView.rows[r];
    let max = 1e-6;
    for (let i = 0; i < l.data.length; i++) max = Math.max(max, l.data[i]);
    const per = l.data.length / canvases.length;
    canvases.forEach((cv, c) => {
      const g = cv.getContext('2d');
      const img = g.createImageData(cv.width, cv.height);
      for (let i = 0; i < per; i++) {
        const v = Math.max(0, Math.round(255 * l.data[c * per + i] / max));
        img.data[4 * i] = v; img.data[4 * i + 1] = v; img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
      }
      g.putImageData(img, 0, 0);
    });
  });
}

function setActsSource(text) {
  ui.actsSource = text;
  if ($('acts-source')) $('acts-source').textContent = text;
}

// ---- confusion matrix ------------------------------------------------------------
// The table is built once; after each epoch only the counts and colours change
// (rebuilding 120 elements per epoch cost a style and layout pass each time).
let confusionCells = null;
function buildConfusion() {
  const table = $('confusion');
  const head = table.createTHead().insertRow();
  head.append(Object.assign(document.createElement('th'), { textContent: '' }));
  for (let p = 0; p < 10; p++) head.append(Object.assign(document.createElement('th'), { textContent: p, scope: 'col' }));
  const body = table.createTBody();
  confusionCells = [];
  for (let t = 0; t < 10; t++) {
    const tr = body.insertRow();
    tr.append(Object.assign(document.createElement('th'), { textContent: t, scope: 'row' }));
    for (let p = 0; p < 10; p++) confusionCells.push(tr.insertCell());
  }
}

// counts null: blank (no results for the model yet).
function drawConfusion(counts) {
  if (!confusionCells) buildConfusion();
  if (!counts) {
    for (const td of confusionCells) { td.textContent = ''; td.dataset.bg = ''; td.style.background = ''; }
    return;
  }
  let max = 1;
  for (let i = 0; i < 100; i++) if (i % 11) max = Math.max(max, counts[i]);
  for (let i = 0; i < 100; i++) {
    const td = confusionCells[i];
    const n = counts[i];
    const diagonal = i % 11 === 0;
    const strength = diagonal ? 0.25 : Math.min(1, n / max);
    const text = String(n);
    const background = diagonal ? `rgba(5, 150, 105, ${strength})` : `rgba(212, 60, 60, ${(strength * 0.8).toFixed(3)})`;
    if (td.textContent !== text) td.textContent = text;
    if (td.dataset.bg !== background) { td.dataset.bg = background; td.style.background = background; }
  }
}

// ---- gallery ---------------------------------------------------------------------
function buildGallery(images, labels) {
  ui.galleryLabels = labels;
  $('gallery').textContent = '';
  ui.galleryFigures = images.map((px, i) => {
    const fig = document.createElement('figure');
    const cv = document.createElement('canvas');
    cv.width = cv.height = 28;
    paintDigit(cv, px);
    const cap = document.createElement('figcaption');
    fig.append(cv, cap);
    fig.title = `test image ${i}, label ${labels[i]}`;
    $('gallery').append(fig);
    return fig;
  });
}

// Only figures whose guess changed are touched; predicted null takes the guesses off.
function markGallery(predicted) {
  ui.galleryFigures.forEach((fig, i) => {
    if (!predicted) {
      delete fig.dataset.guess;
      fig.classList.remove('wrong');
      fig.lastChild.textContent = '';
      fig.removeAttribute('aria-label');
      return;
    }
    if (fig.dataset.guess === String(predicted[i])) return;
    fig.dataset.guess = predicted[i];
    const wrong = predicted[i] !== ui.galleryLabels[i];
    fig.classList.toggle('wrong', wrong);
    fig.lastChild.textContent = wrong ? `${predicted[i]}✗` : String(predicted[i]);
    fig.setAttribute('aria-label', `test image ${i}: label ${ui.galleryLabels[i]}, guess ${predicted[i]}${wrong ? ', wrong' : ''}`);
  });
}

// ---- probabilities bar chart -------------------------------------------------------
const probRows = [];
for (let c = 0; c < 10; c++) {
  const label = Object.assign(document.createElement('span'), { textContent: c });
  const bar = document.createElement('div');
  bar.className = 'bar';
  const fill = document.createElement('span');
  bar.append(fill);
  const value = Object.assign(document.createElement('span'), { className: 'prob', textContent: '–' });
  value.dataset.digit = c;
  $('probs').append(label, bar, value);
  probRows.push({ label, fill, value });
}

function showProbs(probs, predicted) {
  probs.forEach((p, c) => {
    probRows[c].fill.style.width = `${(p * 100).toFixed(1)}%`;
    probRows[c].value.textContent = p.toFixed(3);
    probRows[c].value.dataset.p = p;
    probRows[c].label.classList.toggle('top', c === predicted);
  });
  $('draw-pred').textContent = predicted;
}

// Live prediction of the drawing: one request in flight; a change while it is
// out is sent when the answer comes back. Answers to requests up to erasedUpTo
// are for a drawing since cleared, and dropped.
const drawState = { inFlight: false, dirty: false, seq: 0, erasedUpTo: 0 };
const pad = new DrawPad($('draw'), () => {
  if (ui.state === 'loading') return;  // (the pad clears itself as it is made)
  if (!pad.empty) ui.actsFrom = 'drawing';
  requestPrediction();
});

function requestPrediction() {
  if (ui.state === 'loading') return;
  const pixels = pad.toMnist();
  if (!pixels) {
    drawState.erasedUpTo = drawState.seq;
    drawState.dirty = false;
    probRows.forEach((r) => {
      r.fill.style.width = '0';
      r.value.textContent = '–';
      delete r.value.dataset.p;
      r.label.classList.remove('top');
    });
    $('draw-pred').textContent = '–';
    $('draw-small').getContext('2d').clearRect(0, 0, 28, 28);
    if (ui.actsFrom === 'drawing') {
      ui.actsFrom = null;
      clearActivations();
    }
    return;
  }
  if (drawState.inFlight) { drawState.dirty = true; return; }
  paintDigit($('draw-small'), pixels);
  drawState.inFlight = true;
  drawState.dirty = false;
  send('predict', { id: ++drawState.seq, pixels, layers: true }, [pixels.buffer]);
}

// After the model changed: the drawing and the looked-up test image are read again.
function refreshPredictions() {
  requestPrediction();
  if (ui.inspected !== null) lookUp(ui.inspected);
}

function lookUp(index) {
  ui.inspected = index;
  delete $('inspect-pred').dataset.index;  // until this model's answer is in
  send('testImage', { index });
}

// The test-set views (accuracy, confusion matrix, gallery's guesses) until the
// model's results arrive; note says what the model is.
function clearTestViews(note) {
  drawTestViews.cancel();
  $('test-acc').textContent = '…';
  delete $('test-acc').dataset.epoch;
  $('test-acc-note').textContent = note;
  drawConfusion(null);
  markGallery(null);
}
$('clear').addEventListener('click', () => pad.clear());

// ---- controls ---------------------------------------------------------------------
function readOptions() {
  const num = (id) => Number($(id).value);
  return { lr: num('lr'), batchSize: num('batch'), epochs: num('epochs'), momentum: num('momentum'), seed: num('seed'),
           lrGamma: num('lr-gamma'), optimizer: $('optimizer').value, schedule: $('schedule').value };
}

// Momentum is SGD's (Adam's betas are PyTorch's defaults); the per-epoch factor is StepLR's.
function syncOptionFields() {
  $('momentum').disabled = $('optimizer').value !== 'sgd';
  $('lr-gamma').disabled = $('schedule').value !== 'step';
}
$('optimizer').addEventListener('change', syncOptionFields);
$('schedule').addEventListener('change', syncOptionFields);

const SCHEDULE_WORDS = { step: 'a constant rate', onecycle: 'OneCycleLR over the run (peak at the lr)',
                         cosine: 'CosineAnnealingLR over the run' };
const OPTIMIZER_WORDS = { sgd: 'SGD', adam: 'Adam', adamw: 'AdamW' };

// The model's training defaults into the fields, and said in words.
function applyDefaults(d) {
  $('optimizer').value = d.optimizer;
  $('schedule').value = d.schedule;
  $('lr').value = Number(d.lr.toPrecision(6));
  $('momentum').value = Number(d.momentum.toPrecision(6));
  $('lr-gamma').value = Number(d.lrGamma.toPrecision(6));
  $('epochs').value = d.epochs;
  syncOptionFields();
  const rate = d.schedule === 'step' && d.lrGamma !== 1 ? `lr × ${d.lrGamma} per epoch` : SCHEDULE_WORDS[d.schedule] ?? d.schedule;
  $('defaults-note').textContent = `This model's defaults: ${OPTIMIZER_WORDS[d.optimizer] ?? d.optimizer}, lr ${Number(d.lr.toPrecision(6))}` +
    `${d.optimizer === 'sgd' && d.momentum ? `, momentum ${Number(d.momentum.toPrecision(6))}` : ''}, ${rate}, ` +
    `${d.epochs} epoch${d.epochs === 1 ? '' : 's'}.`;
}

// The model picker's value for a model: its name, or Custom… for a printout's network.
function pickerValue(info) {
  return info.architecture === 'sequential' ? 'custom' : info.architecture;
}

function clearHistory() {
  lossChart.clear();
  validChart.clear();
  curve.smoothed = null;
  curve.batchesSeen = 0;
  ui.epochRows.clear();
  $('epoch-table').tBodies[0].textContent = '';
  $('epoch-progress').value = 0;
  $('epoch-now').textContent = '–';
  $('rate').textContent = '–';
  rate.samples = rate.seconds = 0;
}

// Start: fresh weights from the seed; Continue: the model's weights as they are.
function startRun(fresh) {
  if (!$('controls').reportValidity()) return;
  clearMessages();
  clearHistory();
  ui.listening = true;
  epochClock.compute = 0;
  epochClock.wallStart = performance.now();
  ui.accuracyBefore = $('test-acc').textContent;
  ui.modelBefore = $('test-acc-note').textContent;
  send('start', { ...readOptions(), fresh });
  if (fresh) {
    // Start trains fresh weights: the old model's test results no longer apply.
    clearTestViews('(fresh weights)');
    refreshPredictions();
  }
}
$('controls').addEventListener('submit', (e) => {
  e.preventDefault();
  startRun(true);
});
$('continue').addEventListener('click', () => startRun(false));

// A network given as a printout: built (fresh weights) by the runtime, or its
// one-line error, with the model on the page unchanged.
function buildNetwork(text) {
  clearMessages();
  $('custom-msg').textContent = '';
  $('custom-msg').className = '';
  // What the page goes back to if the runtime refuses the printout.
  ui.pendingCustom = { state: ui.state, status: $('status').textContent };
  setState('loading-model');
  setStatus('Building your network…');
  send('setModel', { architecture: text, seed: readOptions().seed });
}
$('model').addEventListener('change', () => {
  if ($('model').value === 'custom') {
    // The printout box; the model changes when the network is built.
    $('custom-box').hidden = false;
    if (ui.model?.printout && !$('printout').value.trim()) $('printout').value = ui.model.printout;
    $('printout').focus();
    return;
  }
  $('custom-box').hidden = true;
  ui.listening = false;
  ui.pendingCustom = null;
  clearHistory();
  clearMessages();
  setState('loading-model');
  setStatus(`Loading ${$('model').value}…`);
  send('setModel', { architecture: $('model').value, seed: readOptions().seed });
});
$('build').addEventListener('click', () => buildNetwork($('printout').value));
$('printout-file').addEventListener('change', async () => {
  const file = $('printout-file').files[0];
  if (!file) return;
  $('printout').value = await file.text();
  $('printout-file').value = '';
  buildNetwork($('printout').value);
});
$('pause').addEventListener('click', () => send(ui.state === 'paused' ? 'resume' : 'pause'));
$('reset').addEventListener('click', () => {
  ui.listening = false;
  clearHistory();
  clearMessages();
  clearTestViews('(fresh weights)');
  send('reset', { seed: readOptions().seed });
});

$('save').addEventListener('click', () => send('save'));
$('load').addEventListener('change', async () => {
  const file = $('load').files[0];
  if (!file) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  $('load').value = '';
  clearMessages();
  // A printout (a .txt holding print(model)): that network, with fresh weights.
  const head = new TextDecoder().decode(bytes.subarray(0, 64)).trimStart();
  if (head.startsWith('Sequential(')) {
    $('model').value = 'custom';
    $('custom-box').hidden = false;
    $('printout').value = new TextDecoder().decode(bytes);
    return buildNetwork($('printout').value);
  }
  send('load', { bytes, name: file.name }, [bytes.buffer]);
});

$('inspect-form').addEventListener('submit', (e) => {
  e.preventDefault();
  ui.actsFrom = 'test';
  lookUp(Number($('inspect-index').value));
});

// ---- epoch table ---------------------------------------------------------------------
function epochRow(epoch) {
  if (!ui.epochRows.has(epoch)) {
    const tr = $('epoch-table').tBodies[0].insertRow();
    tr.dataset.epoch = epoch;
    for (let i = 0; i < 6; i++) tr.insertCell();
    tr.cells[0].textContent = epoch;
    ui.epochRows.set(epoch, tr);
  }
  return ui.epochRows.get(epoch);
}

const drawWeightsThrottled = throttled(drawWeights, HEAVY_VIEWS_EVERY_MS);

const drawTestViews = throttled((confusion, predicted) => {
  drawConfusion(confusion);
  markGallery(predicted);
}, HEAVY_VIEWS_EVERY_MS);

// ---- messages from the worker ------------------------------------------------------
const onMessage = {
  // The runtime's models and options (models/zoo, runtime/schedule): the pickers.
  catalog({ models, options }) {
    ui.catalog = models;
    const fill = (select, items) => {
      select.textContent = '';
      for (const [value, text] of items) select.append(Object.assign(document.createElement('option'), { value, textContent: text }));
    };
    fill($('model'), [...models.map((m) => [m.name, `${m.name}: ${m.description}` +
      (m.parameters ? `, ${m.parameters.toLocaleString('en')} parameters` : '') +
      ` (${OPTIMIZER_WORDS[m.optimizer] ?? m.optimizer}${m.schedule === 'step' ? '' : ` + ${m.schedule}`})`]),
                      ['custom', 'Custom… (paste what PyTorch prints for an nn.Sequential)']]);
    fill($('optimizer'), options.optimizers.map((o) => [o, OPTIMIZER_WORDS[o] ?? o]));
    fill($('schedule'), options.schedules.map((o) => [o, { step: 'StepLR (× per epoch)', onecycle: 'OneCycleLR', cosine: 'CosineAnnealingLR' }[o] ?? o]));
    if (ui.model) $('model').value = pickerValue(ui.model);
  },
  loading({ loaded, total }) {
    if (total) $('load-progress').value = Math.min(1, loaded / total);
    else $('load-progress').removeAttribute('value');  // indeterminate until the sizes are known
    $('load-text').textContent = total ? `${(loaded / 1e6).toFixed(1)} / ${(total / 1e6).toFixed(1)} MB`
                                       : `${(loaded / 1e6).toFixed(1)} MB`;
  },
  ready({ train, valid, test, kernels, threads, pretrained }) {
    $('loading').hidden = true;
    setState('ready');
    document.body.dataset.threads = threads;
    document.body.dataset.kernels = kernels;
    setStatus(`Ready: ${train} training, ${valid} validation and ${test} test images; kernels ${kernels}, ` +
              `${threads} thread${threads > 1 ? 's' : ''}. ` +
              (pretrained ? 'A pretrained model is loaded: draw a digit, or press Start to train your own.' : ''));
    $('test-acc-note').textContent = pretrained ? '(pretrained model)' : '';
  },
  state({ state }) { setState(state); },
  progress(r) {
    if (!ui.listening) return;
    curve.batchesPerEpoch = r.batches;
    for (const loss of r.losses) {
      curve.smoothed = curve.smoothed === null ? loss : curve.smoothed + LOSS_SMOOTHING * (loss - curve.smoothed);
      curve.batchesSeen += 1;
      if (curve.batchesSeen % LOSS_EVERY === 0) lossChart.add(0, curve.batchesSeen / r.batches, curve.smoothed);
    }
    epochClock.compute += r.seconds;
    rate.samples += r.samples;
    rate.seconds += r.seconds;
    if (rate.seconds >= SAMPLES_PER_S_WINDOW || r.epochEnd) {
      $('rate').textContent = Math.round(rate.samples / rate.seconds).toLocaleString('en');
      rate.samples = rate.seconds = 0;
    }
    $('epoch-now').textContent = r.epoch;
    $('epoch-progress').value = r.batch / r.batches;
    if (r.epochEnd) {
      const tr = epochRow(r.epoch);
      tr.cells[1].textContent = r.trainLoss.toFixed(4);
      tr.cells[2].textContent = r.validLoss.toFixed(4);
      tr.cells[3].textContent = r.validAcc.toFixed(4);
      validChart.add(0, r.epoch, r.validLoss);
      validChart.add(1, r.epoch, r.validAcc);
      // Compute time (the worker's slices) and wall time (with messages and validation).
      const now = performance.now();
      tr.cells[5].textContent = `${(epochClock.compute * 1000).toFixed(0)} ms`;
      tr.dataset.computeMs = (epochClock.compute * 1000).toFixed(1);
      tr.dataset.wallMs = (now - epochClock.wallStart).toFixed(1);
      epochClock.compute = 0;
      epochClock.wallStart = now;
    }
  },
  // The model changed (picked, loaded from a file, or the first one).
  model({ info, pretrained, file, switched }) {
    if (ui.pendingCustom) {  // a run in progress ended with the old model
      ui.listening = false;
      clearHistory();
    }
    ui.model = info;
    ui.pendingCustom = null;
    $('model').value = pickerValue(info);
    $('custom-box').hidden = info.architecture !== 'sequential';
    if (info.printout) $('printout').value = info.printout;
    $('custom-msg').textContent = '';
    $('model-sub').textContent = info.description;
    $('model-name').textContent = info.description;
    $('param-count').textContent = info.parameters.toLocaleString('en');
    $('layers').textContent = info.layers;
    $('layers-box').open = info.architecture === 'sequential' || $('layers-box').open;
    // A picked or built model brings its usual options, as does a file for another
    // model; a file for the same model keeps the user's.
    if (!file || switched) applyDefaults(info);
    // Until this model's test results arrive.
    clearTestViews(file ? `(${file})` : pretrained ? '(pretrained model)' : '(fresh weights)');
    if (file) clearHistory();  // the curves were another model's
    weightView.key = '';
    clearActivations();
    delete $('inspect-pred').dataset.index;  // the answer shown is the last model's
    if (ui.state === 'loading-model') setState('ready');
    setStatus(file ? `Loaded ${file}: ${info.description}.`
      : `${info.description}: ${pretrained ? 'pretrained weights loaded (trained by sgdx train); draw a digit, or press Start to train your own.' : 'fresh weights; press Start to train it.'}`);
    // The drawing and looked-up test image are read again when the test results come (next message).
  },
  weights({ layer }) { drawWeightsThrottled(layer); },
  gallery({ images, labels }) { buildGallery(images, labels); },
  test({ epoch, accuracy, confusion, predicted }) {
    if (epoch && !ui.listening) return;
    $('test-acc').textContent = accuracy.toFixed(4);
    $('test-acc').dataset.epoch = epoch;
    $('test-acc-note').textContent = epoch ? `(after epoch ${epoch})` : $('test-acc-note').textContent;
    if (epoch) epochRow(epoch).cells[4].textContent = accuracy.toFixed(4);
    drawTestViews(confusion, predicted);
    refreshPredictions();
  },
  memory({ epoch, wasmBytes }) {
    if (!ui.listening) return;
    const tr = epochRow(epoch);
    tr.dataset.wasmBytes = wasmBytes;
  },
  prediction({ id, probs, predicted, error, layers }) {
    drawState.inFlight = false;
    if (id > drawState.erasedUpTo) {
      if (error) return showError(error);
      showProbs(probs, predicted);
      if (ui.actsFrom === 'drawing') {
        drawActivations(layers);
        setActsSource('the digit you drew');
      }
    }
    if (drawState.dirty) requestPrediction();
  },
  testImage({ error, index, pixels, label, probs, predicted, layers }) {
    if (error) {
      ui.inspected = null;  // not asked again after each epoch
      return showError(error);
    }
    if (ui.actsFrom === 'test') {
      drawActivations(layers);
      setActsSource(`test image ${index} (label ${label})`);
    }
    paintDigit($('inspect-img'), pixels);
    $('inspect-label').textContent = label;
    $('inspect-pred').textContent = predicted;
    $('inspect-pred').dataset.index = index;
    $('inspect-pred').dataset.p = probs[predicted];
    $('inspect-prob').textContent = `(p = ${probs[predicted].toFixed(4)})`;
  },
  saved({ bytes }) {
    const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
    const file = `mnist_${ui.model?.architecture ?? 'model'}.safetensors`;
    const a = Object.assign(document.createElement('a'), { href: url, download: file });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    $('model-msg').textContent = `Saved ${file} (${bytes.length.toLocaleString('en')} bytes).`;
    $('model-msg').className = '';
  },
  loaded({ name, switched, description }) {
    $('model-msg').textContent = switched ? `Loaded ${name}: the page switched to its model, ${description}.`
                                          : `Loaded ${name}.`;
    $('model-msg').className = '';
    $('test-acc-note').textContent = `(${name})`;
  },
  loadFailed({ message }) {
    $('model-msg').textContent = `Could not load the model: ${message}. The current model is kept.`;
    $('model-msg').className = 'error';
  },
  // A network the runtime could not build (its one-line message): the model, the
  // picker and the status stay as they were.
  modelFailed({ message }) {
    const custom = ui.pendingCustom;
    ui.pendingCustom = null;
    if (custom) {
      setState(custom.state);
      setStatus(custom.status);
      $('custom-msg').textContent = message;
      $('custom-msg').className = 'error';
    } else {
      if (ui.state === 'loading-model') setState('ready');
      showError(message);
      if (ui.model) $('model').value = pickerValue(ui.model);
    }
  },
  error({ message }) { showError(message); },
};

worker.onmessage = (e) => onMessage[e.data.type](e.data);
worker.onerror = (e) => showError(`The training worker failed: ${e.message || 'could not start'}`);
setState('loading');
// `?threads=N` asks for N training threads (the worker gives 1 unless the page is
// cross-origin isolated); without it, the worker's choice. `?relaxed=0` keeps the
// SIMD128 kernels where the browser would run the relaxed-SIMD ones.
const pageParams = new URLSearchParams(location.search);
const askedThreads = Number(pageParams.get('threads'));
send('init', { ...(Number.isInteger(askedThreads) && askedThreads >= 1 ? { threads: askedThreads } : {}),
               relaxed: pageParams.get('relaxed') !== '0' });
