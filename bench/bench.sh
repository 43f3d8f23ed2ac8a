#!/bin/sh
# bench.sh [MODEL...]: `make bench`.  For each model of bench/models/ (or
# those named), in one process: the generated training step and inference
# against the same model emitted with --no-fuse and against a hand-written
# OpenBLAS reference (bench/ref.c), checked to compute the same step, then
# timed (bench/bench.c says how) with a floor (the bare passes over the
# parameters every step makes); for the small models, the instructions of
# one call under callgrind.  Ends with one line per model:
#   vs-openblas MODEL train RATIO infer RATIO US_TRAIN US_INFER
# (generated median / OpenBLAS median in the same process, then the
# generated medians in µs).  Where the generated code has gradc_rt.h's
# optional vector row sums, a second build without them
# (-DGRADC_NO_VECTOR_EXT) reports its vs-openblas figures in the model's
# section, so the plain C is measured too.
#
# Timing builds: gcc -O3 -march=native, one thread (OPENBLAS_NUM_THREADS=1
# and openblas_set_num_threads(1)).  Callgrind builds: -O3
# -march=x86-64-v3 (valgrind 3.19 stops on AVX-512 instructions).
# Environment: GRADC (default build/gradc), CC (default gcc), BENCH_DIR
# (build directory, default build/bench), PEAK_GFLOPS (default 117, the
# fp32 peak of one Zen 4 core), CG_MODELS (default "tiny digits mnist1").
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GRADC=${GRADC:-$ROOT/build/gradc}
CC=${CC:-gcc}
B=${BENCH_DIR:-$ROOT/build/bench}
PEAK=${PEAK_GFLOPS:-117}
CG_MODELS=${CG_MODELS:-tiny digits mnist1}
MODELS=${*:-tiny digits mnist1 mnist32 wide64 deep32}
export OPENBLAS_NUM_THREADS=1
mkdir -p "$B"
summary="$B/summary.txt"
: >"$summary"
status=0

# build NAME OUT FLAGS...: the bench program of model NAME
build() {
	name=$1 outbin=$2
	shift 2
	$CC -O3 "$@" -DMODEL="$name" -DPEAK_GFLOPS="$PEAK" -I"$ROOT/runtime" \
		-I"$B/$name" -I"$ROOT/bench" -o "$outbin" "$ROOT/bench/bench.c" "$ROOT/bench/ref.c" \
		"$B/$name/$name.c" "$B/$name/${name}_nf.c" "$ROOT/runtime/gradc_rt.c" -lopenblas -lm
}

echo "gradc bench: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $($CC --version | head -1)"
echo "peak $PEAK GFLOP/s (fp32, one core); flags -O3 -march=native; OPENBLAS_NUM_THREADS=1"
for name in $MODELS; do
	nn="$ROOT/bench/models/$name.nn"
	[ -f "$nn" ] || { echo "bench: no model $nn" >&2; exit 2; }
	mkdir -p "$B/$name"
	"$GRADC" compile "$nn" -o "$B/$name"
	"$GRADC" compile "$nn" -o "$B/$name" --no-fuse --name "${name}_nf"
	build "$name" "$B/$name/bench" -march=native
	echo
	if ! "$B/$name/bench" time >"$B/$name/out.txt" 2>&1; then
		status=1
	fi
	grep -v '^vs-openblas' "$B/$name/out.txt" || true
	grep '^vs-openblas' "$B/$name/out.txt" >>"$summary" || echo "vs-openblas $name FAILED" >>"$summary"
	# the same with the plain C where gradc_rt.h's optional vector row sums apply
	if grep -q GRADC_ROWSUM16 "$B/$name/$name.c"; then
		build "$name" "$B/$name/bench_plain" -march=native -DGRADC_NO_VECTOR_EXT
		"$B/$name/bench_plain" time >"$B/$name/plain.txt" 2>&1 || status=1
		sed -n 's/^vs-openblas [^ ]* \(.*\)/  plain C (-DGRADC_NO_VECTOR_EXT), same measures: \1/p' "$B/$name/plain.txt"
	fi
	case " $CG_MODELS " in
	*" $name "*) ;;
	*) continue ;;
	esac
	if ! command -v valgrind >/dev/null 2>&1; then
		echo "callgrind: valgrind not installed"
		continue
	fi
	build "$name" "$B/$name/bench_cg" -march=x86-64-v3
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
