#!/bin/bash
# t_bench_smoke.sh: the benchmark's correctness half, no timing.  For the
# bench models tiny and digits, builds bench/bench.c as bench/bench.sh does
# and runs its check: one training step of the generated code, of the
# --no-fuse build and of the OpenBLAS reference give the same parameters,
# objective and inference outputs.  Skipped (passes) without OpenBLAS.
# Never asserts on time.
set -u
ROOT=${ROOT:-$(pwd)}
GRADC=${GRADC:-$ROOT/build/gradc}
CC=${CC:-cc}
if ! echo '#include <cblas.h>' | $CC -E - >/dev/null 2>&1 ||
	! echo 'int main(void){return 0;}' | $CC -x c - -lopenblas -o /dev/null 2>/dev/null ||
	! echo '#include <valgrind/callgrind.h>' | $CC -E - >/dev/null 2>&1; then
	echo "t_bench_smoke: skipped (no OpenBLAS or valgrind headers; make bench installs them)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for name in tiny digits; do
	d="$tmp/$name"
	mkdir -p "$d"
	"$GRADC" compile "$ROOT/bench/models/$name.nn" -o "$d" &&
		"$GRADC" compile "$ROOT/bench/models/$name.nn" -o "$d" --no-fuse --name "${name}_nf" || {
		echo "t_bench_smoke: $name: compile failed"
		fail=1
		continue
	}
	if ! $CC -O2 -DMODEL="$name" -I"$ROOT/runtime" -I"$d" -I"$ROOT/bench" -o "$d/bench" \
		"$ROOT/bench/bench.c" "$ROOT/bench/ref.c" "$d/$name.c" "$d/${name}_nf.c" \
		"$ROOT/runtime/gradc_rt.c" -lopenblas -lm 2>"$d/cc.txt"; then
		echo "t_bench_smoke: $name: build failed: $(head -5 "$d/cc.txt")"
		fail=1
		continue
	fi
	if ! OPENBLAS_NUM_THREADS=1 "$d/bench" >"$d/out.txt" 2>&1; then
		echo "t_bench_smoke: $name: $(cat "$d/out.txt")"
		fail=1
	fi
done
exit $fail
