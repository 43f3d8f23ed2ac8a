#!/bin/bash
# t_conv_tile.sh: the tile forms of the standard (groups 1) convolutions on
# every register shape (select_conv.c; emit/conv.lua, conv_dx.lua,
# conv_scalar.lua), for tests/models/conv_stride.nn (strides 2, 3, (2, 3),
# (3, 1), a 1x1 stride-2 projection, dilation, asymmetric padding, odd
# sizes, partial channel blocks; the other conv models' default shape is
# t_generated_conv's):
# - the forms are chosen: the portable file's AVX-512, scalar and AVX2
#   sections each have the stride-phase input gradient (us[nu++]) for
#   conv_stride, and the scalar section the in-place tile (u0/u1 rows);
# - the comparison harness (fused vs --no-fuse vs f64: outputs, objective,
#   gradients, parameters after three steps) passes with the portable file
#   compiled for each shape (-DGRADC_KERNELS=1, 2, 3; -O0 for speed);
# - the x86-64-v4, x86-64-v3 and cortex-m4 rows (one per shape) compile
#   with -O2 -Werror and run two training steps that agree with portable's
#   (gradc run, 1e-4 of each tensor's largest value); arm-none-eabi-gcc
#   -Werror compiles the portable file for a Cortex-M4F where installed.
# (gradc check of conv_stride on the default shape is t_models'.)
set -u
. "${ROOT:-$PWD}/tests/lib.sh"
need_mkst
RT="$ROOT/runtime"
WARN="-std=c99 -Wall -Wextra -Wpedantic -Werror"


# section FILE SHAPE: the lines of FILE outside the other shapes' branches
section() {
	awk -v k="$2" '/^#if GRADC_KERNELS == / { on = ($4 == k); inif = 1; next }
		/^#elif GRADC_KERNELS == / { on = ($4 == k); next }
		/^#else/ && inif { on = (k == 2); next }
		/^#endif/ && inif { inif = 0; next }
		!inif || on' "$1"
}

for m in conv_stride; do
	nn="$ROOT/tests/models/$m.nn"
	d="$T/$m"
	mkdir -p "$d"
	"$GRADC" compile "$nn" -o "$d" --harness compare || { fail "$m: compile"; continue; }
	"$GRADC" compile "$nn" -o "$d" --no-fuse --name "${m}_nf" || fail "$m: --no-fuse"
	"$GRADC" compile "$nn" -o "$d" --dtype f64 --name "${m}_d" || fail "$m: f64"
	for k in 1 2 3; do
		section "$d/$m.c" $k >"$d/k$k.c"
		[ "$(grep -c 'us\[nu++\]' "$d/k$k.c")" -ge 8 ] ||
			fail "$m, shape $k: the strided input gradients are not in the tile form"
	done
	grep -q 'const int u0 = ' "$d/k1.c" || fail "$m: no in-place scalar tile in shape 1"
	for k in 1 2 3; do
		if ! $CC $WARN -O0 -DGRADC_KERNELS=$k -I"$RT" -I"$d" "$d/${m}_compare.c" "$d/$m.c" \
			"$d/${m}_nf.c" "$d/${m}_d.c" "$RT/gradc_rt.c" -lm -o "$d/h$k" 2>"$d/cc.txt"; then
			fail "$m: harness, GRADC_KERNELS=$k: $(head -5 "$d/cc.txt")"
			continue
		fi
		"$d/h$k" >"$d/out$k.txt" 2>&1 || fail "$m: harness, GRADC_KERNELS=$k: $(head -5 "$d/out$k.txt")"
	done
	if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
		arm-none-eabi-gcc $WARN -O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 \
			-DGRADC_NO_LIBM -I"$RT" -c "$d/$m.c" -o "$d/arm.o" 2>"$d/cc.txt" ||
			fail "$m: arm-none-eabi-gcc: $(head -5 "$d/cc.txt")"
	fi
	# the rows of each shape against portable
	batch=$(sed -n 's/^batch //p' "$nn")
	shape=$(sed -n 's/^input x\[\(.*\)\].*/\1/p' "$nn" | tr -d ' ')
	mkst "$T/$m.in" "x:F32:$batch,$shape:rand1" "y:I32:$batch:mod3"
	"$GRADC" run "$nn" --in "$T/$m.in" --steps 2 --out "$d/portable.st" >/dev/null ||
		{ fail "$m: run portable"; continue; }
	for t in x86-64-v4 x86-64-v3 cortex-m4; do
		"$GRADC" compile "$nn" -o "$d/$t" --target $t || fail "$m --target $t: compile"
		$CC $WARN -O2 -I"$RT" -c "$d/$t/$m.c" -o "$d/o.o" || fail "$m --target $t: -Werror"
		"$GRADC" run "$nn" --in "$T/$m.in" --steps 2 --target $t --out "$d/$t.st" >/dev/null ||
			{ fail "$m: run --target $t"; continue; }
		agree "$d/portable.st" "$d/$t.st" || fail "$m --target $t differs from portable"
	done
done
echo "t_conv_tile: $fails failed"
[ $fails = 0 ]
