#!/usr/bin/env bash
# ./run test, Cortex-M4 part: the firmware trains on 6,000 MNIST images under
# QEMU (mps2-an386) and must reach the accuracy its ctest asks for; then the
# weights it wrote are evaluated on the host, which must agree exactly.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/device-common.sh"
build_native  # the host half of the cross-check (nothing to do under ./run test)
build_device
model="$DEVICE_BUILD/device/short.safetensors"
rm -f "$model"  # a stale file must not pass the cross-check
say "Cortex-M4 tests under QEMU (ctest, build/cortex-m4)"
ctest --test-dir "$DEVICE_BUILD" --output-on-failure

say "cross-check: the firmware's weights evaluated on the host"
[ -f "$model" ] || die "the firmware did not write $model"
device_line=$(grep -o 'test (t10k): 10000 images: float accuracy .*' "$DEVICE_BUILD/Testing/Temporary/LastTest.log" | head -1)
[ -n "$device_line" ] || die "no test accuracy line in the firmware's output"
# The same C API built for x86: int8 predictions are integer arithmetic, float
# ones the same reference kernels, so both accuracies must match to the image.
host_line=$("$ROOT/build/native/device/sgdx_c_evaluate" "$model" "$MNIST_DIR")
echo "device: $device_line"
echo "host:   $host_line"
[ "$device_line" = "$host_line" ] || die "the host's C API disagrees with the firmware"
# The runtime's own CLI (its safetensors reader and model) on the same file.
cli=$("$ROOT/build/native/sgdx" eval --model "$model" --data "$MNIST_DIR" --kernels scalar | head -1)
echo "sgdx eval: $cli"
device_float=$(sed -n 's/.*float accuracy \([0-9]*\)\.\([0-9]*\)%.*/\1\2/p' <<<"$device_line")
cli_float=$(sed -n 's/.*accuracy 0\.\([0-9]\{4\}\) .*/\1/p' <<<"$cli")
[ -n "$cli_float" ] && [ "$((10#$cli_float))" = "$((10#$device_float))" ] \
  || die "sgdx eval reads the firmware's weights with accuracy $cli_float, the firmware measured $device_float (basis points)"
say "device tests passed"
