#!/bin/bash
# t_onnx.sh: ONNX in (SPEC 4), against PyTorch's own results.
#
# The fixtures in tests/onnx/ were exported by PyTorch 1.13 (gen_fixtures.py,
# gen_bad.py; not needed here; ops.onnx is written with onnx.helper, its
# reference computed by PyTorch).  For every model NAME:
#   - `gradc run NAME.onnx` (imported in memory, the initializers as the
#     parameters) on NAME.in.safetensors: the output matches PyTorch's in
#     f64 to 1e-9 (relative to the largest value) and in f32 to 1e-4;
#   - for the models without BatchNormalization: `gradc import --loss
#     cross_entropy --train all`, then `gradc run --steps 3` of the imported
#     model: objective, every gradient and the parameters after 3 SGD steps
#     match PyTorch's to 1e-9 (f64);
#   - `gradc compile NAME.onnx --infer-only` bakes the initializers in and
#     the C compiles with -Werror.
# Then: the names of names.onnx (SPEC 4's sanitizing, --train by ONNX and by
# .nn name, --loss mse), the defaults of import (OUT beside the .onnx file,
# the model's name), usage errors (status 2), and every file of
# tests/onnx/bad/ with its exact message (NAME.err), status 1, nothing
# written.
set -u
. "${ROOT:-$PWD}/tests/lib.sh"
cd "$ROOT/tests/onnx" || exit 1
$CC -std=c99 -O1 -I"$ROOT/runtime/host" -o "$T/stcmp" "$ROOT/examples/onnx/stcmp.c" \
	"$ROOT/runtime/host/gradc_safetensors.c" -lm || { echo "cannot build stcmp"; exit 1; }

# cmp_st NAME GOT WANT TOL [TENSORS...]
cmp_st() {
	local name=$1
	shift
	if "$T/stcmp" "$@" >"$T/cmp.log" 2>&1; then
		echo "$name: $(awk '{ if ($5 > m) m = $5 } END { printf "%d tensors, largest error %.3g", NR, m }' "$T/cmp.log")"
	else
		fail "$name: results differ"
		cat "$T/cmp.log"
	fi
}

TRAINED="dense dense_op11 dense_op17 relu6 matmul matmul_op17 cnn cnn_op11 cnn_op17 depthwise residual ops"
for m in $TRAINED bn_folded bn_unfolded; do
	for dt in f64 f32; do
		tol=1e-9
		[ $dt = f32 ] && tol=1e-4
		rm -f "$T/o.st"
		if "$GRADC" run $m.onnx --in $m.in.safetensors --out "$T/o.st" --dtype $dt 2>"$T/err"; then
			cmp_st "$m $dt inference" "$T/o.st" $m.ref.safetensors $tol o
		else
			fail "$m: run --dtype $dt"
			cat "$T/err"
		fi
	done
	mkdir -p "$T/gen"
	if "$GRADC" compile $m.onnx --infer-only -o "$T/gen" --name m_$m 2>"$T/err"; then
		grep -q "m_${m}_baked" "$T/gen/m_$m.h" || fail "$m: compile --infer-only baked nothing"
		$CC -std=c99 -Wall -Wextra -Wpedantic -Werror -I"$ROOT/runtime" -c \
			-o "$T/gen/m_$m.o" "$T/gen/m_$m.c" || fail "$m: the generated C does not compile"
	else
		fail "$m: compile --infer-only"
		cat "$T/err"
	fi
done

for m in $TRAINED; do
	if ! "$GRADC" import $m.onnx -o "$T/$m.nn" --loss cross_entropy --train all 2>"$T/err"; then
		fail "$m: import"
		cat "$T/err"
		continue
	fi
	grep -q "frozen" "$T/$m.nn" && fail "$m: --train all left a frozen param"
	rm -f "$T/t.st"
	if "$GRADC" run "$T/$m.nn" --params "$T/$m.safetensors" --in $m.in.safetensors \
		--out "$T/t.st" --dtype f64 --steps 3 2>"$T/err"; then
		cmp_st "$m training" "$T/t.st" $m.ref.safetensors 1e-9
	else
		fail "$m: run --steps 3"
		cat "$T/err"
	fi
done

# ---- names, options, defaults

cp names.onnx "$T/names.onnx"
"$GRADC" import "$T/names.onnx" --train 0.weight,a_b_2 --loss mse || fail "names: import"
nn="$T/names.nn"
[ -f "$T/names.safetensors" ] || fail "names: no names.safetensors beside names.nn"
for want in "^model names$" "^param _0_weight\[4, 3\] ~ he   # initializer '0.weight'$" \
	"^param relu_2\[4\] ~ zeros frozen" "^param a_b\[3, 4\] ~ he frozen" \
	"^param a_b_2\[3\] ~ zeros   # initializer 'a_b'$" "^h_1 = _0_weight @ x + relu_2 " \
	"^h_1_2 = a_b @ h_1 + a_b_2 " "^model_2 = relu(h_1_2)   # node 'act' (Relu)$" \
	"^input t\[3\]   # --loss mse" "^loss = mse(model_2, t)" "^minimize loss with sgd(lr = 0.01)$" \
	"^output model_2$"; do
	grep -q "$want" "$nn" || fail "names: no line '$want' in names.nn"
done
"$GRADC" import names.onnx -o "$T/n2.nn" --name other --optimizer 'adam(lr = 0.001)' \
	--loss cross_entropy --train all || fail "names: import --name"
grep -q "^model other$" "$T/n2.nn" || fail "names: --name"
grep -q "^minimize loss with adam(lr = 0.001)$" "$T/n2.nn" || fail "names: --optimizer"
grep -q "^input y int" "$T/n2.nn" || fail "names: --loss cross_entropy names the label y"
# the imported model compiles and trains as written
"$GRADC" compile "$T/n2.nn" --params "$T/n2.safetensors" -o "$T/gen" || fail "names: compile"

# usage errors: status 2
for args in "" "--loss hinge names.onnx" "names.onnx --bogus" "names.onnx --train" \
	"names.onnx --optimizer sgd(lr=1)" "names.onnx --name 9x" "a.onnx b.onnx" \
	"names.onnx --loss mse" "names.onnx --loss mse --train none"; do
	# shellcheck disable=SC2086 # the words are the arguments
	"$GRADC" import $args >/dev/null 2>&1
	[ $? -eq 2 ] || fail "import $args: not a usage error (status 2)"
done
"$GRADC" import names.onnx -o "$T/x.nn" --train nope 2>"$T/err"
[ $? -eq 1 ] || fail "--train nope: not status 1"
grep -q "error: --train names 'nope', which is no initializer of the model" "$T/err" \
	|| fail "--train nope: message"
[ -e "$T/x.nn" ] || [ -e "$T/x.safetensors" ] && fail "--train nope: wrote files"

# ---- broken and unsupported files: exact messages, status 1, nothing written
cd bad || exit 1
n=0
for f in *.onnx; do
	b=${f%.onnx}
	rm -f "$T/bad.nn" "$T/bad.safetensors"
	"$GRADC" import "$f" -o "$T/bad.nn" 2>"$T/err"
	rc=$?
	[ $rc -eq 1 ] || fail "bad/$f: status $rc, not 1"
	diff -u "$b.err" "$T/err" >"$T/diff" || { fail "bad/$f: message"; cat "$T/diff"; }
	[ -e "$T/bad.nn" ] || [ -e "$T/bad.safetensors" ] && fail "bad/$f: wrote a file"
	# every command reads the file the same way
	"$GRADC" compile "$f" -o "$T/gen2" 2>"$T/err2"
	[ $? -eq 1 ] && diff -q "$b.err" "$T/err2" >/dev/null || fail "bad/$f: compile differs"
	[ -e "$T/gen2" ] && fail "bad/$f: compile wrote a file"
	n=$((n + 1))
done
echo "$n broken files refused"
exit $((fails > 0))
