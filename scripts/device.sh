#!/usr/bin/env bash
# ./run device [N_TRAIN N_VALID N_TEST MIN_ACCURACY]: the full run on an emulated
# Cortex-M4F. Streams N_TRAIN (default 50,000) MNIST training images from the host
# in batches of 32, trains inside a 256 KB arena, then reports float and int8
# accuracy on the validation rows 50000+ and the test set, instructions per image,
# flash and RAM.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/device-common.sh"
build_device
N_TRAIN=${1:-50000} N_VALID=${2:-10000} N_TEST=${3:-10000} MIN_ACC=${4:-0.90}
say "training on an emulated Cortex-M4F (qemu-system-arm -M mps2-an386 -icount shift=0)"
start=$(date +%s.%N)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
qemu-system-arm -M mps2-an386 -nographic -icount shift=0 \
  -semihosting-config enable=on,target=native -kernel "$DEVICE_ELF" \
  -append "$MNIST_DIR $N_TRAIN $N_VALID $N_TEST $MIN_ACC" | tee "$log"
status=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
stack=$(sed -n 's/^stack high-water: \([0-9]*\) .*/\1/p' "$log")
heap=$(sed -n 's/.* \([0-9]*\) bytes in all (stdio)$/\1/p' "$log")
say "firmware size (arm-none-eabi-size -A)"
arm-none-eabi-size -A "$DEVICE_ELF" | awk -v hw="${stack:-0}" -v heapused="${heap:-0}" '
  $1 ~ /^\.(isr_vector|text|ARM\.ex|preinit_array|init_array|fini_array)/ { flash += $2 }
  $1 == ".data" { flash += $2; ram += $2 }
  $1 == ".bss" { bss = $2; ram += $2 }
  $1 == ".heap" { heap = $2 } $1 == ".stack" { stack = $2 }
  END {
    printf "flash (code + read-only data + .data image): %d bytes\n", flash
    printf "RAM static: %d bytes (.data + .bss, of which the arena is 262144)\n", ram
    printf "RAM reserved: heap %d (stdio only), stack %d\n", heap, stack
    printf "RAM used: %d bytes = static %d + heap %d (stdio) + stack high-water %d\n", ram + heapused + hw, ram, heapused, hw
  }'
awk -v a="$start" -v b="$end" 'BEGIN { printf "host wall time of the emulation: %.1f s\n", b - a }'
[ $status = 0 ] || die "the firmware reported failure (exit $status)"
