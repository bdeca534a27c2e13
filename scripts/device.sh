#!/usr/bin/env bash
# ./run device [--model NAME] [N_TRAIN N_VALID N_TEST MIN_ACCURACY] [key=value ...]:
# the full run on an emulated Cortex-M4F (QEMU mps2-an386). Streams the MNIST
# files from the host a batch at a time, trains inside a 248 KB arena (+ 8 KB
# stack = the 256 KB budget), then reports float and int8 accuracy on the
# validation rows 50000+ and the test set, instructions per image, flash and RAM.
#   --model logistic   (default) 50,000 images, batch 32, lr 0.5
#   --model mlp        784-48-10, 2 passes over 50,000 images, batch 8, lr 0.2 -> 0.005
#   --model cnn        the tutorial CNN: trains 1 pass at batch 2 (lr 0.02 -> 0.002,
#                      momentum 0.9), then also runs models/mnist_cnn.safetensors
#                      (trained by `sgdx train`) in float and int8, and the stronger
#                      CNN (models/mnist_lenet.safetensors) with int8 weights alone
#   --model cnn_sequential  the same, as the tutorial's nn.Sequential
#   --model lenet      cannot train in 256 KB (says how much it needs); runs
#                      models/mnist_lenet.safetensors with int8 weights alone
#   --model all        each of the above, then one table
# key=value options go to the firmware (see device/firmware/run_mnist.c), e.g.
# epochs=1 hidden=32 batch=16 lr=0.1 init=FILE.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/device-common.sh"
model=logistic
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) [ $# -ge 2 ] || die "--model needs a name"; model=$2; shift 2 ;;
    --model=*) model=${1#--model=}; shift ;;
    -h|--help) usage_of "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$model" in logistic|mlp|cnn|cnn_sequential|lenet|all) ;; *) die "--model: unknown model '$model' (logistic, mlp, cnn, cnn_sequential, lenet, all)" ;; esac
numbers=() extra=()
for a in "${args[@]}"; do
  if [[ $a == *=* ]]; then extra+=("$a"); else numbers+=("$a"); fi
done
[ ${#numbers[@]} = 0 ] || [ ${#numbers[@]} = 4 ] || die "give all four of N_TRAIN N_VALID N_TEST MIN_ACCURACY, or none"
build_device
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

flash=$(arm-none-eabi-size -A "$DEVICE_ELF" | awk '
  $1 ~ /^\.(isr_vector|text|ARM\.ex|preinit_array|init_array|fini_array|data)/ { n += $2 } END { print n }')

# run NAME N_TRAIN N_VALID N_TEST MIN_ACCURACY [key=value ...]: one firmware run, its log kept.
run() {
  local name=$1; shift
  say "$name on an emulated Cortex-M4F (qemu-system-arm -M mps2-an386 -icount shift=0)"
  local start end status
  start=$(date +%s.%N)
  set +e
  qemu-system-arm -M mps2-an386 -nographic -icount shift=0 \
    -semihosting-config enable=on,target=native -kernel "$DEVICE_ELF" \
    -append "$MNIST_DIR $*" | tee "$logs/$name.log"
  status=${PIPESTATUS[0]}
  set -e
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "host wall time of the emulation: %.1f s\n", b - a }' | tee -a "$logs/$name.log"
  echo "$name" >>"$logs/order"
  # lenet's training is expected to be refused (it does not fit); anything else must pass.
  [ $status = 0 ] || [ "$name" = lenet_train ] || { echo "the firmware reported failure (exit $status)"; failed=1; }
}

# The stronger CNN from `sgdx train`: float weights do not fit, int8 ones alone do.
lenet_int8() { run lenet_int8_only 0 10000 10000 0.98 "init=$ROOT/models/mnist_lenet.safetensors"; }

failed=0
out_dir="$ROOT/build/device-models"
mkdir -p "$out_dir"
one() {
  local m=$1
  local -a n=("${numbers[@]}")
  case "$m" in
    logistic) [ ${#n[@]} = 4 ] || n=(50000 10000 10000 0.90)
              run logistic "${n[@]}" "$out_dir/logistic.safetensors" "${extra[@]}" ;;
    mlp) [ ${#n[@]} = 4 ] || n=(50000 10000 10000 0.96)
         run mlp "${n[@]}" "$out_dir/mlp.safetensors" model=mlp "${extra[@]}" ;;
    cnn|cnn_sequential)
         [ ${#n[@]} = 4 ] || n=(50000 10000 10000 0.90)
         run "$m" "${n[@]}" "$out_dir/$m.safetensors" "model=$m" "${extra[@]}"
         if [ "$m" = cnn ]; then
           run cnn_pretrained 0 10000 10000 0.90 "$out_dir/cnn_pretrained.safetensors" \
             "init=$ROOT/models/mnist_cnn.safetensors"
           lenet_int8
         fi ;;
    lenet) run lenet_train 100 0 100 0.5 model=lenet "${extra[@]}"   # refused: it does not fit
           [ "$model" = all ] || lenet_int8 ;;  # --model all ran it with the cnn
  esac
}
if [ "$model" = all ]; then
  for m in logistic mlp cnn lenet; do one "$m"; done
else
  one "$model"
fi

say "per model (flash $flash bytes for the whole firmware: every model's code is in it)"
printf '%-15s %-9s %-14s %-10s %-12s %-22s %-22s %s\n' model trained "arena+stack" "of 256 KB" "instr/train" "instr/inference f/i8" "test float/int8 %" "valid float/int8 %"
while read -r name; do
  awk -v name="$name" '
    function pct(line, what,   m) { return match(line, what " accuracy [0-9.]+%") ? substr(line, RSTART + length(what) + 10, RLENGTH - length(what) - 11) : "-" }
    /^arena: / { arena = $2 + $6 }
    /^stack high-water: / { stack = $3 }
    /^trained on / { trained = $3; train = $5 }
    /^test \(t10k\): [0-9]+ images:/ { tf = pct($0, "float"); ti = pct($0, "int8") }
    /^validation .*images:/ { vf = pct($0, "float"); vi = pct($0, "int8") }
    /^test \(t10k\): inference/ { inf = match($0, /[0-9]+ instructions\/image float/) ? $4 "/" $(NF - 1) : "-/" $4 }
    /error: .* needs/ { err = $0 }
    END {
      if (err) { sub(/^firmware: error: /, "", err); printf "%-15s %s\n", name, err; exit }
      printf "%-15s %-9s %-14s %-10s %-12s %-22s %-22s %s\n", name, trained ? trained : "-", arena + stack,
             sprintf("%.1f%%", (arena + stack) * 100 / 262144), train ? train : "-", inf, tf "/" ti, vf "/" vi
    }' "$logs/$name.log"
done <"$logs/order"
echo "weights written under build/device-models/"
[ $failed = 0 ] || die "a firmware run reported failure"
