#!/usr/bin/env bash
# The CLI built with CUDA: --version lists the backend; `train --device cuda`
# trains on a GPU (with StepLR and checkpoints, and a --resume of its checkpoint
# continues there) or, without one, fails saying why; `--device auto` then falls
# back to the CPU with a one-line notice.
# usage: cli_check.sh SGDX MNIST_DIR TMP_DIR
set -euo pipefail
sgdx=$1 data=$2 tmp=$3
mkdir -p "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ ! -f "$data/train-images-idx3-ubyte" ]; then echo "skipped: no MNIST data in $data"; exit 0; fi

"$sgdx" --version | tee "$tmp/version.txt"
grep -q '^backends: cpu, cuda (' "$tmp/version.txt" || fail "--version does not list the cuda backend"

args=(train --data "$data" --epochs 1 --batch-size 256 --save "" -q)
if grep -q 'cuda (no device:' "$tmp/version.txt"; then
  if "$sgdx" "${args[@]}" --device cuda >"$tmp/out.txt" 2>"$tmp/err.txt"; then fail "--device cuda succeeded without a GPU"; fi
  cat "$tmp/err.txt"
  grep -q 'no usable CUDA device' "$tmp/err.txt" || fail "--device cuda did not say why it failed"
  "$sgdx" "${args[@]}" --device auto >"$tmp/out.txt" 2>"$tmp/err.txt" || fail "--device auto did not fall back to the CPU"
  cat "$tmp/err.txt" "$tmp/out.txt"
  [ "$(grep -c 'training on the CPU' "$tmp/err.txt")" = 1 ] || fail "--device auto gave no one-line notice"
else
  "$sgdx" "${args[@]}" --device cuda --lr-gamma 0.5 --checkpoint "$tmp/run.ckpt" --checkpoint-every 50 | tee "$tmp/out.txt"
  acc=$(sed -n 's/^test: .*accuracy \([0-9.]*\).*/\1/p' "$tmp/out.txt")
  awk -v a="$acc" 'BEGIN { exit !(a > 0.85) }' || fail "one epoch on the GPU reached test accuracy '$acc' (want > 0.85)"
  # The checkpoint carries the device: --resume continues the run on the GPU.
  "$sgdx" train --data "$data" --resume "$tmp/run.ckpt" --epochs 2 --save "" | tee "$tmp/resumed.txt"
  grep -q 'kernels cuda' "$tmp/resumed.txt" || fail "--resume of a GPU run did not continue on the GPU"
  grep -q '^resuming from .* at epoch 2, batch 0' "$tmp/resumed.txt" || fail "--resume did not start at epoch 2"
  grep -q '^test: ' "$tmp/resumed.txt" || fail "--resume of a GPU run did not finish"
fi
echo "ok"
