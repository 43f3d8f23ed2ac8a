#!/bin/bash
# t_quant.sh: int8 inference (--quantize int8, SPEC 4), the way a user
# drives it.
#   1. `run --quantize int8` on tests/models/q8_ops.nn (the dense int8 forms
#      and the float fallback), tests/models/q8_conv.nn (the spatial ones)
#      models/mlp.nn and tests/models/q8_float.nn (every float-fallback
#      formula): gradc itself checks the
#      generated code against its integer evaluator bit for bit (a
#      difference aborts); here OUT is checked against the float build's
#      (close: within 0.06) and for its tensors.
#   2. `compile --quantize int8` output builds with -Wall -Wextra -Wpedantic
#      -Werror; the digits network trained for 3 epochs, int8 beside float
#      (examples/digits/infer_int8.c): the same class on >= 97% of the 360
#      test digits.
#   3. `report --quantize int8` (text and --json, with the code estimate).
#   4. bad calibration data (wrong shape, empty, NaN, Inf, missing tensor,
#      not a file) and unsupported graphs: status 1, a clear message,
#      nothing written; bad usage: status 2.
set -u
cd "$ROOT"
. tests/lib.sh
need_mkst
Q=tests/models/q8_ops.nn

# -- 1. run
mkst "$T/in.st" x:F32:7,16:rand3
mkst "$T/cal.st" x:F32:40,16:rand4
"$GRADC" run $Q --in "$T/in.st" --out "$T/q.st" --quantize int8 --calib "$T/cal.st" ||
	fail "run --quantize int8 q8_ops"
"$GRADC" run $Q --in "$T/in.st" --out "$T/f.st" || fail "run q8_ops (float)"
[ "$(mkst -l "$T/q.st" | tr '\n' ' ')" = "o F32 [7, 6] t F32 [7, 6] s F32 [7, 12] " ] ||
	fail "q8_ops OUT: $(mkst -l "$T/q.st" | tr '\n' ' ')"
for o in o t s; do
	d=$(paste <(mkst -p "$T/q.st" $o) <(mkst -p "$T/f.st" $o) |
		awk '{ d = $1 - $2; d = d < 0 ? -d : d; if (d > m) m = d } END { print m + 0 }')
	awk -v d="$d" 'BEGIN { exit !(d < 0.06) }' || fail "q8_ops: int8 '$o' differs from float by $d"
	echo "q8_ops: int8 '$o' within $d of float"
done
# the spatial forms: convolutions (groups, stride, padding, dilation), pools, residual
# add, concat, global_avgpool
mkst "$T/cin.st" x:F32:3,2,9,8:rand1
mkst "$T/ccal.st" x:F32:20,2,9,8:rand2
"$GRADC" run tests/models/q8_conv.nn --in "$T/cin.st" --out "$T/cq.st" --quantize int8 \
	--calib "$T/ccal.st" || fail "run --quantize int8 q8_conv"
"$GRADC" run tests/models/q8_conv.nn --in "$T/cin.st" --out "$T/cf.st" || fail "run q8_conv"
for o in o g; do
	d=$(paste <(mkst -p "$T/cq.st" $o) <(mkst -p "$T/cf.st" $o) |
		awk '{ d = $1 - $2; d = d < 0 ? -d : d; if (d > m) m = d } END { print m + 0 }')
	awk -v d="$d" 'BEGIN { exit !(d < 0.1) }' || fail "q8_conv: int8 '$o' differs from float by $d"
	echo "q8_conv: int8 '$o' within $d of float"
done
mkst "$T/in2.st" x:F32:5,64:rand1
mkst "$T/cal2.st" x:F32:50,64:rand2
"$GRADC" run models/mlp.nn --in "$T/in2.st" --out "$T/q2.st" --quantize int8 --calib "$T/cal2.st" \
	--seed 3 || fail "run --quantize int8 mlp"
[ "$(mkst -l "$T/q2.st")" = "o F32 [5, 10]" ] || fail "mlp OUT: $(mkst -l "$T/q2.st")"
# every float-fallback formula (abs, leaky_relu, tanh, exp, sqrt, log, clip,
# sigmoid, neg, scale): run insists on the evaluator's bits
"$GRADC" run tests/models/q8_float.nn --in "$T/in.st" --out "$T/qf.st" --quantize int8 \
	--calib "$T/cal.st" || fail "run --quantize int8 q8_float"

# -- 2. compile: the digits, float vs int8
awk 'NR % 5 != 1' data/digits.csv > "$T/train.csv"
awk 'NR % 5 == 1' data/digits.csv > "$T/test.csv"
"$GRADC" train models/mlp.nn --data "$T/train.csv" --standardize --epochs 3 --seed 1 \
	--out "$T/p.st" > /dev/null || fail "train"
"$GRADC" compile models/mlp.nn --infer-only --params "$T/p.st" --batch 1 --name digits -o "$T/fw" ||
	fail "compile float"
"$GRADC" compile models/mlp.nn --infer-only --params "$T/p.st" --batch 1 --name digits8 \
	--quantize int8 --calib "$T/train.csv" -o "$T/fw" -MD || fail "compile int8"
grep -q "train.csv" "$T/fw/digits8.d" || fail "the depfile lacks the calibration file"
$CC -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -Iruntime -Iruntime/host -I"$T/fw" \
	-o "$T/i8" examples/digits/infer_int8.c "$T/fw/digits.c" "$T/fw/digits8.c" \
	runtime/gradc_rt.c runtime/host/gradc_csv.c -lm || fail "int8 build does not compile cleanly"
out=$("$T/i8" "$T/test.csv") || fail "infer_int8"
echo "$out"
same=$(echo "$out" | sed -n 's/.*same class as the float build on \([0-9]*\) of 360.*/\1/p')
[ -n "$same" ] && [ "$same" -ge 350 ] || fail "int8 agrees with float on ${same:-?} of 360 (< 97%)"
$CC -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -Iruntime -I"$T/fw" -c -o "$T/q.o" \
	"$T/fw/digits8.c" || fail "q8 build"

# -- 3. report
r=$("$GRADC" report models/mlp.nn --params "$T/p.st" --quantize int8 --calib "$T/train.csv" --batch 1) ||
	fail "report --quantize"
echo "$r"
echo "$r" | grep -q "^flash: baked parameters (bytes) *[0-9]* *[0-9]*$" || fail "report: no flash line"
echo "$r" | grep -q "^RAM: inference arena (bytes) *[0-9]* *[0-9]*$" || fail "report: no RAM line"
echo "$r" | grep -q "(div) runs in float" || fail "report: no note of the float layers"
echo "$r" | grep -q "^flash: code, estimate (bytes) *- *[1-9][0-9]*$" || fail "report: no code estimate"
j=$("$GRADC" report models/mlp.nn --params "$T/p.st" --quantize int8 --calib "$T/train.csv" --json)
echo "$j" | grep -q '"int8": {"weights_bytes": [0-9]*, "arena_bytes": [0-9]*, "layers": [0-9]*, "code_estimate_bytes": [1-9][0-9]*}' ||
	fail "report --json: $j"

# -- 4. bad input: status 1, a message, nothing written
# expect1 NAME PATTERN ARGS...: gradc ARGS exits 1, stderr matches PATTERN, no $T/bad
expect1() {
	local name=$1 pat=$2
	shift 2
	rm -rf "$T/bad"
	local err st=0
	err=$("$GRADC" "$@" 2>&1 >/dev/null) || st=$?
	[ "$st" -eq 1 ] || fail "$name: status $st, want 1 ($err)"
	echo "$err" | grep -q -- "$pat" || fail "$name: message '$err' lacks '$pat'"
	[ ! -e "$T/bad" ] && [ ! -e "$T/bad.st" ] || fail "$name: wrote output"
}
C="compile models/mlp.nn --infer-only --params $T/p.st --quantize int8 -o $T/bad --calib"
mkst "$T/shape.st" x:F32:5,63:rand1
mkst "$T/empty.st" x:F32:0,64:rand1
mkst "$T/nan.st" x:F32:5,64:v=nan
mkst "$T/inf.st" x:F32:5,64:v=inf
mkst "$T/nox.st" y:I32:5:mod10
printf 'not a file' > "$T/junk.st"
expect1 "wrong shape" "input 'x' has shape \[5, 63\]" $C "$T/shape.st"
expect1 "empty" "the batch is empty" $C "$T/empty.st"
expect1 "NaN" "calibration input 'x' holds nan" $C "$T/nan.st"
expect1 "Inf" "calibration input 'x' holds inf" $C "$T/inf.st"
expect1 "no x" "no calibration tensor 'x'" $C "$T/nox.st"
expect1 "junk" "junk.st" $C "$T/junk.st"
expect1 "missing file" "nope.st" $C "$T/nope.st"
mkst "$T/nan16.st" x:F32:5,16:l=1,2,nan
expect1 "run NaN" "holds nan (element 2)" run $Q --in "$T/in.st" --out "$T/bad.st" --quantize int8 --calib "$T/nan16.st"
expect1 "run bad IN" "input 'x' has shape" run $Q --in "$T/shape.st" --out "$T/bad.st" \
	--quantize int8 --calib "$T/cal.st"
printf 'model m\ninput X[4, 4]\nparam W[4, 4] ~ he\no = W @ X\noutput o\n' > "$T/mat.nn"
mkst "$T/mcal.st" X:F32:3,4,4:rand1
expect1 "matrix product" "mat.nn:4:7: error: --quantize int8: 'matmul' has an int8 form only" \
	run "$T/mat.nn" --in "$T/mcal.st" --out "$T/bad.st" --quantize int8 --calib "$T/mcal.st"

# bad usage: status 2
expect2() {
	local st=0 err
	err=$("$GRADC" "$@" 2>&1 >/dev/null) || st=$?
	[ "$st" -eq 2 ] || fail "usage $*: status $st, want 2"
	echo "$err" | head -1 | grep -q "^gradc: " || fail "usage $*: no message"
}
P="--params $T/p.st"
expect2 compile models/mlp.nn --infer-only $P --quantize int4 --calib "$T/cal2.st"
expect2 compile models/mlp.nn --infer-only $P --quantize int8
expect2 compile models/mlp.nn --infer-only $P --calib "$T/cal2.st"
expect2 compile models/mlp.nn $P --quantize int8 --calib "$T/cal2.st"
expect2 compile models/mlp.nn --infer-only --quantize int8 --calib "$T/cal2.st"
expect2 compile models/mlp.nn --infer-only $P --quantize int8 --calib "$T/cal2.st" --dtype f64
expect2 run models/mlp.nn --in "$T/in2.st" --out "$T/bad.st" --quantize int8 --calib "$T/cal2.st" --steps 2
expect2 report models/mlp.nn --quantize int8 --calib "$T/cal2.st"
expect2 dot models/mlp.nn --quantize int8
expect2 report models/mlp.nn $P
[ "$fails" -eq 0 ] || exit 1
echo "t_quant: ok"
