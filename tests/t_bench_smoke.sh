#!/bin/bash
# t_bench_smoke.sh: the benchmark's correctness half, no timing.  For the
# bench models tiny and digits, and the convolutional dscnn and resnet8
# (against bench/cnnref.c's im2col + sgemm step, to 1e-4), builds bench/bench.c as bench/bench.sh does
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
for name in tiny digits dscnn resnet8; do
	ref=$ROOT/bench/ref.c
	case $name in dscnn | resnet8) ref="-DBENCH_CNN $ROOT/bench/cnnref.c" ;; esac
	d="$tmp/$name"
	mkdir -p "$d"
	"$GRADC" compile "$ROOT/bench/models/$name.nn" -o "$d" --harness bench &&
		"$GRADC" compile "$ROOT/bench/models/$name.nn" -o "$d" --no-fuse --name "${name}_nf" || {
		echo "t_bench_smoke: $name: compile failed"
		fail=1
		continue
	}
	if ! $CC -O2 -DMODEL="$name" -I"$ROOT/runtime" -I"$d" -I"$ROOT/bench" -o "$d/bench" \
		"$ROOT/bench/bench.c" $ref "$d/$name.c" "$d/${name}_nf.c" \
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
