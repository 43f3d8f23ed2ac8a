#!/bin/sh
# bench.sh [MODEL...]: `make bench`.  For each model of bench/models/ (or
# those named), in one process: the generated training step and inference
# against the same model emitted with --no-fuse and against a hand-written
# OpenBLAS reference (bench/ref.c; for the convolutional models dscnn and
# resnet8, bench/cnnref.c: im2col + sgemm), checked to compute the same step, then
# timed (bench/bench.c says how) with a floor (the bare passes over the
# parameters every step makes); for the small models, the instructions of
# one call under callgrind.  Ends with one line per model:
#   vs-openblas MODEL train RATIO infer RATIO US_TRAIN US_INFER
# (generated / OpenBLAS in the same process, each its fastest sample: the
# least disturbed on a shared machine; then the generated times in µs;
# the tables above also show the medians).  Where the generated code has gradc_rt.h's
# optional vector row sums, a second build without them
# (-DGRADC_NO_VECTOR_EXT) reports its vs-openblas figures in the model's
# section, so the plain C is measured too.
#
# Timing builds: gcc -O3 -march=native, one thread (OPENBLAS_NUM_THREADS=1
# and openblas_set_num_threads(1)).  On a machine with AVX-512 a second
# build of every model, -march=x86-64-v3, measures the AVX2 case in the
# same run, against OpenBLAS's AVX2 kernels (OPENBLAS_CORETYPE=Haswell):
# what a machine without AVX-512 runs; its summary lines are
#   vs-openblas-avx2 MODEL train RATIO infer RATIO US_TRAIN US_INFER
# The header names the CPU and its instruction set; the fp32 peak of one
# core is measured for each build by bench/peak.c (an FMA loop; the best
# of its runs, since a loaded machine only lowers it) and the GFLOP/s
# columns are shares of it.  Callgrind builds: -O3 -march=x86-64-v3
# (valgrind 3.19 stops on AVX-512 instructions).
# Environment: GRADC (default build/gradc), CC (default gcc), BENCH_DIR
# (build directory, default build/bench), PEAK_GFLOPS (a fixed peak for
# every build instead of the measured one), CG_MODELS (default "tiny
# digits mnist1"), BENCH_TARGET (gradc --target, default portable).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GRADC=${GRADC:-$ROOT/build/gradc}
CC=${CC:-gcc}
B=${BENCH_DIR:-$ROOT/build/bench}
TARGET=${BENCH_TARGET:-portable}
CG_MODELS=${CG_MODELS:-tiny digits mnist1}
MODELS=${*:-tiny digits mnist1 mnist32 wide64 deep32 dscnn resnet8}
CNN_MODELS="dscnn resnet8"  # against bench/cnnref.c (im2col + sgemm), not ref.c
export OPENBLAS_NUM_THREADS=1
mkdir -p "$B"
summary="$B/summary.txt"
: >"$summary"
status=0

# build NAME OUT PEAK FLAGS...: the bench program of model NAME
build() {
	name=$1 outbin=$2 peak=$3
	shift 3
	case " $CNN_MODELS " in
	*" $name "*) ref="-DBENCH_CNN $ROOT/bench/cnnref.c" ;;
	*) ref=$ROOT/bench/ref.c ;;
	esac
	# shellcheck disable=SC2086
	$CC -O3 "$@" -DMODEL="$name" -DPEAK_GFLOPS="$peak" -I"$ROOT/runtime" \
		-I"$B/$name" -I"$ROOT/bench" -o "$outbin" "$ROOT/bench/bench.c" $ref \
		"$B/$name/$name.c" "$B/$name/${name}_nf.c" "$ROOT/runtime/gradc_rt.c" -lopenblas -lm
}

# the CPU and its vector instruction set
cpu_field() { grep -m1 "^$1" /proc/cpuinfo | sed 's/.*: //'; }
flags=" $(cpu_field flags) "
case "$flags" in
*" avx512f "*) isa="AVX-512 (x86-64-v4: avx512f$(echo "$flags" | grep -q ' avx512_vnni ' && echo ', avx512_vnni'))" ;;
*" avx2 "*) isa="AVX2 and FMA (x86-64-v3), no AVX-512" ;;
*) isa="no AVX2" ;;
esac
BUILDS=native
case "$flags" in *" avx512f "*) BUILDS="native x86-64-v3" ;; esac
echo "gradc bench: $(cpu_field 'model name') (family $(cpu_field 'cpu family'), model $(cpu_field 'model')), ISA: $isa"
echo "compiler: $($CC --version | head -1); flags -O3 -march=native; OPENBLAS_NUM_THREADS=1; --target $TARGET"
# the peak of one core for each build, measured (or PEAK_GFLOPS)
for b in $BUILDS; do
	if [ -n "${PEAK_GFLOPS:-}" ]; then
		pk=$PEAK_GFLOPS
	else
		$CC -O3 -march=$b -o "$B/peak_$b" "$ROOT/bench/peak.c"
		pk=$("$B/peak_$b" | awk '{ print $2 }')
	fi
	eval "PEAK_$(echo $b | tr -c 'a-z0-9\n' _)=$pk"
	echo "peak, -march=$b: $pk GFLOP/s (fp32, one core, measured by bench/peak.c: an FMA loop)"
done
for name in $MODELS; do
	nn="$ROOT/bench/models/$name.nn"
	[ -f "$nn" ] || { echo "bench: no model $nn" >&2; exit 2; }
	mkdir -p "$B/$name"
	"$GRADC" compile "$nn" -o "$B/$name" --target "$TARGET" --harness bench
	"$GRADC" compile "$nn" -o "$B/$name" --no-fuse --name "${name}_nf"
	build "$name" "$B/$name/bench" "$PEAK_native" -march=native
	echo
	if ! "$B/$name/bench" time >"$B/$name/out.txt" 2>&1; then
		status=1
	fi
	grep -v '^vs-openblas' "$B/$name/out.txt" || true
	grep '^vs-openblas' "$B/$name/out.txt" >>"$summary" || echo "vs-openblas $name FAILED" >>"$summary"
	# the same with the plain C where gradc_rt.h's optional vector row sums apply
	if grep -q GRADC_ROWSUM16 "$B/$name/$name.c"; then
		build "$name" "$B/$name/bench_plain" "$PEAK_native" -march=native -DGRADC_NO_VECTOR_EXT
		"$B/$name/bench_plain" time >"$B/$name/plain.txt" 2>&1 || status=1
		sed -n 's/^vs-openblas [^ ]* \(.*\)/  plain C (-DGRADC_NO_VECTOR_EXT), same measures: \1/p' "$B/$name/plain.txt"
	fi
	# the AVX2 case on an AVX-512 machine: both sides built for AVX2
	if [ "$BUILDS" != native ]; then
		build "$name" "$B/$name/bench_v3" "$PEAK_x86_64_v3" -march=x86-64-v3
		echo "AVX2 build (-march=x86-64-v3; OpenBLAS with OPENBLAS_CORETYPE=Haswell):"
		if ! OPENBLAS_CORETYPE=Haswell "$B/$name/bench_v3" time >"$B/$name/v3.txt" 2>&1; then
			status=1
		fi
		grep -v '^vs-openblas\|^== \|^check:' "$B/$name/v3.txt" | sed 's/^/  /' || true
		sed -n 's/^vs-openblas /vs-openblas-avx2 /p' "$B/$name/v3.txt" >>"$summary"
		grep -q '^vs-openblas' "$B/$name/v3.txt" || echo "vs-openblas-avx2 $name FAILED" >>"$summary"
	fi
	case " $CG_MODELS " in
	*" $name "*) ;;
	*) continue ;;
	esac
	if ! command -v valgrind >/dev/null 2>&1; then
		echo "callgrind: valgrind not installed"
		continue
	fi
	build "$name" "$B/$name/bench_cg" 1 -march=x86-64-v3
	rm -f "$B/$name"/cg.out*
	n=20
	valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$B/$name/cg.out" \
		"$B/$name/bench_cg" cg $n >/dev/null 2>"$B/$name/cg.log" || {
		echo "callgrind: failed, see $B/$name/cg.log"
		continue
	}
	# one dump per implementation: its description names it, 'totals' counts it
	for f in "$B/$name"/cg.out.*; do
		awk -v n=$n '/^desc: Trigger: Client Request:/ { what = $NF }
			/^(totals|summary):/ { if (what != "") printf "%s %d\n", what, $2 / n; what = "" }' "$f"
	done >"$B/$name/cg.txt"
	awk -v m="$name" '{ ir[$1] = $2 }
		END {
			printf "callgrind (-march=x86-64-v3), instructions per call:\n"
			printf "  train: generated %d, no-fuse %d, openblas %d (generated/openblas %.2fx)\n",
				ir["gen-train"], ir["nf-train"], ir["ref-train"], ir["gen-train"] / ir["ref-train"]
			printf "  infer: generated %d, no-fuse %d, openblas %d (generated/openblas %.2fx)\n",
				ir["gen-infer"], ir["nf-infer"], ir["ref-infer"], ir["gen-infer"] / ir["ref-infer"]
		}' "$B/$name/cg.txt"
done
echo
cat "$summary"
exit $status
