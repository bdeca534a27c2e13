#!/usr/bin/env bash
# ./run bench [--with-pytorch] [--epochs N]   sgdx kernels/threads (and PyTorch) on MNIST:
#                                             the logistic model, then the MLP, the tutorial CNN and
#                                             LeNet, each network with a per-layer breakdown
# ./run bench web                             one epoch in headless Chromium vs native
# ./run bench cuda                            the CUDA backend (needs a GPU)
source "$(dirname "$0")/lib.sh"
case "${1:-}" in -h|--help) usage_of "$0"; exit 0 ;; esac
case "${1:-}" in
  web) shift; exec "$ROOT/scripts/bench-web.sh" "$@" ;;
  cuda) shift; exec "$ROOT/scripts/bench-cuda.sh" "$@" ;;
esac
with_pytorch=0 epochs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --with-pytorch) with_pytorch=1 ;;
    --epochs) epochs=$2; shift ;;
    *) die "bench: unknown argument $1 (see ./run help)" ;;
  esac
  shift
done
build_native
[ $with_pytorch = 1 ] && ensure_apt python3-torch python3-numpy

out=$(mktemp); trap 'rm -f "$out"' EXIT
say "sgdx: median of $epochs epochs per configuration (one run; the machine is shared, read the ratios)"
"$ROOT/build/native/sgdx_bench" --data "$MNIST_DIR" --epochs "$epochs" | tee "$out" | grep -v '^result:'

net_epochs=$(( epochs < 3 ? epochs : 3 ))
for model in mlp cnn lenet; do
  say "sgdx: the $model (batch 64, median of $net_epochs epochs after a warm-up one)"
  "$ROOT/build/native/sgdx_bench" --data "$MNIST_DIR" --model $model --batch 64 --epochs $net_epochs | tee -a "$out" | grep -v '^result:'
done

say "sgdx train, whole process (2 epochs, batch 64)"
"$ROOT/build/native/sgdx" train --data "$MNIST_DIR" --save "" -q | tee -a "$out" | grep -E 'peak memory|test:'

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  say "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), the tutorial's code, 1 thread"
  /usr/bin/python3 "$ROOT/bench/pytorch_tutorial.py" "$MNIST_DIR" 64,1024 3 | tee -a "$out"
  for model in cnn mlp lenet; do  # an epoch of each takes PyTorch 1-10 s here: one timed epoch
    /usr/bin/python3 "$ROOT/bench/pytorch_tutorial.py" "$MNIST_DIR" 64 1 --model $model | tee -a "$out"
  done
else
  echo "PyTorch: not installed, so no side-by-side (./run bench --with-pytorch installs Debian's python3-torch)"
fi

# Ratios from the result: lines of this one run. Training is compared with training and
# validation with validation: PyTorch's no_grad validation of the tutorial's Mnist_CNN class
# is a slow path of its own (slower than its training; see README, Benchmarks), which a sum
# of the two would count as sgdx's speed.
awk '
  function parse(   i, kv) { delete r; for (i = 2; i <= NF; i++) if (split($i, kv, "=") == 2) r[kv[1]] = kv[2] }
  /^result: peak_gflops=/ { parse(); if (!floor) floor = r["floor_ms"]  # the logistic run comes first
                            gflop[r["model"]] = r["train_gflop"]; peak[r["model"]] = r["peak_gflops"] }
  /^result: kernels=/ { parse(); k = "logistic/" r["kernels"] "/" r["threads"] "/" r["batch"]
                        tr[k] = r["train_ms"]; va[k] = r["valid_ms"]; if (r["kernels"] != "scalar") simd = r["kernels"] }
  /^result: pytorch batch=/ { parse(); ptr["logistic/" r["batch"]] = r["train_ms"]; pva["logistic/" r["batch"]] = r["valid_ms"] }
  /^result: model=/ { parse(); k = r["model"] "/" r["kernels"] "/" r["threads"] "/" r["batch"]; tr[k] = r["train_ms"]; va[k] = r["valid_ms"]
                      acc[r["model"]] = r["valid_acc"]; simd = r["kernels"] }
  /^result: pytorch model=/ { parse(); ptr[r["model"] "/" r["batch"]] = r["train_ms"]; pva[r["model"] "/" r["batch"]] = r["valid_ms"]
                              ptacc[r["model"]] = r["valid_acc"] }
  function num(v, f) { return v > 0 ? sprintf(f, v) : "-" }
  function ratio(a, b) { return a > 0 && b > 0 ? sprintf("%.2fx", a / b) : "-" }
  function row(m, b,   one, two, pct) {
    one = tr[m "/" simd "/1/" b]; two = tr[m "/" simd "/2/" b]
    if (!(one > 0)) return
    pct = gflop[m] > 0 && peak[m] > 0 ? 100 * gflop[m] * 1e3 / (one * peak[m]) : 0
    printf "%-10s %5s | %9.1f %6s %9s %7s | %9s %8s | %8.1f %9s %8s\n", m, b, one, num(pct, "%.0f%%"), num(two, "%.1f"),
           ratio(one, two), num(ptr[m "/" b], "%.1f"), ratio(ptr[m "/" b], one), va[m "/" simd "/1/" b],
           num(pva[m "/" b], "%.1f"), ratio(pva[m "/" b], va[m "/" simd "/1/" b])
  }
  END {
    printf "\nms per epoch, one run (%s kernels; %% of the measured FMA peak: the training FLOPs at 1 thread)\n", simd
    printf "%-10s %5s | %9s %6s %9s %7s | %9s %8s | %8s %9s %8s\n", "model", "batch", "train 1t", "%peak", "train 2t",
           "2t vs 1t", "PyTorch", "speed-up", "valid", "PyTorch", "speed-up"
    row("logistic", 64); row("logistic", 1024)
    row("mlp", 64); row("cnn", 64); row("lenet", 64)
    s1 = tr["logistic/scalar/1/64"]; if (s1 > 0) printf "logistic, batch 64: the scalar reference trains in %.1f ms (%s kernels %s faster)\n", s1, simd, ratio(s1, tr["logistic/" simd "/1/64"])
    if (floor > 0) printf "logistic, batch 64: training + validation %.1f ms, %.1fx the FMA-peak floor of %.1f ms\n",
                          tr["logistic/" simd "/1/64"] + va["logistic/" simd "/1/64"], (tr["logistic/" simd "/1/64"] + va["logistic/" simd "/1/64"]) / floor, floor
    for (m in acc) if (m in ptacc) printf "%s: validation accuracy after the timed epochs: sgdx %s, PyTorch %s\n", m, acc[m], ptacc[m]
  }' "$out"
