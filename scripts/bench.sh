#!/usr/bin/env bash
# ./run bench [--with-pytorch] [--epochs N]   sgdx kernels/threads (and PyTorch) on MNIST:
#                                             the logistic model, then the MLP, the tutorial CNN and
#                                             LeNet, each network with a per-layer breakdown
# ./run bench web                             one epoch in headless Chromium vs native
# ./run bench cuda                            the CUDA backend (needs a GPU)
source "$(dirname "$0")/lib.sh"
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
  for model in cnn mlp; do  # an epoch of each takes PyTorch 3-20 s here: one timed epoch
    /usr/bin/python3 "$ROOT/bench/pytorch_tutorial.py" "$MNIST_DIR" 64 1 --model $model | tee -a "$out"
  done
else
  echo "PyTorch: not installed, so no side-by-side (./run bench --with-pytorch installs Debian's python3-torch)"
fi

# Ratios from the result: lines of this one run.
awk '
  function parse(   i, kv) { delete r; for (i = 2; i <= NF; i++) if (split($i, kv, "=") == 2) r[kv[1]] = kv[2] }
  /^result: kernels=/ { parse(); t[r["kernels"] "/" r["threads"] "/" r["batch"]] = r["train_ms"] + r["valid_ms"]
                        if (r["kernels"] != "scalar") simd = r["kernels"] }
  /^result: pytorch batch=/ { parse(); pt[r["batch"]] = r["train_ms"] + r["valid_ms"] }
  /^result: model=/ { parse(); net[r["model"] "/" r["threads"]] = r["train_ms"] + r["valid_ms"]; acc[r["model"]] = r["valid_acc"] }
  /^result: pytorch model=/ { parse(); ptnet[r["model"]] = r["train_ms"] + r["valid_ms"]; ptacc[r["model"]] = r["valid_acc"] }
  /^result: peak_gflops=/ { parse(); if (!floor) floor = r["floor_ms"] }  # the logistic run comes first
  function row(b, what, mine, other) { if (mine > 0 && other > 0) printf "%-6s %-34s %10.1f %10.1f %8.1fx\n", b, what, mine, other, other / mine }
  END {
    printf "\n%-6s %-34s %10s %10s %9s\n", "batch", "ms per epoch (train + validation)", "sgdx", "other", "speed-up"
    for (b = 64; b <= 1024; b *= 16) {
      row(b, "vs the scalar reference", t[simd "/1/" b], t["scalar/1/" b])
      row(b, "vs PyTorch (tutorial code)", t[simd "/1/" b], pt[b])
      row(b, "2 threads vs 1 thread", t[simd "/2/" b], t[simd "/1/" b])
    }
    if (floor > 0) printf "%-6s %-34s %10.1f %10.1f %8.1fx of the floor\n", 64, "epoch vs the FMA-peak floor", t[simd "/1/64"], floor, t[simd "/1/64"] / floor
    for (m in acc) {
      row(64, m " vs PyTorch (tutorial code)", net[m "/1"], ptnet[m])
      row(64, m " 2 threads vs 1 thread", net[m "/2"], net[m "/1"])
      if (m in ptacc) printf "%-6s %-34s %10s %10s   (valid acc after the timed epochs: sgdx, PyTorch)\n", 64, m " validation accuracy", acc[m], ptacc[m]
    }
  }' "$out"
