#!/bin/bash
# t_bake.sh: `compile --params --infer-only` bakes every value exactly.
#
# A model with two parameters gets values that stress the literals (random
# full mantissas, 0, -0, subnormals, the largest float, the smallest
# subnormal, powers of two, infinities and NaN); a small program compiled
# against the baked build (-Werror, strict flags) compares NAME_baked with
# the file bit for bit, in f32 (the file's F64 rounded once to float) and
# f64.  A finite F64 value beyond float is a clear error (status 1, nothing
# written).  models/deep.nn's 930K values bake too (its literal count is
# checked, not its time).
# Environment: GRADC, ROOT, CC.
set -u
ROOT=${ROOT:-$(pwd)}
GRADC=${GRADC:-$ROOT/build/gradc}
CC=${CC:-cc}
fail=0
bad() {
	echo "t_bake: $*"
	fail=1
}
. "$ROOT/tests/lib.sh"  # $T, need_mkst (its fail() is unused: bad() below)
need_mkst

cat >"$T/bk.nn" <<'EOF'
model bk
batch 2
input x[8]
param W[4, 8] ~ he
param c[4] ~ zeros
o = W @ x + c
output o
EOF
SPECIAL='l=0,-0,1,-1,0.5,1e-45,-1e-45,1.2e-38,1e-40,3.4028234663852886e38,-3.4028234663852886e38,inf,-inf,nan,0.1,-2.75'
"$T/mkst" "$T/p64.st" "W:F64:4,8:rand7" "c:F64:4:$SPECIAL" || exit 1
"$T/mkst" "$T/p32.st" "W:F32:4,8:rand8" "c:F32:4:l=1e-45,-0,inf,0.3" || exit 1

# the checker: NAME_baked against the file, bit for bit
cat >"$T/check.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include "gradc_safetensors.h"
#include BK_H
int main(int argc, char **argv)
{
	gradc_st_file f = {0};
	const char *msg = gradc_st_read(argv[1], &f);
	if (msg || argc != 2) {
		fprintf(stderr, "check: %s\n", msg ? msg : "usage");
		return 2;
	}
	int bad = 0, n = 0;
	const char *names[2] = {"W", "c"};
	const BK_T *vals[2] = {BK.W, BK.c};
	for (int k = 0; k < 2; k++) {
		const gradc_st_tensor *t = gradc_st_find(&f, names[k]);
		size_t cnt = t->nbytes / gradc_st_dtype_size(t->dtype);
		for (size_t i = 0; i < cnt; i++, n++) {
			double v = t->dtype == GRADC_ST_F64 ? ((const double *)t->data)[i]
							    : ((const float *)t->data)[i];
			BK_T want = (BK_T)v, got = vals[k][i];
			if (memcmp(&want, &got, sizeof want)) {
				printf("%s[%zu]: want %a got %a\n", names[k], i, (double)want,
				       (double)got);
				bad = 1;
			}
		}
	}
	gradc_st_free(&f);
	printf("%d values %s\n", n, bad ? "DIFFER" : "identical");
	return bad;
}
EOF

STRICT="-std=c99 -O1 -Wall -Wextra -Wpedantic -Werror -Wcast-align -Wshadow -Wdouble-promotion
	-Wconversion -Wundef"
# bake FILE DTYPE NAME: compile, build the checker, run it
bake() {
	file=$1 dtype=$2 name=$3
	"$GRADC" compile "$T/bk.nn" --infer-only --params "$T/$file" --dtype "$dtype" \
		--name "$name" -o "$T/gen" || { bad "$name: compile failed"; return; }
	ty=float
	[ "$dtype" = f64 ] && ty=double
	# shellcheck disable=SC2086
	$CC $STRICT -I"$ROOT/runtime" -c -o "$T/$name.o" "$T/gen/$name.c" ||
		{ bad "$name: the baked C does not compile cleanly"; return; }
	$CC -std=c99 -O1 -DBK_H="\"$name.h\"" -DBK="${name}_baked" -DBK_T=$ty -I"$T/gen" \
		-I"$ROOT/runtime" -I"$ROOT/runtime/host" -o "$T/check_$name" "$T/check.c" \
		"$T/$name.o" "$ROOT/runtime/gradc_rt.c" "$ROOT/runtime/host/gradc_safetensors.c" -lm ||
		{ bad "$name: checker does not build"; return; }
	out=$("$T/check_$name" "$T/$file") || bad "$name: $out"
	echo "$name ($file, $dtype): $out"
}
bake p64.st f64 bk64
bake p32.st f32 bk32
# an f32 build of F64 values: each rounded once (but not the overflowing ones)
"$T/mkst" "$T/p64f.st" "W:F64:4,8:rand9" "c:F64:4:l=0.1,1e-300,-1e-46,inf" || exit 1
bake p64f.st f32 bk64f
grep -q '0x1.99999ap-4f' "$T/gen/bk64f.c" || bad "0.1 is not the hexadecimal literal of 0.1f"

# a finite F64 beyond float: a clear error, status 1, nothing written
"$T/mkst" "$T/big.st" "W:F64:4,8:rand1" "c:F64:4:l=1,2,1e300,3" || exit 1
rm -rf "$T/gen2"
"$GRADC" compile "$T/bk.nn" --infer-only --params "$T/big.st" -o "$T/gen2" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] || bad "overflow: exit $rc (want 1)"
grep -q "parameter 'c' holds 1e+300 (element 2), out of range for f32 (--dtype f64 takes it)" "$T/err" ||
	bad "overflow message: $(cat "$T/err")"
[ -e "$T/gen2/bk.c" ] || [ -e "$T/gen2/bk.h" ] && bad "overflow: files written"

# deep: 930K values, every one a literal
"$T/mkst" "$T/deep.st" W1:F32:512,784:rand1 W2:F32:512,512:rand2 W3:F32:512,512:rand3 \
	W4:F32:10,512:rand4 || exit 1
"$GRADC" compile "$ROOT/models/deep.nn" --params "$T/deep.st" --infer-only -o "$T/deep" ||
	bad "deep: compile --params failed"
n=$(grep -o '0x[0-9a-f.]*p[-+][0-9]*f' "$T/deep/deep.c" | wc -l)
[ "$n" -ge 930816 ] || bad "deep: $n hexadecimal literals (want 930816 or more)"

[ $fail -eq 0 ] && echo "t_bake: ok"
exit $fail
