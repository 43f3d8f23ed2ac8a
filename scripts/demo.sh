#!/bin/sh
# demo.sh: the main job, end to end (run by `make demo`), the way a user
# drives it: no C written for training.
#   1. split data/digits.csv (every fifth row, 360, is the test set) and train
#      the seed network (models/mlp.nn; MODEL=cnn: models/cnn.nn) with
#      `gradc train`: pixels standardized, one line per epoch, parameters,
#      blob and curve saved
#   2. `gradc eval` on the test set: accuracy, confusion matrix, predictions
#   3. show the static memory budget and the generated code's flash / RAM;
#      a training build (statistics baked) reloads the blob: same predictions
#   4. compile an inference-only build with the trained parameters baked in
#      as const (as a firmware would ship; it takes raw pixels) and check it
#      predicts the same
#   5. the int8 build of the same model (--quantize int8, calibrated on a
#      quarter of the training images): its accuracy beside the float
#      build's, flash and RAM of both
#   6. end with the line "test accuracy: 0.XXXX"
# Settings (make variables or environment): MODEL (mlp | cnn: the seed
# network or models/cnn.nn, the small convolutional network), EPOCHS (20),
# BATCH (32), LR (the model's), LAMBDA (the model's 1e-4), OPT (sgd | adam,
# mlp only), SEED (1).
set -eu
MODEL=${MODEL:-mlp}
EPOCHS=${EPOCHS:-20}
BATCH=${BATCH:-32}
LR=${LR:-0}
LAMBDA=${LAMBDA:-}
OPT=${OPT:-sgd}
SEED=${SEED:-1}
CC=${CC:-cc}
OUT=build/demo
GRADC=build/gradc
mkdir -p "$OUT"

case "$MODEL/$OPT" in
mlp/sgd) model=models/mlp.nn ;;
mlp/adam) model=models/mlp_adam.nn ;;
cnn/sgd) model=models/cnn.nn ;;
cnn/*) echo "demo: MODEL=cnn trains with sgd (OPT=sgd)" >&2; exit 2 ;;
mlp/*) echo "demo: OPT must be sgd or adam" >&2; exit 2 ;;
*) echo "demo: MODEL must be mlp or cnn" >&2; exit 2 ;;
esac
if [ -n "$LAMBDA" ]; then
	sed "s/^const lambda = .*/const lambda = $LAMBDA/" "$model" > "$OUT/$MODEL.nn"
	model=$OUT/$MODEL.nn
fi
lr=""
[ "$LR" != 0 ] && lr="--lr $LR"

echo "== 1. train $model on data/digits.csv with gradc train"
awk 'NR % 5 != 1' data/digits.csv > "$OUT/train.csv"
awk 'NR % 5 == 1' data/digits.csv > "$OUT/test.csv"
# shellcheck disable=SC2086 # $lr is empty or two words
"$GRADC" train "$model" --data "$OUT/train.csv" --val "$OUT/test.csv" --standardize \
	--epochs "$EPOCHS" --batch "$BATCH" --seed "$SEED" $lr \
	--out "$OUT/$MODEL.safetensors" --blob "$OUT/$MODEL.blob" --plot "$OUT/curve.svg" \
	--log "$OUT/log.csv"

echo
echo "== 2. evaluate on the 360 test digits with gradc eval"
"$GRADC" eval "$model" --data "$OUT/test.csv" --params "$OUT/$MODEL.safetensors" \
	--batch "$BATCH" --pred "$OUT/pred.csv"

echo
echo "== 3. memory, known before anything runs (gradc report $model --batch $BATCH)"
"$GRADC" report "$model" --batch "$BATCH" | sed -n '3,10p'
kept=$("$GRADC" report "$model" --batch "$BATCH" --json | sed -n 's/.*"kept_bytes": *\([0-9]*\).*/\1/p' | head -n 1)
[ -n "$kept" ] && echo "   training keeps $kept bytes of activations alive for the backward pass"
"$GRADC" compile "$model" --params "$OUT/$MODEL.safetensors" --batch "$BATCH" --name mlp -o "$OUT/gen"
echo "   training build: $OUT/gen/mlp.c ($(wc -l < "$OUT/gen/mlp.c") lines of C)"
RT="runtime/gradc_rt.c runtime/host/gradc_csv.c"
$CC -std=c99 -O2 -Iruntime -c -o "$OUT/mlp.o" "$OUT/gen/mlp.c"
if command -v size >/dev/null 2>&1; then
	size "$OUT/mlp.o" | awk 'NR == 2 { printf "   generated code (host, -O2): flash %d bytes (text + statistics), RAM %d bytes (data + bss: the static arena)\n", $1, $2 + $3 }'
fi
$CC -std=c99 -O2 -Iruntime -Iruntime/host -I"$OUT/gen" -o "$OUT/reload" \
	examples/digits/reload.c "$OUT/gen/mlp.c" $RT -lm
"$OUT/reload" "$OUT/$MODEL.blob" "$OUT/test.csv" "$OUT/pred.csv"

echo
echo "== 4. the firmware build: inference only, parameters baked in as const"
"$GRADC" compile "$model" --infer-only --params "$OUT/$MODEL.safetensors" --batch 1 \
	--name digits -o "$OUT/fw"
$CC -std=c99 -O2 -Iruntime -Iruntime/host -I"$OUT/fw" -o "$OUT/infer" \
	examples/digits/infer.c "$OUT/fw/digits.c" $RT -lm
$CC -std=c99 -O2 -Iruntime -c -o "$OUT/digits.o" "$OUT/fw/digits.c"
if command -v size >/dev/null 2>&1; then
	size "$OUT/digits.o" | awk 'NR == 2 { printf "   inference build: flash %d bytes (text + const parameters), RAM %d bytes\n", $1, $2 + $3 }'
fi
if command -v dot >/dev/null 2>&1; then
	"$GRADC" dot "$model" | dot -Tsvg > "$OUT/graph.svg"
	echo "   computational graph (forward and backward): $OUT/graph.svg"
else
	echo "   (install graphviz for the computational graph as SVG: gradc dot $model | dot -Tsvg)"
fi
echo "   loss and accuracy curve: $OUT/curve.svg (per epoch: $OUT/log.csv)"

echo
echo "== 5. the int8 firmware build: gradc compile --quantize int8, calibrated on training images"
awk 'NR % 4 == 0' "$OUT/train.csv" > "$OUT/calib.csv"
if "$GRADC" compile "$model" --infer-only --params "$OUT/$MODEL.safetensors" --batch 1 \
	--name digits8 --quantize int8 --calib "$OUT/calib.csv" -o "$OUT/fw"; then
	$CC -std=c99 -O2 -Iruntime -Iruntime/host -I"$OUT/fw" -o "$OUT/infer_int8" \
		examples/digits/infer_int8.c "$OUT/fw/digits.c" "$OUT/fw/digits8.c" $RT -lm
	$CC -std=c99 -O2 -Iruntime -c -o "$OUT/digits8.o" "$OUT/fw/digits8.c"
	echo "   calibrated on $(wc -l < "$OUT/calib.csv") training images (every fourth)"
	if command -v size >/dev/null 2>&1; then
		size "$OUT/digits.o" "$OUT/digits8.o" | awk 'NR == 2 { f = $1; r = $2 + $3 }
			NR == 3 { printf "   flash: float build %d bytes, int8 build %d bytes (text + const parameters, host -O2)\n", f, $1
				  printf "   RAM:   float build %d bytes, int8 build %d bytes (data + bss: the static arena)\n", r, $2 + $3 }'
	fi
	"$OUT/infer_int8" "$OUT/test.csv"
else
	echo "   (no int8 build of $model: see the error above)"
fi
echo
"$OUT/infer" "$OUT/test.csv" "$OUT/pred.csv"
