#!/usr/bin/env bash
# ./run test, install part: `cmake --install` the native and the Cortex-M4 builds
# into fresh prefixes, then build a project outside sgdx against each copy
# (device/examples/consumer: find_package(sgdx) -> sgdx::c, sgdx::runtime) and
# run it, natively and under QEMU; and compile the C example with pkg-config alone.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/device-common.sh"
build_native
build_device
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
consumer="$ROOT/device/examples/consumer"

say "install: native build into a fresh prefix, then an outside project against it"
cmake --install "$ROOT/build/native" --prefix "$work/native" >/dev/null
cmake -S "$consumer" -B "$work/native-build" -G Ninja -DCMAKE_PREFIX_PATH="$work/native" >/dev/null
cmake --build "$work/native-build" >/dev/null
"$work/native-build/c_consumer"
"$work/native-build/cpp_consumer"
[ -x "$work/native/bin/sgdx" ] || die "the CLI was not installed"

say "install: the C API through pkg-config alone (cc -std=c99)"
export PKG_CONFIG_PATH="$work/native/lib/pkgconfig"
# shellcheck disable=SC2046  # pkg-config prints several words
cc -std=c99 -Wall -Werror "$consumer/c_consumer.c" $(pkg-config --cflags --libs --static sgdx-c) -o "$work/pc_consumer"
"$work/pc_consumer"
unset PKG_CONFIG_PATH

say "install: Cortex-M4 build into a fresh prefix, an outside firmware against it, run under QEMU"
cmake --install "$DEVICE_BUILD" --prefix "$work/m4" >/dev/null
[ ! -e "$work/m4/lib/libsgdx_runtime.a" ] || die "the Cortex-M4 prefix should hold the C API alone"
cmake -S "$consumer" -B "$work/m4-build" -G Ninja -DCMAKE_PREFIX_PATH="$work/m4" \
  -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/cortex-m4.cmake" -DBOARD_DIR="$ROOT/device/firmware" \
  -DCMAKE_BUILD_TYPE=MinSizeRel >/dev/null
cmake --build "$work/m4-build" >/dev/null
out=$(timeout 120 qemu-system-arm -M mps2-an386 -nographic -semihosting-config enable=on,target=native \
  -kernel "$work/m4-build/c_consumer.elf")
echo "$out"
grep -q "^c_consumer: ok" <<<"$out" || die "the outside firmware did not report ok"
say "install tests passed"
