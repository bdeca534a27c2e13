#!/usr/bin/env bash
# Kills a training run with SIGKILL at random moments, resumes it from its
# checkpoint each time, and requires the final model to equal an uninterrupted
# run's bit for bit — and every checkpoint seen on disk to be complete.
# usage: checkpoint_test.sh SGDX MNIST_DIR TMPDIR [KILLS [TRAIN ARGS...]]
# (TRAIN ARGS replace the default "--kernels scalar", e.g. "--model cnn").
set -u
SGDX=$1 DATA=$2 TMP=$3 KILLS=${4:-5}
model=(--kernels scalar)
[ $# -gt 4 ] && model=("${@:5}")
rm -rf "$TMP" && mkdir -p "$TMP"
fail() { echo "FAIL: $*"; echo "checkpoint: 0 passed, 1 failed"; exit 1; }
# The scalar kernels make the logistic model's run slow enough (~0.7 s/epoch) to be
# hit mid-epoch; the networks are slow enough as they are.
# SGD with momentum, unless the TRAIN ARGS choose Adam or AdamW (which refuse --momentum; their lr is PyTorch's 1e-3).
sgd=(--momentum 0.9 --lr 0.1)
[[ " ${model[*]} " == *" --optimizer adam"* ]] && sgd=()
args=(train --data "$DATA" --epochs 2 "${model[@]}" "${sgd[@]}" --seed 7 -q)

"$SGDX" "${args[@]}" --save "$TMP/reference.safetensors" > "$TMP/reference.log" 2>&1 || fail "reference run: $(tail -2 "$TMP/reference.log")"

ck="$TMP/run.ckpt"
kills=0 runs=0
while :; do
  # a resumed run takes its model and settings from the checkpoint (giving them again is refused)
  run=("${args[@]}")
  [ -f "$ck" ] && run=(train --data "$DATA" --epochs 2 -q --resume "$ck")
  "$SGDX" "${run[@]}" --checkpoint "$ck" --checkpoint-every 40 --save "$TMP/final.safetensors" \
    > "$TMP/run-$runs.log" 2>&1 &
  pid=$!
  runs=$((runs + 1))
  if [ $kills -lt "$KILLS" ]; then
    sleep "0.$((RANDOM % 9 + 1))"
    if kill -KILL $pid 2>/dev/null; then
      wait $pid 2>/dev/null
      kills=$((kills + 1))
      # whatever is on disk now must be a whole checkpoint: a dry resume for 0 more epochs reads it fully
      if [ -f "$ck" ]; then
        "$SGDX" train --data "$DATA" --resume "$ck" --epochs 0 --save "" > "$TMP/check.log" 2>&1 \
          || fail "checkpoint after kill $kills is unreadable: $(tail -1 "$TMP/check.log")"
        grep -o 'at epoch [0-9]*, batch [0-9]*' "$TMP/check.log" | sed "s/^/kill $kills: checkpoint /"
      fi
      continue
    fi
  fi
  wait $pid || fail "run $runs exited $?: $(tail -2 "$TMP/run-$((runs - 1)).log")"
  break
done
cmp -s "$TMP/reference.safetensors" "$TMP/final.safetensors" \
  || fail "after $kills kills and $runs runs the final model differs from the uninterrupted run"
echo "killed $kills times, $runs runs; final weights equal the uninterrupted run's bit for bit"
echo "checkpoint: 1 passed, 0 failed"
