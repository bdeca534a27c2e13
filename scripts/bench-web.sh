#!/usr/bin/env bash
# Browser vs native training speed on the same model and data: one epoch = 50,000
# images at batch 64. Native epochs come from `sgdx train --metrics` (training plus
# validation, one thread); browser epochs from the demo page in headless Chromium
# (training time in the worker, and wall time with validation and page updates), and
# the same wasm without the page under Node (sgdx_bench_node).
# Also checks the page's memory stays flat across epochs. Then the tutorial CNN
# (lr 0.1, momentum 0.9, batch 64): natively, in the page with its threads (2 when
# cross-origin isolated, as the demo server makes it) and with one, in the worker
# alone, and with TensorFlow.js; the LeNet-like CNN natively and in the page with 2
# threads and 1. Where the browser runs the relaxed-SIMD kernels (web/relaxed), the
# two CNNs once more with the SIMD128 ones (?relaxed=0). Writes build/bench-web.json
# (ms per epoch, medians; `kernels` names the page's set).
#   scripts/bench-web.sh [--epochs N] [--cnn-epochs N] [--lenet-epochs N]   (./run bench web)
# SGDX_NATIVE_SGDX=PATH: the native CLI to compare with (default build/native/sgdx,
# built first); the wasm build folder is $SGDX_WASM_BUILD's (scripts/wasm-lib.sh).
source "$(dirname "$0")/lib.sh"
case "${1:-}" in -h|--help) usage_of "$0"; exit 0 ;; esac
source "$ROOT/scripts/wasm-lib.sh"
EPOCHS=20  # medians over ~2 s of epochs: the machine flips speed for a second at a time
CNN_EPOCHS=3
LENET_EPOCHS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS=$2; shift 2 ;;
    --cnn-epochs) CNN_EPOCHS=$2; shift 2 ;;
    --lenet-epochs) LENET_EPOCHS=$2; shift 2 ;;
    *) die "bench-web: unknown option '$1' (--epochs N, --cnn-epochs N, --lenet-epochs N)" ;;
  esac
done
ensure_apt chromium
NATIVE_SGDX=${SGDX_NATIVE_SGDX:-$ROOT/build/native/sgdx}
[ -n "${SGDX_NATIVE_SGDX:-}" ] || build_native >/dev/null
build_wasm sgdx_site sgdx_bench_node >/dev/null
OUT="$WASM_BUILD/bench"
mkdir -p "$OUT"

# epoch_ms METRICS_FILE: "median best" of the epochs after the first (warm-up), in ms.
# The best epoch is the least disturbed one: on a shared machine outside load only
# ever adds time.
epoch_ms() {
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
    const s = (lines.length > 1 ? lines.slice(1) : lines).map((l) => l.seconds * 1000).sort((a, b) => a - b);
    console.log(s[Math.floor(s.length / 2)].toFixed(1), s[0].toFixed(1));' "$1"
}

native_run() {  # native_run KERNELS [MODEL EPOCHS] -> "median best" ms/epoch
  local model=${2:-logistic} epochs=${3:-$EPOCHS}
  local metrics="$OUT/native-$model-$1.jsonl"
  rm -f "$metrics"
  "$NATIVE_SGDX" train --model "$model" --data "$MNIST_DIR" --epochs "$epochs" --kernels "$1" --threads 1 -q \
    --save '' --metrics "$metrics" >/dev/null
  epoch_ms "$metrics"
}

best=$("$NATIVE_SGDX" --version | sed -n 's/.*(using \(.*\))/\1/p')
say "native (1 thread): $EPOCHS epochs with the best kernels ($best) and with sse2 (4-wide, as wasm SIMD128)"
native_best=$(native_run "${best:-scalar}")
native_sse2=$(native_run sse2 2>/dev/null || echo "n/a n/a")
say "native (1 thread): the tutorial CNN, $CNN_EPOCHS epochs ($best)"
native_cnn=$(native_run "${best:-scalar}" cnn "$CNN_EPOCHS")
say "native (1 thread): the LeNet-like CNN, $LENET_EPOCHS epoch(s) ($best)"
native_lenet="0 0"
[ "$LENET_EPOCHS" -gt 0 ] && native_lenet=$(native_run "${best:-scalar}" lenet "$LENET_EPOCHS")
say "wasm under Node: the page's kernels and runtime without the page ($EPOCHS epochs)"
node_ms=$(node --no-experimental-fetch "$WASM_BUILD/web/sgdx_bench_node.js" --data "$MNIST_DIR" --epochs "$EPOCHS" \
  --batch 64 --threads 1 --kernels wasm_simd128 | sed -n 's/^result: kernels=.*train_ms=\([0-9.]*\).*/\1/p')
# At a large learning rate nearly every probability is tiny: the kernels must not
# make denormals there (each costs ~100x on x86; this was once 15x slower).
node_ms_lr50=$(node --no-experimental-fetch "$WASM_BUILD/web/sgdx_bench_node.js" --data "$MNIST_DIR" --epochs 2 \
  --batch 64 --threads 1 --kernels wasm_simd128 --lr 50 | sed -n 's/^result: kernels=.*train_ms=\([0-9.]*\).*/\1/p')
# TensorFlow.js 4.22 (the issue's comparison) for this benchmark only, kept out of
# the project's dependencies: build/bench-tfjs. Without the npm registry the goal
# line falls back to the issue's own figure.
TFJS_DIR="$ROOT/build/bench-tfjs"
if [ ! -f "$TFJS_DIR/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm" ]; then
  say "installing TensorFlow.js 4.22 for the comparison (build/bench-tfjs)"
  mkdir -p "$TFJS_DIR" && { [ -f "$TFJS_DIR/package.json" ] || echo '{"private": true}' > "$TFJS_DIR/package.json"; }
  (cd "$TFJS_DIR" && npm install --no-audit --no-fund --loglevel=error @tensorflow/tfjs@4.22.0 \
    @tensorflow/tfjs-backend-wasm@4.22.0) || say "could not install TensorFlow.js: using the issue's 6,600 ms"
fi
tfjs_args=()
[ -d "$TFJS_DIR/node_modules/@tensorflow/tfjs" ] && tfjs_args=(--tfjs "$TFJS_DIR/node_modules")
say "browser: $EPOCHS epochs in headless Chromium"
node "$ROOT/web/tests/bench.mjs" --site "$SITE_DIR" --epochs "$EPOCHS" --cnn-epochs "$CNN_EPOCHS" \
  --lenet-epochs "$LENET_EPOCHS" --json "$OUT/browser.json" "${tfjs_args[@]}"
browser=$(node -e '
  const r = require(process.argv[1]);
  console.log(r.computeMs.toFixed(1), r.bestComputeMs.toFixed(1), r.wallMs.toFixed(1),
              r.plainJsMs ? r.plainJsMs.toFixed(0) : "n/a", r.bareWorkerMs.toFixed(1), r.bestBareWorkerMs.toFixed(1),
              r.tfjsMs ? r.tfjsMs.toFixed(0) : "n/a")' "$OUT/browser.json")
read -r browser_train browser_train_best browser_wall plain_js bare_worker bare_worker_best tfjs_ms <<<"$browser"
read -r native_median native_min <<<"$native_best"
read -r sse2_median sse2_min <<<"$native_sse2"
row() { printf '%-50s %9s %9s\n' "$@"; }
echo
row "one epoch, 50,000 images, batch 64 (ms)" "median" "best"
row "native, $best kernels, 1 thread (train + valid)" "$native_median" "$native_min"
row "native, sse2 kernels, 1 thread (train + valid)" "$sse2_median" "$sse2_min"
row "wasm_simd128 under Node, no page (training)" "${node_ms:-n/a}" ""
row "wasm_simd128 under Node, lr 50 (tiny probabilities)" "${node_ms_lr50:-n/a}" ""
row "browser, the worker alone without the page" "$bare_worker" "$bare_worker_best"
row "browser (Chromium), demo page (training)" "$browser_train" "$browser_train_best"
row "browser, wall (with validation, page updates)" "$browser_wall" ""
row "plain-JS Float32Array loop, same browser" "$plain_js" ""
row "TensorFlow.js 4.22 model.fit (wasm SIMD), same browser" "$tfjs_ms" ""
# The issue's goals: within 2x of native, 10x faster than plain JS, 50x faster than
# tfjs model.fit (measured above; the issue's ~6,600 ms/epoch if it could not be). Met or
# missed is judged on the medians (the page's wall time against native); the best
# epochs' ratio (page training, least disturbed, against native's best) is shown
# beside it to tell the engine's share from the machine's noise.
node -e '
  const [wall, native, plain, trainBest, nativeBest] = process.argv.slice(1, 6).map(Number);
  const tfjs = Number(process.argv[7]);
  const line = (what, x, goal, ok) => console.log(`${what.padEnd(48)} ${x.toFixed(2).padStart(7)}x  (goal ${goal}: ${ok ? "met" : "missed"})`);
  line(`browser wall / native (${process.argv[6]})`, wall / native, "<= 2x", wall / native <= 2);
  if (plain > 0) line("plain JS (training) / browser wall", plain / wall, ">= 10x", plain / wall >= 10);
  if (tfjs > 0) line("tfjs model.fit (same browser) / browser wall", tfjs / wall, ">= 50x", tfjs / wall >= 50);
  else line("tfjs model.fit (issue: 6,600 ms) / browser wall", 6600 / wall, ">= 50x", 6600 / wall >= 50);
  console.log(`${"best epochs: page training / native train+valid".padEnd(48)} ${(trainBest / nativeBest).toFixed(2).padStart(7)}x  (for reference)`);' \
  "$browser_wall" "$native_median" "$plain_js" "$browser_train_best" "$native_min" "$best" "$tfjs_ms"

# The tutorial CNN and the LeNet-like CNN, and the numbers in one file.
read -r cnn_native _ <<<"$native_cnn"
read -r lenet_native _ <<<"$native_lenet"
node -e '
  const fs = require("fs");
  const r = require(process.argv[1]);
  const [nativeMs, workerMs, pageTrain, pageWall, tfjsMs, cnnNative] = process.argv.slice(2, 8).map(Number);
  const lenetNative = Number(process.argv[9]);
  const row = (what, v) => console.log(`${what.padEnd(58)} ${v}`);
  const t = r.pageThreads;
  console.log();
  row("the tutorial CNN, one epoch (ms, median)", "");
  row("native, 1 thread (train + valid)", cnnNative.toFixed(0));
  if (r.cnnComputeMs) {
    row(`browser, the worker alone without the page (${t} threads)`, r.cnnBareWorkerMs.toFixed(0));
    row(`browser, demo page (training), ${t} threads`, r.cnnComputeMs.toFixed(0));
    row(`browser, demo page wall (with validation, page updates), ${t} threads`, r.cnnWallMs.toFixed(0));
    row("browser, demo page (training), 1 thread", r.cnnComputeMs1.toFixed(0));
    row("browser, demo page wall, 1 thread", r.cnnWallMs1.toFixed(0));
    if (r.cnnPlainComputeMs) {
      row(`browser, demo page (training), ${t} threads, wasm_simd128`, r.cnnPlainComputeMs.toFixed(0));
      row("browser, demo page (training), 1 thread, wasm_simd128", r.cnnPlain1ComputeMs.toFixed(0));
    }
  }
  if (r.lenetComputeMs) {
    console.log();
    row("the LeNet-like CNN, one epoch (ms, median)", "");
    row("native, 1 thread (train + valid)", lenetNative.toFixed(0));
    row(`browser, demo page (training), ${r.lenetThreads} threads`, r.lenetComputeMs.toFixed(0));
    row(`browser, demo page wall, ${r.lenetThreads} threads`, r.lenetWallMs.toFixed(0));
    row("browser, demo page (training), 1 thread", r.lenet1ComputeMs.toFixed(0));
    row("browser, demo page wall, 1 thread", r.lenet1WallMs.toFixed(0));
    if (r.lenetPlainComputeMs) {
      row(`browser, demo page (training), ${r.lenetThreads} threads, wasm_simd128`, r.lenetPlainComputeMs.toFixed(0));
      row("browser, demo page (training), 1 thread, wasm_simd128", r.lenetPlain1ComputeMs.toFixed(0));
    }
  }
  if (r.cnnTfjsMs) row(`TensorFlow.js 4.22 model.fit, ${r.cnnTfjsBackend} backend (scaled from a part)`, r.cnnTfjsMs.toFixed(0));
  const line = (what, x, goal, ok) => console.log(`${what.padEnd(48)} ${x.toFixed(2).padStart(7)}x  (goal ${goal}: ${ok ? "met" : "missed"})`);
  line("logistic: page wall / bare worker", pageWall / workerMs, "<= 1.25x", pageWall / workerMs <= 1.25);
  const ref = (what, x) => console.log(`${what.padEnd(48)} ${x.toFixed(2).padStart(7)}x  (for reference)`);
  const goal = (what, v, unit, limit) => console.log(`${what.padEnd(48)} ${v.toFixed(0).padStart(7)}${unit}  (goal <= ${limit}${unit}: ${v <= limit ? "met" : "missed"})`);
  if (r.cnnWallMs) {
    line("CNN: page wall / bare worker", r.cnnWallMs / r.cnnBareWorkerMs, "<= 1.25x", r.cnnWallMs / r.cnnBareWorkerMs <= 1.25);
    line("CNN: page wall / native", r.cnnWallMs / cnnNative, "<= 2.5x", r.cnnWallMs / cnnNative <= 2.5);
    if (r.cnnTfjsMs) line(`CNN: tfjs (${r.cnnTfjsBackend}) / page wall`, r.cnnTfjsMs / r.cnnWallMs, ">= 5x", r.cnnTfjsMs / r.cnnWallMs >= 5);
    goal(`CNN: page wall, ${t} threads`, r.cnnWallMs, " ms", 1500);
    ref(`CNN: page training, 1 thread / ${t} threads`, r.cnnComputeMs1 / r.cnnComputeMs);
  }
  if (r.lenetComputeMs) {
    goal(`LeNet: page training, ${r.lenetThreads} threads`, r.lenetComputeMs, " ms", 5000);
    ref(`LeNet: page training, 1 thread / ${r.lenetThreads} threads`, r.lenet1ComputeMs / r.lenetComputeMs);
  }
  // What relaxed SIMD gains: page training with wasm_simd128 over the page kernels.
  if (r.cnnPlainComputeMs) {
    ref(`CNN: simd128 / ${r.kernels}, ${t} threads`, r.cnnPlainComputeMs / r.cnnComputeMs);
    ref(`CNN: simd128 / ${r.kernels}, 1 thread`, r.cnnPlain1ComputeMs / r.cnnComputeMs1);
  }
  if (r.lenetPlainComputeMs) {
    ref(`LeNet: simd128 / ${r.kernels}, ${r.lenetThreads} threads`, r.lenetPlainComputeMs / r.lenetComputeMs);
    ref(`LeNet: simd128 / ${r.kernels}, 1 thread`, r.lenetPlain1ComputeMs / r.lenet1ComputeMs);
  }
  const out = {
    native_ms: nativeMs, worker_ms: workerMs, page_train_ms: pageTrain, page_wall_ms: pageWall,
    tfjs_ms: tfjsMs > 0 ? tfjsMs : null,
    cnn_native_ms: cnnNative, cnn_worker_ms: r.cnnBareWorkerMs ?? null, cnn_page_ms: r.cnnWallMs ?? null,
    cnn_page_train_ms: r.cnnComputeMs ?? null, cnn_tfjs_ms: r.cnnTfjsMs ?? null,
    cnn_tfjs_backend: r.cnnTfjsBackend ?? null, cnn_tfjs_wasm_error: r.cnnTfjsWasmError || null,
    page_threads: r.pageThreads,
    cnn_page_1t_ms: r.cnnWallMs1 ?? null, cnn_page_train_1t_ms: r.cnnComputeMs1 ?? null,
    lenet_native_ms: lenetNative > 0 ? lenetNative : null, lenet_page_train_ms: r.lenetComputeMs ?? null,
    lenet_page_ms: r.lenetWallMs ?? null, lenet_page_train_1t_ms: r.lenet1ComputeMs ?? null,
    kernels: r.kernels,
    cnn_page_train_simd128_ms: r.cnnPlainComputeMs ?? null, cnn_page_train_1t_simd128_ms: r.cnnPlain1ComputeMs ?? null,
    lenet_page_train_simd128_ms: r.lenetPlainComputeMs ?? null, lenet_page_train_1t_simd128_ms: r.lenetPlain1ComputeMs ?? null,
    date: new Date().toISOString(),
  };
  fs.writeFileSync(process.argv[8], JSON.stringify(out, null, 2) + "\n");
  console.log(`written: ${process.argv[8]}`);' \
  "$OUT/browser.json" "$native_median" "$bare_worker" "$browser_train" "$browser_wall" "${tfjs_ms/n\/a/0}" "$cnn_native" \
  "$ROOT/build/bench-web.json" "${lenet_native:-0}"


# The BatchNorm CNN as a person runs it in the page: pick bncnn, Start, one epoch (its
# defaults: Adam, OneCycleLR); its test accuracy must reach 0.99.
say "bncnn in the page: one epoch, as picked and started"
node "$ROOT/web/tests/bncnn_page.mjs" --site "$SITE_DIR" | tee "$OUT/bncnn-page.json"
