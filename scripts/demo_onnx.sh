#!/bin/sh
# demo_onnx.sh: a network trained in PyTorch, fine-tuned on the device build
# (run by `make demo-onnx`; PyTorch is not needed: examples/onnx/ holds the
# exported digits_cnn.onnx and PyTorch's outputs on the test set, written
# by examples/onnx/train_digits.py).
#   1. import it: gradc import writes a readable .nn (one line per ONNX node)
#      and the initializers as safetensors; the last layer (fc2) trainable,
#      everything before it frozen; the loss and SGD added
#   2. check gradc's inference (the .onnx given directly to gradc run)
#      against PyTorch's outputs on the 360 test digits: 1e-4 relative
#   3. the backbone was trained on the digits 0-6 only: evaluate, fine-tune
#      the last layer on all ten classes with gradc train (the generated
#      training step), evaluate again
#   4. the memory of the training build, and an inference-only build with
#      the fine-tuned parameters baked in
# Settings: EPOCHS (20), LR (0.01; SGD with momentum 0.9), SEED (1).
set -eu
EPOCHS=${EPOCHS:-20}
LR=${LR:-0.01}
SEED=${SEED:-1}
CC=${CC:-cc}
OUT=build/demo-onnx
GRADC=build/gradc
EX=examples/onnx
mkdir -p "$OUT"
awk 'NR % 5 != 1' data/digits.csv > "$OUT/train.csv"
awk 'NR % 5 == 1' data/digits.csv > "$OUT/test.csv"

echo "== 1. import $EX/digits_cnn.onnx (trained in PyTorch) with its last layer trainable"
"$GRADC" import "$EX/digits_cnn.onnx" -o "$OUT/digits_cnn.nn" --loss cross_entropy \
	--train fc2.weight,fc2.bias --optimizer "sgd(lr = $LR, momentum = 0.9)"
grep -v '^#' "$OUT/digits_cnn.nn" | sed 's/^/   /'

echo
echo "== 2. gradc's inference against PyTorch's on the 360 test digits"
$CC -std=c99 -O1 -Iruntime/host -o "$OUT/stcmp" "$EX/stcmp.c" runtime/host/gradc_safetensors.c -lm
"$GRADC" run "$EX/digits_cnn.onnx" --in "$EX/digits_cnn.expected.safetensors" --out "$OUT/o.safetensors"
printf '   '
"$OUT/stcmp" "$OUT/o.safetensors" "$EX/digits_cnn.expected.safetensors" 1e-4 o

echo
echo "== 3. fine-tune the last layer on all ten digits with gradc train"
before=$("$GRADC" eval "$OUT/digits_cnn.nn" --data "$OUT/test.csv" \
	--params "$OUT/digits_cnn.safetensors" | sed -n 's/^accuracy: //p')
echo "   test accuracy before: $before (the backbone saw the digits 0-6 only)"
"$GRADC" train "$OUT/digits_cnn.nn" --data "$OUT/train.csv" --val "$OUT/test.csv" \
	--init "$OUT/digits_cnn.safetensors" --epochs "$EPOCHS" --batch 32 --seed "$SEED" \
	--out "$OUT/tuned.safetensors" | sed 's/^/   /'
after=$("$GRADC" eval "$OUT/digits_cnn.nn" --data "$OUT/test.csv" \
	--params "$OUT/tuned.safetensors" | sed -n 's/^accuracy: //p')

echo
echo "== 4. the device builds"
"$GRADC" report "$OUT/digits_cnn.nn" --batch 32 | sed -n '3,10p'
"$GRADC" compile "$OUT/digits_cnn.nn" --infer-only --params "$OUT/tuned.safetensors" --batch 1 \
	-o "$OUT/fw"
$CC -std=c99 -O2 -Iruntime -c -o "$OUT/digits_cnn.o" "$OUT/fw/digits_cnn.c"
if command -v size >/dev/null 2>&1; then
	size "$OUT/digits_cnn.o" | awk 'NR == 2 { printf "   inference build (batch 1, tuned parameters baked in): flash %d bytes, RAM %d bytes\n", $1, $2 + $3 }'
fi
echo
echo "test accuracy before fine-tuning: $before"
echo "test accuracy after fine-tuning: $after"
