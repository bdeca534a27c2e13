#!/usr/bin/env bash
# ./run test, Cortex-M4 part: the firmware trains on 6,000 MNIST images under
# QEMU (mps2-an386) and must reach the accuracy its ctest asks for.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/device-common.sh"
build_device
say "Cortex-M4 tests under QEMU (ctest, build/cortex-m4)"
ctest --test-dir "$DEVICE_BUILD" --output-on-failure
