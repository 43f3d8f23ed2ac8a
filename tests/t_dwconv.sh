#!/bin/bash
# t_dwconv.sh: the depthwise tile form (compiler/select_conv.c's
# depthwise_tiles, compiler/emit/dwconv.lua) on every register shape.
#
# tests/models/conv_dwtile.nn (bands of rows with a shorter last band,
# asymmetric padding, a 3 x 2 kernel, stride (2, 1) with two outputs per
# channel, dilation 2, stride 2; a pointwise dW summed over the batch):
# - the portable file carries the form for each shape (its comment line
#   once per shape and kernel), the row form is left for the strided input
#   gradients only;
# - the compare harness (gradc compile --harness compare: the default
#   build against --no-fuse and f64, outputs, gradients, parameters after
#   three steps) passes with the portable file compiled for each shape
#   (-DGRADC_KERNELS=1, 2, 3), built with ASan and UBSan;
# - every --target row of each shape compiles -Werror and `gradc run`
#   with it agrees with portable (two training steps, 1e-4).
set -u
. "${ROOT:-$PWD}/tests/lib.sh"
need_mkst
WARN="-std=c99 -Wall -Wextra -Wpedantic -Werror -O2"
hcc="$CC -O1"
command -v clang >/dev/null 2>&1 && hcc="clang -O0"

m=conv_dwtile
nn="$ROOT/tests/models/$m.nn"
d="$T/$m"
mkdir -p "$d"
"$GRADC" compile "$nn" -o "$d" || fail "$m: compile"
"$GRADC" compile "$nn" -o "$d" --no-fuse --name "${m}_nf" || fail "$m: compile --no-fuse"
"$GRADC" compile "$nn" -o "$d" --dtype f64 --name "${m}_d" || fail "$m: compile f64"
"$GRADC" compile "$nn" -o "$d" --harness compare || fail "$m: --harness compare"

# the form on each shape (portable: 3 under #if, 1 under #elif, 2 under
# #else): the 5 forwards of inference, training and NAME_grad, the 5 weight
# gradients and the input gradients of d1 and d3 (stride 1) of training and
# NAME_grad (those of d2 and d4, strided, keep the row form): 29
for k in 1 2 3; do
	n=$(awk -v k="$k" '/^#(el)?if GRADC_KERNELS == / { on = ($NF == k) } /^#else/ { on = (k == 2) }
		/^#endif/ { on = 0 } on && /depthwise tile form/' "$d/$m.c" | wc -l)
	[ "$n" -eq 29 ] || fail "$m: GRADC_KERNELS $k: $n kernels in the depthwise tile form, expected 29"
done

# the harness with each shape's kernels
for k in 1 2 3; do
	if ! $hcc -std=c99 -Wall -Wextra -Werror -fsanitize=address,undefined \
		-fno-sanitize-recover=all -DGRADC_KERNELS=$k -I"$ROOT/runtime" -I"$d" \
		"$d/${m}_compare.c" "$d/$m.c" "$d/${m}_nf.c" "$d/${m}_d.c" "$ROOT/runtime/gradc_rt.c" \
		-lm -o "$d/h$k" 2>"$d/cc.txt"; then
		fail "$m: harness, GRADC_KERNELS=$k: $(head -5 "$d/cc.txt")"
		continue
	fi
	"$d/h$k" >"$d/h$k.txt" 2>&1 || fail "$m: harness, GRADC_KERNELS=$k: $(head -20 "$d/h$k.txt")"
done


# every shape's row: -Werror, and two steps agreeing with portable
mkst "$T/dw.in" x:F32:2,2,50,45:rand1 t:F32:2,3:rand2
for c in "dw $nn"; do
	set -- $c
	id=$1 model=$2
	base=$(basename "$model" .nn)
	"$GRADC" run "$model" --in "$T/$id.in" --steps 2 --out "$T/$id.portable.st" >/dev/null ||
		fail "$id: run portable"
	for t in x86-64-v4 x86-64-v3 cortex-m4; do
		"$GRADC" compile "$model" -o "$T/$id.$t" --target "$t" || fail "$id --target $t: compile"
		grep -q "depthwise tile form" "$T/$id.$t/$base.c" || fail "$id --target $t: no depthwise tile"
		$CC $WARN -I"$ROOT/runtime" -c "$T/$id.$t/$base.c" -o "$T/o.o" ||
			fail "$id --target $t: $CC -Werror"
		"$GRADC" run "$model" --in "$T/$id.in" --steps 2 --target "$t" --out "$T/$id.$t.st" \
			>/dev/null || fail "$id: run --target $t"
		agree "$T/$id.portable.st" "$T/$id.$t.st" || fail "$id --target $t differs from portable"
	done
done

[ "$fails" -eq 0 ] || exit 1
echo "t_dwconv: ok"
