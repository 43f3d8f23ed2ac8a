#!/bin/bash
# t_target.sh: --target picks a row of target.c's table.
#
# - every row's output (and portable's under each GRADC_KERNELS) compiles
#   with -Werror: gcc and clang, and arm-none-eabi-gcc for the Cortex-M
#   rows and portable (when installed); mlp on every row, ops (every
#   operator) on portable (each shape) and cortex-m4;
# - every register shape computes what portable computes: `gradc run` of
#   two training steps (outputs, tracked values, parameters) of mlp (batch
#   32 and 1: the lane form with its side sum) and cancer, for the rows
#   x86-64-v4, x86-64-v3 and cortex-m4 and for portable compiled with each
#   shape's kernels (CC="cc -DGRADC_KERNELS=N"), against portable's, to
#   relative 1e-4 of each tensor's largest value (float reassociation);
# - portable compiled for AVX-512 (GRADC_KERNELS 3) is the x86-64-v4 file
#   (the same preprocessed C but the banner); x86-64-v4 and x86-64-v3
#   outputs differ (their own tiles);
# - the arena alignment is the row's (64 on x86, 8 on Cortex-M: the seed's
#   training arena shrinks), report prints it;
# - native is a row; an unknown target is a usage error that lists them.
set -u
. "${ROOT:-$PWD}/tests/lib.sh"
need_mkst

ROWS="portable x86-64-v4 x86-64-v3 cortex-m4 cortex-m7 cortex-m55 native"
WARN="-std=c99 -Wall -Wextra -Wpedantic -Werror -O2"
ARM="arm-none-eabi-gcc --specs=picolibc.specs -mthumb -mfloat-abi=hard"

# ---- every row compiles -Werror
for m in mlp ops; do
	rows=$ROWS
	[ $m = ops ] && rows="portable cortex-m4"  # every operator: one file of each kind
	for t in $rows; do
		"$GRADC" compile "$ROOT/models/$m.nn" -o "$T/$t" --target "$t" || fail "$m --target $t: compile"
		grep -q "Regenerate: gradc compile .* --target $t" "$T/$t/$m.c" ||
			[ "$t" = portable ] || fail "$m --target $t: the banner does not name the target"
		$CC $WARN -I"$ROOT/runtime" -c "$T/$t/$m.c" -o "$T/o.o" || fail "$m --target $t: $CC -Werror"
		case $t in
		portable | x86-64-v3 | cortex-m4)  # one row of each shape
			if command -v clang >/dev/null; then
				clang $WARN -I"$ROOT/runtime" -c "$T/$t/$m.c" -o "$T/o.o" ||
					fail "$m --target $t: clang -Werror"
			fi ;;
		esac
		case $t in
		cortex-m4 | portable) cpu="-mcpu=cortex-m4 -mfpu=fpv4-sp-d16" ;;
		cortex-m7) cpu="-mcpu=cortex-m7 -mfpu=fpv5-d16" ;;
		cortex-m55) cpu="-mcpu=cortex-m55" ;;
		*) cpu="" ;;
		esac
		if [ -n "$cpu" ] && command -v arm-none-eabi-gcc >/dev/null; then
			$ARM $cpu $WARN -Wcast-align=strict -Wdouble-promotion -I"$ROOT/runtime" \
				-c "$T/$t/$m.c" -o "$T/o.o" || fail "$m --target $t: arm-none-eabi-gcc -Werror"
		fi
	done
	for k in 1 2 3; do
		$CC $WARN -DGRADC_KERNELS=$k -I"$ROOT/runtime" -c "$T/portable/$m.c" -o "$T/o.o" ||
			fail "$m portable, GRADC_KERNELS=$k: -Werror"
	done
	grep -q "#if GRADC_KERNELS == 3" "$T/portable/$m.c" || fail "$m portable: no kernels per shape"
	[ $m = mlp ] && grep -q "GRADC_KERNELS" "$T/x86-64-v3/$m.c" &&
		fail "$m x86-64-v3: carries other shapes' kernels"
done
"$GRADC" compile "$ROOT/models/ops.nn" -o "$T/x86-64-v4" --target x86-64-v4 || fail "ops: x86-64-v4"

# ---- portable for AVX-512 is the x86-64-v4 file
pre() { $CC -E -P -DGRADC_KERNELS=3 -I"$ROOT/runtime" "$1" | grep -v '^\s*$'; }
pre "$T/portable/ops.c" >"$T/p.i"
pre "$T/x86-64-v4/ops.c" >"$T/v4.i"
cmp -s "$T/p.i" "$T/v4.i" || fail "portable under GRADC_KERNELS 3 is not the x86-64-v4 code"
cmp -s "$T/x86-64-v4/mlp.c" "$T/x86-64-v3/mlp.c" && fail "x86-64-v3 emits x86-64-v4's kernels"

# ---- every row agrees with portable
# (agree: lib.sh)
mkst "$T/mlp.in" x:F32:32,64:rand1 y:I32:32:mod10
mkst "$T/mlp1.in" x:F32:1,64:rand2 y:I32:1:mod10
mkst "$T/cancer.in" x:F32:8,30:rand3 t:F32:8,1:rand4
for c in "mlp mlp" "mlp1 mlp --batch 1" "cancer cancer"; do
	set -- $c
	id=$1 nn="$ROOT/models/$2.nn"
	shift 2
	"$GRADC" run "$nn" "$@" --in "$T/$id.in" --steps 2 --out "$T/$id.portable.st" >/dev/null ||
		fail "$id: run portable"
	# the rows of other shapes (cortex-m7, m55 and native share these)
	for t in x86-64-v4 x86-64-v3 cortex-m4; do
		"$GRADC" run "$nn" "$@" --in "$T/$id.in" --steps 2 --target "$t" --out "$T/$id.$t.st" \
			>/dev/null || fail "$id: run --target $t"
		agree "$T/$id.portable.st" "$T/$id.$t.st" || fail "$id --target $t differs from portable"
	done
	# portable with the other shapes' kernels (the host's default is 2)
	for k in 1 3; do
		CC="$CC -DGRADC_KERNELS=$k" "$GRADC" run "$nn" "$@" --in "$T/$id.in" --steps 2 \
			--out "$T/$id.k$k.st" >/dev/null || fail "$id: run portable with GRADC_KERNELS=$k"
		agree "$T/$id.portable.st" "$T/$id.k$k.st" || fail "$id: GRADC_KERNELS=$k differs from portable"
	done
done

# ---- alignment per row; report states it
a64=$("$GRADC" report "$ROOT/models/mlp.nn" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["train"]["arena_bytes"])')
a8=$("$GRADC" report "$ROOT/models/mlp.nn" --json --target cortex-m4 | python3 -c 'import json,sys; print(json.load(sys.stdin)["train"]["arena_bytes"])')
[ "$a8" -lt "$a64" ] || fail "the Cortex-M4 training arena ($a8) is not below the 64-byte aligned one ($a64)"
"$GRADC" report "$ROOT/models/mlp.nn" --target x86-64-v3 | grep -q "arena alignment 64 bytes" ||
	fail "report does not state x86-64-v3's alignment"
"$GRADC" report "$ROOT/models/mlp.nn" --target cortex-m7 | grep -q "arena alignment 8 bytes" ||
	fail "report does not state cortex-m7's alignment"
grep -q "mlp_arena\[$a8\]\|mlp_ARENA_BYTES $a8" "$T/cortex-m4/mlp.h" "$T/cortex-m4/mlp.c" ||
	fail "the cortex-m4 build's arena is not $a8 bytes"

# ---- unknown target: a usage error naming the rows, nothing written
out=$("$GRADC" compile "$ROOT/models/mlp.nn" -o "$T/x" --target vax 2>&1)
st=$?
[ $st -eq 2 ] || fail "unknown target: status $st, expected 2"
echo "$out" | grep -q "unknown target 'vax' (known: portable, x86-64-v4, x86-64-v3, cortex-m4, cortex-m7, cortex-m55, native)" ||
	fail "message: $out"
[ ! -e "$T/x" ] || fail "an unknown target wrote output"

[ $fails -eq 0 ] && echo "t_target: ok"
[ $fails -eq 0 ]
