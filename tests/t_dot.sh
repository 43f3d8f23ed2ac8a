#!/bin/bash
# t_dot.sh: `gradc dot` and the -d pass dumps, as a user reads them.
# dot: one digraph with a forward and a backward cluster, every parameter a
# box, every update a pink box, and an edge for each input of each node;
# a model without minimize has no backward cluster.  -d LETTERS: one
# "## after PASS" dump per letter and mode on stderr, stdout untouched; m
# shows arena offsets and live ranges.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "t_dot: $*"; exit 1; }

"$GRADC" dot "$ROOT/models/mlp.nn" >"$tmp/mlp.dot"
d="$tmp/mlp.dot"
head -1 "$d" | grep -q '^digraph "mlp" {$' || fail "no digraph header"
[ "$(tail -1 "$d")" = "}" ] || fail "the graph is not closed"
grep -q 'subgraph cluster_forward' "$d" || fail "no forward cluster"
grep -q 'subgraph cluster_backward' "$d" || fail "no backward cluster"
for p in W1 W2; do
	grep -q "label=\"$p: param.*shape=box.*fillcolor=orange" "$d" || fail "param $p is not an orange box"
	grep -q "label=\"update_$p: sgd_step.*fillcolor=pink" "$d" || fail "no update box for $p"
done
grep -q 'label="dW1: add' "$d" || fail "the gradient dW1 is not named"
grep -q 'label="J: add.*doubleoctagon' "$d" || fail "the objective is not marked"
# every edge joins two declared nodes
awk '/ -> /{gsub(/;/,""); e[$1]; e[$3]} /\[label=/{n[$1]} END{for (x in e) if (!(x in n)) {print x; exit 1}}' \
	"$d" >"$tmp/undeclared" || fail "edge to an undeclared node $(cat "$tmp/undeclared")"
[ "$(grep -c ' -> ' "$d")" -ge 20 ] || fail "too few edges"

printf 'model f\ninput x[3]\nparam W[2, 3] ~ he\ny = relu(W @ x)\noutput y\n' >"$tmp/f.nn"
"$GRADC" dot "$tmp/f.nn" >"$tmp/f.dot"
grep -q cluster_backward "$tmp/f.dot" && fail "a model without minimize has a backward cluster"

"$GRADC" compile "$ROOT/models/mlp.nn" -o "$tmp/out" -d plaosm 2>"$tmp/dump" >"$tmp/stdout"
[ -s "$tmp/stdout" ] && fail "-d wrote to stdout"
for p in "parse (forward)" "lower (forward)" "autodiff (train)" "optimize (train)" \
	"schedule (infer)" "plan (grad)"; do
	grep -q "^## after $p" "$tmp/dump" || fail "no dump after $p"
done
grep -q "^%2 = param  \[32, 64\]  'W1'" "$tmp/dump" || fail "the dump does not list W1"
grep -q "'o'  @[0-9]*+1280 \[[0-9]*,[0-9]*\]" "$tmp/dump" || fail "the plan dump lacks offsets and ranges"
diff <(grep -v Regenerate "$tmp/out/mlp.c") <(grep -v Regenerate "$ROOT/generated/mlp.c") >/dev/null || fail "-d changed the output"
echo "t_dot: ok"
