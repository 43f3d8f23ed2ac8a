#!/bin/bash
# t_harness.sh: `gradc compile --harness KIND`, the harnesses printed from
# the API's rules (compiler/api.c, compiler/glue.c).
#   compare: a model whose label is declared before its features and
#     whose second input only training reads (so NAME_infer takes fewer
#     inputs than NAME_train_step), built three ways (fused, --no-fuse, f64):
#     the harness builds with -Werror and passes; a NAME_nf of another
#     learning rate makes it fail (it compares, it does not just run);
#   embedded: NAME_glue.h drives embedded/harness.c on the host (mlp);
#   bench: NAME_bench.h's calls (bench/bench.c's) in the API's order, built
#     with -Werror and run on both builds;
#   errors: an unknown kind is a usage error (2); a model without
#     'minimize' an error (1) that writes nothing.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "t_harness: $*"; exit 1; }
RT="$ROOT/runtime"
CC=${CC:-cc}

cat >"$tmp/two.nn" <<'EOF'
model two
batch 4
input y int
input w[3]
input x[5]
param W[3, 5] ~ he
param V[3] ~ ones
o = W @ x
L = cross_entropy(o, y) + sum(V * w * w)
output o
track L
minimize L with sgd(lr = 0.05)
EOF
sed 's/lr = 0.05/lr = 0.5/' "$tmp/two.nn" >"$tmp/two_lr.nn"
d="$tmp/c"
mkdir -p "$d"
"$GRADC" compile "$tmp/two.nn" -o "$d" --harness compare
"$GRADC" compile "$tmp/two.nn" -o "$d" --no-fuse --name two_nf
"$GRADC" compile "$tmp/two.nn" -o "$d" --dtype f64 --name two_d
grep -q 'two_infer(&p, gin2, gout0, NULL)' "$d/two_compare.c" ||
	fail "inference is not called with x alone: $(grep 'two_infer(' "$d/two_compare.c")"
grep -q 'two_train_step(&p, &s, gin0, gin1, gin2, &st, NULL)' "$d/two_compare.c" ||
	fail "the training step does not take y, w, x in declaration order"
grep -q 'int two_infer(const two_params \*p, const two_real \*x, two_real \*o, void \*arena);' \
	"$d/two.h" || fail "the header's NAME_infer differs from the harness's rules"
$CC -std=c99 -Wall -Wextra -Wpedantic -Werror -O1 -I"$RT" -I"$d" "$d/two_compare.c" "$d/two.c" \
	"$d/two_nf.c" "$d/two_d.c" "$RT/gradc_rt.c" -lm -o "$d/h"
"$d/h" >"$d/out.txt" || fail "the harness failed: $(head -5 "$d/out.txt")"
grep -q '^digest [0-9a-f]\{16\}$' "$d/out.txt" || fail "no digest"

# another learning rate in the no-fuse build: the steps must disagree
"$GRADC" compile "$tmp/two_lr.nn" -o "$d" --no-fuse --name two_nf
$CC -std=c99 -O1 -I"$RT" -I"$d" "$d/two_compare.c" "$d/two.c" "$d/two_nf.c" "$d/two_d.c" \
	"$RT/gradc_rt.c" -lm -o "$d/h2"
if "$d/h2" >"$d/out2.txt"; then fail "builds of two learning rates agree"; fi
grep -q 'fused vs no-fuse' "$d/out2.txt" || fail "no fused vs no-fuse failure: $(head -3 "$d/out2.txt")"

# embedded: the glue drives the device harness on the host
e="$tmp/e"
"$GRADC" compile "$ROOT/models/mlp.nn" -o "$e" --harness embedded
cp "$e/mlp_glue.h" "$e/glue.h"
grep -q '#define GLUE_TRAIN(p, s, st) mlp_train_step(p, s, glue_in0, glue_in1, st, NULL)' "$e/glue.h" ||
	fail "GLUE_TRAIN: $(grep GLUE_TRAIN "$e/glue.h")"
$CC -std=c99 -Wall -Wextra -Werror -O1 -I"$RT" -I"$e" "$ROOT/embedded/harness.c" "$e/mlp.c" \
	"$RT/gradc_rt.c" -lm -o "$e/h"
"$e/h" >"$e/out.txt" || fail "the embedded harness failed"
grep -q '^status infer 0' "$e/out.txt" || fail "no inference status"
[ "$(grep -c '^status step' "$e/out.txt")" -ge 3 ] || fail "fewer than 3 steps: $(head "$e/out.txt")"

# bench: bench/bench.c's calls of the model and its --no-fuse build, in the
# API's order (two: the label first, inference reads x alone); the
# reference's view: the first feature input and the label
"$GRADC" compile "$tmp/two.nn" -o "$d" --harness bench
b="$d/two_bench.h"
grep -q '#define BENCH_INFER_GEN(p, i, w) two_infer(p, bench_in2 + (size_t)(i) \* 20, bench_out0\[w\], NULL)' "$b" ||
	fail "BENCH_INFER_GEN: $(grep BENCH_INFER_GEN "$b")"
grep -q '#define BENCH_TRAIN_NF(p, s, i, st) two_nf_train_step(p, s, bench_in0 + (size_t)(i) \* 4, bench_in1 + (size_t)(i) \* 12, bench_in2 + (size_t)(i) \* 20, st, NULL)' "$b" ||
	fail "BENCH_TRAIN_NF: $(grep BENCH_TRAIN_NF "$b")"
grep -q '#define BENCH_X(i) (bench_in1 ' "$b" && grep -q '#define BENCH_Y(i) (bench_in0 ' "$b" &&
	grep -q '#define BENCH_CLASSES 3 ' "$b" || fail "the reference's view: $(grep 'BENCH_[XYC]' "$b")"
"$GRADC" compile "$tmp/two.nn" -o "$d" --no-fuse --name two_nf
cat >"$d/b.c" <<'EOC'
#include <stdint.h>
static unsigned seed = 1;
static float bench_real(void) { return (float)((seed = seed * 1103515245u + 12345u) >> 16) / 65536.0f; }
static int32_t bench_label(int64_t n) { return (int32_t)(seed++ % (unsigned)n); }
#include "two_bench.h"
int main(void)
{
	static two_params p; static two_state s; static two_stats st;
	static two_nf_params pn; static two_nf_state sn; static two_nf_stats stn;
	if (bench_inputs(2)) return 1;
	two_init(&p, &s, 1);
	two_nf_init(&pn, &sn, 1);
	int e = BENCH_TRAIN(GEN, &p, &s, 1, &st) | BENCH_TRAIN(NF, &pn, &sn, 1, &stn);
	e |= BENCH_INFER(GEN, &p, 1, 0) | BENCH_INFER(NF, &pn, 1, 1);
	for (int k = 0; k < BENCH_ON; k++)
		if (!(BENCH_O(0)[k] - BENCH_O(1)[k] < 1e-4f && BENCH_O(1)[k] - BENCH_O(0)[k] < 1e-4f)) e = 9;
	bench_free_inputs();
	return e;
}
EOC
$CC -std=c99 -Wall -Wextra -Werror -O1 -I"$RT" -I"$d" "$d/b.c" "$d/two.c" "$d/two_nf.c" \
	"$RT/gradc_rt.c" -lm -o "$d/b" || fail "the bench glue does not build"
"$d/b" || fail "the bench glue's calls: status $?"

# errors
set +e
"$GRADC" compile "$ROOT/models/mlp.nn" -o "$tmp/u" --harness bogus 2>"$tmp/err"
[ $? -eq 2 ] || fail "--harness bogus: not a usage error"
grep -q "bad --harness 'bogus' (compare, embedded or bench)" "$tmp/err" || fail "usage message: $(head -1 "$tmp/err")"
printf 'model f\ninput x[3]\nparam W[2, 3] ~ he\ny = relu(W @ x)\noutput y\n' >"$tmp/f.nn"
"$GRADC" compile "$tmp/f.nn" --infer-only -o "$tmp/f" --harness compare 2>"$tmp/err"
[ $? -eq 1 ] || fail "--harness on an inference model: not status 1"
grep -q "needs a training build" "$tmp/err" || fail "message: $(head -1 "$tmp/err")"
[ ! -e "$tmp/f/f.c" ] || fail "an error left f.c behind"
# a model without a label: the bench glue says why it cannot serve
printf 'model nl\ninput x[3]\nparam W[2, 3] ~ he\ny = relu(W @ x)\noutput y\nJ = sumsq(y)\nminimize J with sgd(lr = 0.1)\n' >"$tmp/nl.nn"
"$GRADC" compile "$tmp/nl.nn" -o "$tmp/nl" --harness bench || fail "--harness bench on a label-free model"
"$GRADC" compile "$tmp/nl.nn" -o "$tmp/nl" --no-fuse --name nl_nf || fail "nl_nf"
printf '#include "nl.h"\n#include "nl_bench.h"\n' >"$tmp/nl/use.c"
$CC -std=c99 -fsyntax-only -I"$RT" -I"$tmp/nl" "$tmp/nl/use.c" 2>"$tmp/err" &&
	fail "the bench glue of a label-free model compiled"
grep -q 'bench: the reference networks take a feature input and a label and return an output' "$tmp/err" ||
	fail "bench glue message: $(grep error "$tmp/err" | head -1)"
exit 0
