#!/usr/bin/env bash
# The one native binary on older x86-64 CPUs, emulated by qemu-user: it must pick
# the best kernel set that CPU has, pass the kernel tests there, and train —
# no illegal instruction from an AVX-512 helper leaking into the SSE2 path.
# usage: portable_test.sh SGDX SGDX_TESTS MNIST_DIR
set -u
SGDX=$1 TESTS=$2 DATA=$3
pass=0 fail=0
check() {  # CPU EXPECTED_SET [kernel-tests]
  local cpu=$1 want=$2 out
  out=$(qemu-x86_64 -cpu "$cpu" "$SGDX" --version 2>/dev/null)
  if echo "$out" | grep -q "(using $want)"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $cpu: $out"; fi
  [ -n "${3:-}" ] || return 0
  if qemu-x86_64 -cpu "$cpu" "$TESTS" -tc='*kernel*' -nv > /tmp/portable-$$.log 2>&1; then pass=$((pass + 1))
  else fail=$((fail + 1)); echo "FAIL: $cpu: kernel tests"; tail -5 /tmp/portable-$$.log; fi
}
check core2duo sse2
check Nehalem sse2 kernel-tests
check Haswell avx2
# 10,000 training images (the rest held out) keep the emulated run short
out=$(qemu-x86_64 -cpu Nehalem "$SGDX" train --data "$DATA" --epochs 1 --valid-size 50000 --save '' -q 2>&1)
if echo "$out" | grep -Eq 'accuracy 0\.(8[5-9]|9)'; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: Nehalem training: $out"; fi
rm -f /tmp/portable-$$.log
echo "portable: $pass passed, $fail failed"
[ $fail = 0 ]
