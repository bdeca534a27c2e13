#!/usr/bin/env bash
# ./run test, Cortex-M4 part: the firmware trains the logistic model, an MLP and
# the tutorial CNN on a few thousand MNIST images under QEMU (mps2-an386), runs a
# CLI-trained CNN in float and int8, and must reach the accuracy each ctest asks
# for; then every run is repeated on the host, which must agree exactly.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/device-common.sh"
build_native  # the host half of the cross-check (nothing to do under ./run test)
build_device
rm -f "$DEVICE_BUILD"/device/*.safetensors  # stale files must not pass the cross-check
say "Cortex-M4 tests under QEMU (ctest, build/cortex-m4)"
ctest --test-dir "$DEVICE_BUILD" --output-on-failure

say "cross-check: every firmware run repeated on the host (same C source), then sgdx eval"
cmake --build "$ROOT/build/native" --target sgdx_run_mnist sgdx_c_evaluate sgdx -j "$JOBS" >/dev/null
python3 "$ROOT/scripts/device_crosscheck.py" "$DEVICE_BUILD" "$ROOT/build/native"
say "device tests passed"
