#!/bin/bash
# t_runtime.sh: the device runtime (runtime/gradc_rt.c) is strict C99 for
# every compiler at hand (gcc, clang, arm-none-eabi-gcc for a Cortex-M4F if
# installed: `make embedded` installs it), with libm and with
# GRADC_NO_LIBM; it defines no symbol without the gradc_ prefix; and its
# random draws are bit-identical across compilers, optimization levels and
# -march=native (where the FMA contraction would otherwise change them).
set -u
cd "${ROOT:-.}" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
FLAGS="-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
	-Wdouble-promotion -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes -Werror"

check_symbols() {  # OBJECT: every defined global symbol starts with gradc_
	local bad
	bad=$(nm -g --defined-only "$1" | awk '{print $3}' | grep -v '^gradc_')
	if [ -n "$bad" ]; then
		echo "FAIL: symbols without the gradc_ prefix in $1: $bad"
		fail=1
	fi
}

for cc in gcc clang; do
	if ! command -v "$cc" >/dev/null; then
		echo "note: $cc not installed, not checked"
		continue
	fi
	for def in "" -DGRADC_NO_LIBM; do
		# shellcheck disable=SC2086
		if $cc $FLAGS -O2 $def -c runtime/gradc_rt.c -o "$tmp/rt.o"; then
			echo "ok: $cc -std=c99 $def"
			check_symbols "$tmp/rt.o"
		else
			echo "FAIL: $cc -std=c99 $def"
			fail=1
		fi
	done
done

ARM="arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
if command -v arm-none-eabi-gcc >/dev/null; then
	# shellcheck disable=SC2086
	if $ARM $FLAGS -Os -DGRADC_NO_LIBM -c runtime/gradc_rt.c -o "$tmp/arm.o"; then
		echo "ok: arm-none-eabi-gcc (Cortex-M4F) -DGRADC_NO_LIBM"
		check_symbols "$tmp/arm.o"
	else
		echo "FAIL: arm-none-eabi-gcc -DGRADC_NO_LIBM"
		fail=1
	fi
else
	echo "note: arm-none-eabi-gcc not installed, not checked (make embedded)"
fi

# the same draws from every build
cat >"$tmp/draws.c" <<'C'
#include <stdio.h>
#include "gradc_rt.h"
int main(void)
{
	gradc_rng r;
	double d[3];
	float f[3];
	for (uint64_t s = 0; s < 200; s++) {
		gradc_rng_seed(&r, s, s % 7);
		gradc_normal_f64(d, 3, 0.5, 2.0, &r);
		gradc_uniform_f32(f, 3, -0.7, 0.3, &r);
		printf("%a %a %a %a %a %a\n", d[0], d[1], d[2], f[0], f[1], f[2]);
	}
	return 0;
}
C
builds=("gcc -O0" "gcc -O3 -march=native -std=gnu99" "gcc -O2 -DGRADC_NO_LIBM"
	"clang -O0" "clang -O3 -march=native")
i=0
for b in "${builds[@]}"; do
	cc=${b%% *}
	command -v "$cc" >/dev/null || continue
	# shellcheck disable=SC2086
	if ! { $b -Iruntime -o "$tmp/draws$i" "$tmp/draws.c" runtime/gradc_rt.c -lm &&
		"$tmp/draws$i" >"$tmp/out$i"; }; then
		echo "FAIL: build or run with $b"
		fail=1
	elif [ "$i" -gt 0 ] && ! cmp -s "$tmp/out0" "$tmp/out$i"; then
		echo "FAIL: draws differ between '${builds[0]}' and '$b'"
		fail=1
	else
		echo "ok: draws identical with $b"
	fi
	i=$((i + 1))
done
exit $fail
