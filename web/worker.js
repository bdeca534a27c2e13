// The training worker: loads the wasm runtime and MNIST, then trains in slices of
// SLICE_MS so that messages from the page (pause, predict, load) are handled
// between slices. Everything sent to the page is a plain object (see app.js).

// Threads: the runtime's layers split each batch over THREADS threads when the page
// is cross-origin isolated (SharedArrayBuffer: the demo server sends COOP/COEP),
// with the threaded build of the runtime (sgdx_web_mt); otherwise one thread with
// the single-thread build (sgdx_web), which needs no isolation. The page may ask
// for another count (app.js passes `?threads=N` from its address on).
const THREADS = 2;
// The caller and the threaded build's pool of pre-started wasm workers
// (PTHREAD_POOL_SIZE 2; the runtime cannot wait for a worker to start later).
const MAX_THREADS = 3;
function threadsFor(wanted) {
  if (!self.crossOriginIsolated || typeof SharedArrayBuffer !== 'function') return 1;
  if (Number.isInteger(wanted) && wanted >= 1) return Math.min(wanted, MAX_THREADS);
  return Math.max(1, Math.min(THREADS, navigator.hardwareConcurrency || THREADS));
}

// Each slice's report makes the page redraw; on a machine with few cores that
// work competes with training (25 ms slices and weights every 150 ms measured
// 20-40% slower epochs here than 200 ms slices). 50 ms keeps predictions and
// pause prompt while training, the charts smooth, and the page's share small.
// With the runtime on every core the page's redraws take from training itself:
// slices twice as long then (the page's wall over the worker alone: 1.26x -> ?).
const SLICE_MS = 50;
const sliceMs = () => (runtimeThreads > 1 ? 2 * SLICE_MS : SLICE_MS);
const WEIGHTS_EVERY_MS = 400;
const GALLERY_SIZE = 48;
const VALID_SIZE = 10000;
const DATA_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
                    't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
// The models with a pretrained file (trained by `sgdx train`, in models/ as
// mnist_<name>.safetensors): models/index.json lists them.
let pretrainedNames = [];

let trainer = null;
let dataReady = false;
// Training state: epochs still to run and finished, whether paused, and a generation
// number that a reset bumps so a loop still waiting on a yield ends instead of racing a new one.
const run = { active: false, paused: false, epochsLeft: 0, epochsDone: 0, generation: 0, wake: null };
let lastWeightsAt = 0;

const post = (type, body = {}) => self.postMessage({ type, ...body });

// Hands control back to the event loop (no 4 ms timer clamp, unlike setTimeout).
function yieldToMessages() {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = resolve;
    ch.port2.postMessage(0);
  });
}

// Fetches one gzipped file: onSize(compressed bytes) once its headers arrive, then
// onBytes(n) as the compressed bytes come in.
async function fetchGunzip(url, onSize, onBytes) {
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  onSize(Number(resp.headers.get('content-length')) || 0);
  const counter = new TransformStream({
    transform(chunk, ctl) { onBytes(chunk.byteLength); ctl.enqueue(chunk); },
  });
  const stream = resp.body.pipeThrough(counter).pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function loadData() {
  // The four downloads start together, so their sizes are all known before much
  // has arrived (no separate HEAD requests).
  const sizes = DATA_FILES.map(() => 0);
  let loaded = 0;
  let files = await Promise.all(DATA_FILES.map((f, i) => fetchGunzip(`data/${f}.gz`, (n) => { sizes[i] = n; }, (n) => {
    loaded += n;
    // total 0 (unknown) until every size is in, so the bar never runs back
    post('loading', { loaded, total: sizes.every((s) => s > 0) ? sizes.reduce((a, b) => a + b, 0) : 0 });
  })));
  const train = trainer.loadTraining(files[0], files[1], VALID_SIZE);
  if (train.error) return train;
  const test = trainer.loadTest(files[2], files[3]);
  files = null;
  return test.error ? test : { ...train, ...test };
}

function sendWeights() {
  lastWeightsAt = performance.now();
  post('weights', { layer: trainer.firstLayer() });
}

// The architecture's pretrained weights, if the site has them; false if not.
async function loadPretrained(architecture) {
  if (!pretrainedNames.includes(architecture)) return false;
  const url = `models/mnist_${architecture}.safetensors`;
  const resp = await fetch(url);
  if (!resp.ok) return false;
  const r = trainer.loadModel(new Uint8Array(await resp.arrayBuffer()), url);
  if (r.error) { post('error', { message: r.error }); return false; }
  return true;
}

// Stops a run in progress (its loop ends at its next slice).
function stopRun() {
  run.generation += 1;
  run.active = false;
  run.paused = false;
  wakeLoop();
}

// After the model changed: what the page shows for it.
function sendModelViews() {
  sendWeights();
  sendTestResults(0);
}

// Test accuracy, confusion matrix and the gallery's guesses for the current model.
function sendTestResults(epoch) {
  const t = trainer.test();
  if (t.error) return post('error', { message: t.error });
  const predicted = trainer.testPredictions(0, GALLERY_SIZE);
  post('test', { epoch, loss: t.loss, accuracy: t.accuracy, confusion: t.confusion, predicted });
}

function wakeLoop() {
  if (run.wake) { run.wake(); run.wake = null; }
}

async function trainLoop(generation) {
  const current = () => run.generation === generation;
  while (current() && run.active && run.epochsLeft > 0) {
    if (run.paused) { await new Promise((r) => { run.wake = r; }); continue; }
    const r = trainer.step(sliceMs());
    if (r.error) {
      // Diverged: the model is back at the end of its last good epoch, whose test
      // results the page has; the fresh weights' if no epoch finished.
      run.active = false;
      sendWeights();
      if (run.epochsDone === 0) sendTestResults(0);
      post('error', { message: r.error });
      break;
    }
    post('progress', r);
    if (r.epochEnd) {
      run.epochsLeft -= 1;
      run.epochsDone += 1;
      sendWeights();
      sendTestResults(r.epoch);
      post('memory', { epoch: r.epoch, wasmBytes: wasmMemoryBytes() });
    } else if (performance.now() - lastWeightsAt > WEIGHTS_EVERY_MS) {
      sendWeights();
    }
    await yieldToMessages();
  }
  if (!current()) return;
  const finished = run.active;
  run.active = false;
  post('state', { state: finished ? 'done' : 'stopped' });
}

let wasmMemoryBytes = () => 0;
let runtimeThreads = 1;

const handlers = {
  async init({ threads: wanted, relaxed = true } = {}) {
    const threads = threadsFor(wanted);
    const { default: createSgdx } = await import(threads > 1 ? './sgdx_web_mt.js' : './sgdx_web.js');
    const module = await createSgdx();
    wasmMemoryBytes = () => module.HEAPU8.length;
    // The relaxed-SIMD kernels where the browser validates them (each wasm thread
    // instantiates its own copy on its first kernel call), else SIMD128.
    module.selectKernels(relaxed);
    runtimeThreads = module.setThreads(threads);
    trainer = new module.Trainer();
    const index = await fetch('models/index.json');
    if (index.ok) pretrainedNames = await index.json();
    // The runtime's models and options, for the page's pickers.
    post('catalog', { models: module.models(), options: module.options() });
    const info = await loadData();
    if (info.error) throw new Error(info.error);
    dataReady = true;
    const pretrained = await loadPretrained('logistic');
    post('model', { info: trainer.modelInfo(), pretrained });
    post('ready', { ...info, pretrained, threads: runtimeThreads });
    sendGallery();
    sendModelViews();
  },
  // Another model (one of the runtime's names, or a printout): fresh weights, then
  // its pretrained ones if there are any. On an error the model and a run in
  // progress go on as they were.
  async setModel({ architecture, seed }) {
    if (!dataReady) return;
    const r = trainer.setModel(architecture, '', seed);
    if (r.error) return post('modelFailed', { message: r.error });
    stopRun();
    const pretrained = await loadPretrained(r.architecture);
    post('state', { state: 'ready' });
    post('model', { info: trainer.modelInfo(), pretrained });
    sendModelViews();
  },
  // A run of `epochs` epochs: from fresh weights, or (fresh false) on from the
  // model's current ones (a loaded or trained model, trained further).
  start({ lr, momentum, batchSize, epochs, seed, lrGamma = 1, optimizer = 'sgd', schedule = 'step', fresh }) {
    if (!dataReady) return;
    stopRun();
    if (fresh) trainer.reset(seed);
    run.epochsDone = 0;
    const r = trainer.configure(lr, momentum, batchSize, seed, lrGamma, optimizer, schedule, epochs);
    if (r.error) {
      post('state', { state: 'stopped' });
      return post('error', { message: r.error });
    }
    run.epochsLeft = epochs;
    run.paused = false;
    post('state', { state: 'training' });
    if (!run.active) { run.active = true; trainLoop(run.generation); }
  },
  pause() { run.paused = true; post('state', { state: 'paused' }); },
  resume() {
    run.paused = false;
    wakeLoop();
    post('state', { state: run.active ? 'training' : 'stopped' });
  },
  reset({ seed }) {
    stopRun();
    trainer.reset(seed);
    sendModelViews();
    post('state', { state: 'reset' });
  },
  // The drawing's class probabilities, and with layers: true what each layer made of it.
  predict({ id, pixels, layers }) {
    const r = trainer.predict(pixels);
    const acts = layers && !r.error ? trainer.activations(pixels) : undefined;
    post('prediction', { id, ...r, layers: acts });
  },
  testImage({ id, index }) {
    post('testImage', { id, index, ...trainer.testImage(index) });
  },
  save() {
    const bytes = trainer.saveModel();
    if (bytes.error) return post('error', { message: bytes.error });
    post('saved', { bytes });
  },
  // A model file; one for another architecture switches the page to it. Either
  // way it ends a run in progress (its epochs were another model's).
  load({ bytes, name }) {
    const r = trainer.loadModel(bytes, name);
    if (r.error) return post('loadFailed', { name, message: r.error });
    // The file replaces the model being trained: a run in progress ends.
    const wasRunning = run.active;
    stopRun();
    if (wasRunning) post('state', { state: 'stopped' });
    post('model', { info: r, pretrained: false, file: name, switched: r.switched });
    post('loaded', { name, switched: r.switched, description: r.description });
    sendModelViews();
  },
};

function sendGallery() {
  const images = [];
  const labels = [];
  for (let i = 0; i < GALLERY_SIZE; i++) {
    const t = trainer.testImage(i);
    images.push(t.pixels);
    labels.push(t.label);
  }
  post('gallery', { images, labels });
}

self.onmessage = async (e) => {
  const { type, ...args } = e.data;
  try {
    await handlers[type](args);
  } catch (err) {
    post('error', { message: String(err && err.message || err) });
  }
};
