#!/bin/bash
# t_firmware.sh: what a firmware build needs of the generated C (issue 19).
#
#   1. every model (training and --infer-only builds, f32 and f64) compiles
#      without a warning under the strict flags embedded teams use
#      (-Wcast-align -Wshadow -Wdouble-promotion -Wconversion -Wundef, and
#      -Wcast-align=strict under arm-none-eabi-gcc when it is installed),
#      with gcc and clang;
#   2. -DNAME_NO_STATIC_ARENA leaves NAME_arena out (no such symbol); a NULL
#      arena then returns GRADC_ENOARENA, a caller's arena works;
#   3. blobs (tests/fw_blob.c): a training build's NAME_save_params and
#      NAME_save load into an --infer-only --batch 1 build of another name
#      (NAME_load_params) and give the same outputs; a parameters-only blob
#      does not load as a whole one; another model's blob says "blob made
#      for model 'iris' / layout hash 0x..."; a corrupt one says so.
# Environment: GRADC, ROOT, CC.
set -u
ROOT=${ROOT:-$(pwd)}
GRADC=${GRADC:-$ROOT/build/gradc}
fail=0
bad() {
	echo "t_firmware: $*"
	fail=1
}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
RT="$ROOT/runtime"

STRICT="-std=c99 -O1 -Wall -Wextra -Wpedantic -Werror -Wcast-align -Wshadow -Wdouble-promotion
	-Wconversion -Wundef"
ARM="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 --specs=picolibc.specs"

# 1. strict flags
mkdir -p "$T/gen"
for m in "$ROOT"/models/*.nn; do
	n=$(basename "$m" .nn)
	"$GRADC" compile "$m" -o "$T/gen" &&
		"$GRADC" compile "$m" --infer-only --name "${n}_inf" -o "$T/gen" &&
		"$GRADC" compile "$m" --dtype f64 --name "${n}_f64" -o "$T/gen" ||
		bad "$n: gradc compile failed"
done
# clang with -fsyntax-only: its warnings all come from the front end, and
# code generation at -O1 takes vww_mobilenet's file 130 s (4 s without)
for c in gcc "clang -fsyntax-only"; do
	command -v ${c%% *} >/dev/null 2>&1 || continue
	for f in "$T"/gen/*.c; do
		# shellcheck disable=SC2086
		$c $STRICT -I"$RT" -c -o "$T/o.o" "$f" 2>"$T/warn" ||
			bad "$c: $(basename "$f") is not warning-free: $(head -n 5 "$T/warn")"
	done
	# shellcheck disable=SC2086
	$c $STRICT -I"$RT" -c -o "$T/o.o" "$RT/gradc_rt.c" || bad "$c: gradc_rt.c not warning-free"
done
if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
	for f in "$T"/gen/*.c "$RT/gradc_rt.c"; do
		# shellcheck disable=SC2086
		arm-none-eabi-gcc $STRICT -Wcast-align=strict $ARM -I"$RT" -c -o "$T/o.o" "$f" \
			2>"$T/warn" || bad "arm: $(basename "$f") is not warning-free: $(head -n 5 "$T/warn")"
	done
else
	echo "t_firmware: arm-none-eabi-gcc not installed: -Wcast-align=strict not checked"
fi

# 2, 3: one program with four builds
"$GRADC" compile "$ROOT/models/mlp.nn" -o "$T/b" &&
	"$GRADC" compile "$ROOT/models/mlp.nn" --infer-only --batch 1 --name digits -o "$T/b" &&
	"$GRADC" compile "$ROOT/models/iris.nn" -o "$T/b" &&
	"$GRADC" compile "$ROOT/models/iris.nn" --infer-only --name na -o "$T/b" ||
	bad "gradc compile failed"
# shellcheck disable=SC2086
for f in mlp digits iris na; do
	cc $STRICT -Dna_NO_STATIC_ARENA -I"$RT" -c -o "$T/b/$f.o" "$T/b/$f.c" || bad "$f.c does not compile"
done
nm "$T/b/na.o" | grep -q "na_arena" && bad "-Dna_NO_STATIC_ARENA: na_arena still defined"
nm "$T/b/iris.o" | grep -q "iris_arena" || bad "iris_arena missing without the macro"
# shellcheck disable=SC2086
cc $STRICT -Dna_NO_STATIC_ARENA -I"$T/b" -I"$RT" -o "$T/fw" "$ROOT/tests/fw_blob.c" "$T"/b/*.o \
	"$RT/gradc_rt.c" -lm || bad "tests/fw_blob.c does not build"
"$T/fw" >"$T/out" 2>&1 || bad "fw_blob failed: $(cat "$T/out")"
cat "$T/out"

[ $fail -eq 0 ] && echo "t_firmware: ok"
exit $fail
