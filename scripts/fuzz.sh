#!/usr/bin/env bash
# The libFuzzer targets (fuzz/): builds them with clang-14, ASan and UBSan in
# build/sanitize, then runs each for SECONDS (default 60) on a fresh copy of its
# committed corpus (fuzz/corpus/T plus fuzz/regressions/T; those stay untouched).
#   scripts/fuzz.sh [SECONDS] [TARGET...]   TARGET: idx safetensors pgm c_api (default: all)
#   scripts/fuzz.sh --seeds                 rewrites fuzz/corpus from the MNIST files
#   scripts/fuzz.sh --configure             only configures build/sanitize (test-sanitize.sh)
# Prints executions and coverage per target; exits non-zero on any crash, leak,
# timeout or over-limit allocation, naming the reproducer.
source "$(dirname "$0")/lib.sh"
case "${1:-}" in -h|--help) usage_of "$0"; exit 0 ;; esac

# One clang build serves both the fuzz targets and scripts/test-sanitize.sh's
# sanitized test suite, so the xtensor-heavy runtime is compiled once, not twice.
SAN_BUILD="$ROOT/build/sanitize"
ALL_TARGETS=(idx safetensors pgm c_api printout)
# Longest input tried: a few 28x28 digits as IDX, a P2 digit as text (~2 KB),
# the tutorial's 784->10 model (31.5 KB), the tutorial CNN (16 KB).
declare -A MAX_LEN=([idx]=4096 [safetensors]=65536 [pgm]=8192 [c_api]=65536 [printout]=8192)

configure() {
  ensure_apt "${NATIVE_PACKAGES[@]}" clang-14 libclang-rt-14-dev
  # a folder configured otherwise (another compiler, no fuzz targets) is redone
  if [ -f "$SAN_BUILD/build.ninja" ] && ! grep -q '^SGDX_FUZZ:BOOL=ON' "$SAN_BUILD/CMakeCache.txt"; then
    rm -rf "$SAN_BUILD"
  fi
  if [ ! -f "$SAN_BUILD/build.ninja" ]; then
    say "configuring (build/sanitize: clang-14, ASan + UBSan, libFuzzer targets)"
    # RelWithDebInfo: fast enough for the real-MNIST training tests, with lines in reports
    cmake -S "$ROOT" -B "$SAN_BUILD" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSGDX_SANITIZE=ON -DSGDX_FUZZ=ON >/dev/null
  fi
}

build_fuzz() {
  configure
  say "building the fuzz targets (build/sanitize)"
  cmake --build "$SAN_BUILD" -j "$JOBS" --target fuzz_idx fuzz_safetensors fuzz_pgm fuzz_c_api fuzz_printout fuzz_make_seeds
}

# The value of libFuzzer's "NAME: V" field on the last status line that has it.
field() { grep -Eo "$1: [0-9]+" "$2" | tail -1 | awk '{print $2}'; }

# run_target T SECONDS: prints one summary line; returns non-zero on a finding.
run_target() {
  local t=$1 secs=$2 dir="$SAN_BUILD/run/$1" rc=0
  rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$ROOT/fuzz/corpus/$t/"* "$dir/corpus/"
  if compgen -G "$ROOT/fuzz/regressions/$t/*" >/dev/null; then cp "$ROOT/fuzz/regressions/$t/"* "$dir/corpus/"; fi
  local dict=()
  [ -f "$ROOT/fuzz/$t.dict" ] && dict=(-dict="$ROOT/fuzz/$t.dict")
  say "fuzzing $t for ${secs}s"
  # -malloc_limit_mb: no input of at most max_len (<= 64 KB) bytes has a reason to ask for more
  # than 16 MiB at once (the largest legitimate one is ~64 KB); -rss_limit_mb bounds
  # slow growth (leaks; ASan keeps up to 256 MB of freed memory in quarantine).
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$SAN_BUILD/fuzz/fuzz_$t" "${dict[@]}" -max_total_time="$secs" -max_len="${MAX_LEN[$t]}" \
    -rss_limit_mb=1536 -malloc_limit_mb=16 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  local execs cov ft corp
  execs=$(field stat::number_of_executed_units "$dir/log")
  execs=${execs:-$(grep -Eo '^#[0-9]+' "$dir/log" | tail -1 | tr -d '#')}
  cov=$(field cov "$dir/log") ft=$(field ft "$dir/log")
  corp=$(grep -Eo 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$dir/log" | tail -1 | cut -d' ' -f2)
  SUMMARY+=("$(printf '%-12s %10s execs  cov: %-5s ft: %-6s corpus: %s  (%ss, log: %s)' \
    "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$secs" "${dir#"$ROOT"/}/log")")
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$dir/log" >&2
    local unit
    unit=$(grep -Eo '(Test unit|artifact) written to [^ ]+' "$dir/log" | tail -1 | awk '{print $NF}')
    FAILED+=("$t: libFuzzer exited $rc; reproducer: ${unit:-none written (see $dir/log)}; replay: $SAN_BUILD/fuzz/fuzz_$t ${unit:-FILE}")
    return 1
  fi
}

if [ "${1:-}" = --configure ]; then
  configure
  exit 0
fi
if [ "${1:-}" = --seeds ]; then
  build_fuzz
  "$SAN_BUILD/fuzz/fuzz_make_seeds" "$ROOT/fuzz/corpus" "$MNIST_DIR"
  exit 0
fi

secs=${1:-60}
[[ "$secs" =~ ^[0-9]+$ ]] || die "fuzz: SECONDS must be a whole number, not '$secs'"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do [ -n "${MAX_LEN[$t]:-}" ] || die "fuzz: unknown target '$t' (${ALL_TARGETS[*]})"; done

build_fuzz
SUMMARY=() FAILED=()
for t in "${targets[@]}"; do run_target "$t" "$secs" || true; done
say "fuzz summary"
printf '%s\n' "${SUMMARY[@]}"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf 'FUZZ FINDING: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
