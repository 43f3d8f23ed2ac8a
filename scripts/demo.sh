#!/bin/sh
# demo.sh: the main job, end to end (run by `make demo`).
#   1. build gradc and compile models/mlp.nn (the seed network of SPEC 1)
#   2. build a plain C host program against the generated code and train it
#      on real handwritten digits (data/digits.csv), fixed 80/20 split
#   3. show the static memory budget and the generated code's flash / RAM
#   4. compile an inference-only build with the trained parameters baked in
#      as const (as a firmware would ship) and check it predicts the same
#   5. end with the line "test accuracy: 0.XXXX"
# Settings (make variables or environment): EPOCHS (20), BATCH (32),
# LR (the model's), LAMBDA (the model's 1e-4), OPT (sgd | adam), SEED (1).
set -eu
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

case "$OPT" in
sgd) model=models/mlp.nn ;;
adam) model=models/mlp_adam.nn ;;
*) echo "demo: OPT must be sgd or adam" >&2; exit 2 ;;
esac
if [ -n "$LAMBDA" ]; then
	sed "s/^const lambda = .*/const lambda = $LAMBDA/" "$model" > "$OUT/mlp.nn"
	model=$OUT/mlp.nn
fi

echo "== 1. compile $model (batch $BATCH) with gradc"
"$GRADC" compile "$model" --batch "$BATCH" --name mlp -o "$OUT/gen"
echo "   wrote $OUT/gen/mlp.h and $OUT/gen/mlp.c ($(wc -l < "$OUT/gen/mlp.c") lines of C)"
RT="runtime/gradc_rt.c runtime/host/gradc_safetensors.c runtime/host/gradc_csv.c"
$CC -std=c99 -O2 -Iruntime -Iruntime/host -I"$OUT/gen" -o "$OUT/train" \
	examples/digits/train.c "$OUT/gen/mlp.c" $RT -lm

echo
echo "== 2. train on data/digits.csv"
"$OUT/train" data/digits.csv "$OUT" "$EPOCHS" "$LR" "$SEED"

echo
echo "== 3. memory, known before anything runs (gradc report $model --batch $BATCH)"
"$GRADC" report "$model" --batch "$BATCH" | sed -n '3,10p'
kept=$("$GRADC" report "$model" --batch "$BATCH" --json | sed -n 's/.*"kept_bytes": *\([0-9]*\).*/\1/p' | head -n 1)
[ -n "$kept" ] && echo "   training keeps $kept bytes of activations alive for the backward pass"
$CC -std=c99 -O2 -Iruntime -c -o "$OUT/mlp.o" "$OUT/gen/mlp.c"
if command -v size >/dev/null 2>&1; then
	size "$OUT/mlp.o" | awk 'NR == 2 { printf "   generated code (host, -O2): flash %d bytes (text), RAM %d bytes (data + bss: the static arena)\n", $1, $2 + $3 }'
fi

echo
echo "== 4. the firmware build: inference only, parameters baked in as const"
"$GRADC" compile "$model" --infer-only --params "$OUT/mlp.safetensors" --batch 1 \
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
echo "   loss and accuracy curve: $OUT/curve.svg"
echo
"$OUT/infer" "$OUT/test.safetensors"
