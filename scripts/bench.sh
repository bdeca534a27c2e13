#!/usr/bin/env bash
# ./run bench [--with-pytorch] [--epochs N]   sgdx kernels/threads (and PyTorch) on MNIST
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

say "sgdx train, whole process (2 epochs, batch 64)"
"$ROOT/build/native/sgdx" train --data "$MNIST_DIR" --save "" -q | tee -a "$out" | grep -E 'peak memory|test:'

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  say "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), the tutorial's code, 1 thread"
  /usr/bin/python3 "$ROOT/bench/pytorch_tutorial.py" "$MNIST_DIR" 64,1024 3 | tee -a "$out"
else
  echo "PyTorch: not installed, so no side-by-side (./run bench --with-pytorch installs Debian's python3-torch)"
fi

# Ratios from the result: lines of this one run.
awk '
  function parse(   i, kv) { delete r; for (i = 2; i <= NF; i++) if (split($i, kv, "=") == 2) r[kv[1]] = kv[2] }
  /^result: kernels=/ { parse(); t[r["kernels"] "/" r["threads"] "/" r["batch"]] = r["train_ms"] + r["valid_ms"]
                        if (r["kernels"] != "scalar") simd = r["kernels"] }
  /^result: pytorch batch=/ { parse(); pt[r["batch"]] = r["train_ms"] + r["valid_ms"] }
  /^result: peak_gflops=/ { parse(); floor = r["floor_ms"] }
  function row(b, what, mine, other) { if (mine > 0 && other > 0) printf "%-6s %-34s %10.1f %10.1f %8.1fx\n", b, what, mine, other, other / mine }
  END {
    printf "\n%-6s %-34s %10s %10s %9s\n", "batch", "ms per epoch (train + validation)", "sgdx", "other", "speed-up"
    for (b = 64; b <= 1024; b *= 16) {
      row(b, "vs the scalar reference", t[simd "/1/" b], t["scalar/1/" b])
      row(b, "vs PyTorch (tutorial code)", t[simd "/1/" b], pt[b])
      row(b, "2 threads vs 1 thread", t[simd "/2/" b], t[simd "/1/" b])
    }
    if (floor > 0) printf "%-6s %-34s %10.1f %10.1f %8.1fx of the floor\n", 64, "epoch vs the FMA-peak floor", t[simd "/1/64"], floor, t[simd "/1/64"] / floor
  }' "$out"
