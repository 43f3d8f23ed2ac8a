#!/bin/bash
# t_generated.sh: the generated C of every model, compiled and run.
#
# For every model in models/, tests/models/packtail.nn (the packed forward
# products with every tail), tests/models/l2one.nn (batch 1, sumsq(W)
# summed inside the forward products; L2 term and weight_decay in one
# decay factor), tests/models/wdecay.nn (weight_decay alone) and
# tests/models/sgd1.nn (batch 1, SGD without decay: W -= (lr dz[i]) x[j]) and
# tests/models/conv_*.nn (the spatial operators):
#   1. `gradc compile` in six variants (default, --dtype f64, --no-fuse,
#      --infer-only, --name NAME_b3 --batch 3, --no-pack) compiles with gcc
#      (the first three also with clang; t_firmware has clang on the
#      --infer-only build) under -std=c99 -Wall -Wextra -Wpedantic -Wundef
#      -Werror, and the default
#      also with -DGRADC_NO_LIBM (and for a Cortex-M4F with arm-none-eabi-gcc
#      when installed); the header compiles as C++11 (g++ and
#      clang++, also -march=native); compiling twice gives identical bytes;
#   2. no trailing whitespace; every global symbol the .c defines starts
#      with the model's prefix (generated/ is tests/t_golden.sh);
#   3. the comparison harness of gradc (compile --harness compare, printed
#      from the API's rules in compiler/api.c by compiler/glue.c) links the
#      default, --no-fuse and f64 builds into one program, built with
#      ASan/UBSan (clang -O0 where installed, else cc -O1; without -g: GCC's
#      variable tracking on the unrolled kernels would take ten times as
#      long), and checks that they agree (outputs, objective, tracked
#      means, gradients, parameters after three steps), the status paths
#      (bad label, non-finite objective: parameters bit-identical) and
#      save/load (round trip; corrupted or truncated blob refused);
#   4. for a model without convolutions whose kernels use gradc_rt.h's
#      vector row sums, where the C compiler builds them with -march=native
#      (AVX-512): the harness built that way with and without them
#      (-DGRADC_NO_VECTOR_EXT): both pass and their digests (the bits of
#      parameters, gradients, objective, outputs) are equal.
# The models with convolutions are tests/t_generated_conv.sh's (this script
# with GENERATED_SET=conv), so that the two halves run side by side.
# Environment: GRADC (default build/gradc), ROOT.
set -u
ROOT=${ROOT:-$(pwd)}
GRADC=${GRADC:-$ROOT/build/gradc}
RT="$ROOT/runtime"
fail=0
bad() { echo "t_generated: $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

STRICT="-std=c99 -Wall -Wextra -Wpedantic -Wundef -Werror"
compilers=""
for c in gcc clang; do command -v $c >/dev/null 2>&1 && compilers="$compilers $c"; done
[ -n "$compilers" ] || compilers="${CC:-cc}"

# compile_variant NAME DIR FLAGS...: gradc compile of $m, then every compiler
# (ONE_CC=1: the first only; clang gets the default, f64 and --no-fuse
# builds, whose kernels the other variants' are made of)
compile_variant() {
	local name=$1 dir=$2 ccs=$compilers
	[ "${ONE_CC:-0}" = 1 ] && ccs=${compilers%% *}
	shift 2
	mkdir -p "$dir"
	if ! "$GRADC" compile "$m" -o "$dir" "$@" 2>"$dir/err.txt"; then
		bad "$name $*: compile failed: $(head -5 "$dir/err.txt")"
		return 1
	fi
	local f
	for f in "$dir"/*.c; do
		for cc in $ccs; do
			$cc $STRICT -I"$RT" -c "$f" -o "$dir/obj.o" 2>"$dir/cc.txt" ||
				bad "$name $*: $cc: $(head -10 "$dir/cc.txt")"
		done
	done
	return 0
}

# does ${CC:-cc} -march=native build gradc_rt.h's vector row sums here?
rowsum=0
printf '#include "gradc_rt.h"\n#ifndef GRADC_ROWSUM16\n#error no\n#endif\n' >"$tmp/rs.c"
${CC:-cc} -march=native -I"$RT" -c "$tmp/rs.c" -o "$tmp/rs.o" 2>/dev/null && rowsum=1

# the harness: clang builds it with the sanitizers at -O0 in a fifth of the
# time GCC takes at -O1 (UBSan's checks on the unrolled kernels)
hcc="${CC:-cc} -O1"
command -v clang >/dev/null 2>&1 && hcc="clang -O0"

for m in "$ROOT"/models/*.nn "$ROOT"/tests/models/packtail.nn "$ROOT"/tests/models/l2one.nn \
	"$ROOT"/tests/models/wdecay.nn "$ROOT"/tests/models/sgd1.nn "$ROOT"/tests/models/conv_*.nn; do
	# GENERATED_SET=conv: the models with convolutions (t_generated_conv.sh), else the others
	if grep -q 'conv2d(' "$m"; then [ "${GENERATED_SET:-}" = conv ] || continue
	else [ "${GENERATED_SET:-}" != conv ] || continue; fi
	name=$(basename "$m" .nn)
	echo "$name: $(date +%T)"
	d="$tmp/$name"
	compile_variant "$name" "$d/def" || continue
	compile_variant "$name" "$d/f64" --dtype f64 --name "${name}_d"
	compile_variant "$name" "$d/nf" --no-fuse --name "${name}_nf"
	ONE_CC=1 compile_variant "$name" "$d/io" --infer-only
	ONE_CC=1 compile_variant "$name" "$d/b3" --name "${name}_b3" --batch 3
	ONE_CC=1 compile_variant "$name" "$d/np" --name "${name}_np" --no-pack
	for cc in $compilers; do
		$cc $STRICT -DGRADC_NO_LIBM -I"$RT" -c "$d/def/$name.c" -o "$d/nolibm.o" 2>"$d/cc.txt" ||
			bad "$name: $cc -DGRADC_NO_LIBM: $(head -5 "$d/cc.txt")"
	done
	if command -v arm-none-eabi-gcc >/dev/null 2>&1; then  # for a Cortex-M4F
		arm-none-eabi-gcc $STRICT -O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 \
			-DGRADC_NO_LIBM -I"$RT" -c "$d/def/$name.c" -o "$d/arm.o" 2>"$d/cc.txt" ||
			bad "$name: arm-none-eabi-gcc: $(head -5 "$d/cc.txt")"
	fi
	# the header from C++ (C++11: no hex float literals), also with -march=native
	printf '#include "%s.h"\nint main() { return 0; }\n' "$name" >"$d/cxx.cpp"
	for cxx in g++ clang++; do
		command -v $cxx >/dev/null 2>&1 || continue
		for fl in "" -march=native; do
			$cxx -std=c++11 -Wall -Wextra -Wpedantic -Werror $fl -I"$RT" -I"$d/def" -fsyntax-only \
				"$d/cxx.cpp" 2>"$d/cxx.txt" || bad "$name: $cxx -std=c++11 $fl: $(head -5 "$d/cxx.txt")"
		done
	done

	# determinism (generated/ itself is tests/t_golden.sh)
	mkdir -p "$d/again"
	"$GRADC" compile "$m" -o "$d/again" 2>/dev/null
	cmp -s "$d/def/$name.c" "$d/again/$name.c" && cmp -s "$d/def/$name.h" "$d/again/$name.h" ||
		bad "$name: output differs between two runs"

	# text hygiene and the symbol prefix
	grep -n '[[:space:]]$' "$d/def/$name.c" "$d/def/$name.h" | head -3 | while read -r l; do
		bad "$name: trailing whitespace: $l"
	done
	if command -v nm >/dev/null 2>&1; then
		gcc $STRICT -I"$RT" -c "$d/def/$name.c" -o "$d/sym.o" 2>/dev/null &&
			nm -g --defined-only "$d/sym.o" | awk '{print $3}' | grep -v "^${name}_" |
			while read -r s; do bad "$name: global symbol '$s' without the prefix"; done
	fi

	# the harness: fused vs --no-fuse vs f64, status paths, save/load
	grep -q "${name}_train_step" "$d/def/$name.h" || continue
	h="$d/h"
	mkdir -p "$h"
	cp "$d/nf/${name}_nf."[ch] "$d/f64/${name}_d."[ch] "$h/"
	if ! "$GRADC" compile "$m" -o "$h" --harness compare 2>"$h/err.txt"; then
		bad "$name: compile --harness compare: $(cat "$h/err.txt")"
		continue
	fi
	cmp -s "$d/def/$name.c" "$h/$name.c" || bad "$name: --harness changed NAME.c"
	mv "$h/${name}_compare.c" "$h/harness.c"
	if ! $hcc -std=c99 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all \
		-I"$RT" -I"$h" "$h/harness.c" "$h/$name.c" "$h/${name}_nf.c" "$h/${name}_d.c" \
		"$RT/gradc_rt.c" -lm -o "$h/harness" 2>"$h/cc.txt"; then
		bad "$name: harness build: $(head -10 "$h/cc.txt")"
		continue
	fi
	if ! "$h/harness" >"$h/out.txt" 2>&1; then
		bad "$name: harness: $(head -20 "$h/out.txt")"
	fi

	# the vector-extension row sums (gradc_rt.h, AVX-512 only) give the bits
	# of the plain C: the harness with -march=native, with and without them
	# (the dense models': the models with convolutions use the same macro
	# in their dense layers, and their harness takes a minute to build)
	[ "$rowsum" = 1 ] && [ "${GENERATED_SET:-}" != conv ] && grep -q GRADC_ROWSUM16 "$h/$name.c" ||
		continue
	cc=${CC:-cc}
	for v in vec plain; do
		flag=
		[ $v = plain ] && flag=-DGRADC_NO_VECTOR_EXT
		if ! $cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O1 -march=native $flag -I"$RT" -I"$h" "$h/harness.c" \
			"$h/$name.c" "$h/${name}_nf.c" "$h/${name}_d.c" "$RT/gradc_rt.c" -lm \
			-o "$h/harness_$v" 2>"$h/cc.txt"; then
			bad "$name: -march=native $flag harness build: $(head -10 "$h/cc.txt")"
			continue 2
		fi
		"$h/harness_$v" >"$h/out_$v.txt" 2>&1 || bad "$name: -march=native $flag: $(head -20 "$h/out_$v.txt")"
	done
	a=$(grep '^digest' "$h/out_vec.txt") b=$(grep '^digest' "$h/out_plain.txt")
	[ -n "$a" ] && [ "$a" = "$b" ] || bad "$name: vector row sums and plain C differ ($a, $b)"
done
[ "$rowsum" = 1 ] || echo "t_generated: no AVX-512 or no __builtin_shufflevector: vector row sums not tested"
exit $fail
