#!/bin/sh
# memory.sh: the static memory figures of every model in models/ (issue 4),
# from `gradc report --json`: arena against its lower bound, the training
# lower bound against a baseline that keeps every parameter gradient to one
# optimizer step at the end, and training RAM against inference RAM.
# `make memory` runs it; the README's table is its output.
set -eu
GRADC=${GRADC:-build/gradc}
printf '%-9s %6s %11s %11s %11s %8s %11s %11s %11s %7s\n' model batch arena arena/LB \
	train_LB baseline saving train_RAM infer_RAM ratio
for m in models/*.nn; do
	"$GRADC" report "$m" --json | awk -v name="$(basename "$m" .nn)" '
	function num(obj, key,   s) {
		s = obj; sub(".*\"" key "\": ", "", s); sub("[,}].*", "", s); return s + 0
	}
	/"batch":/ { b = $0; sub(".*\"batch\": ", "", b); sub(",.*", "", b) }
	/^ "train":/ { t = $0 }
	/^ "infer":/ { i = $0 }
	END {
		lb = num(t, "lower_bound_bytes"); base = num(t, "baseline_lower_bound_bytes")
		printf "%-9s %6d %11d %11.3f %11d %8d %10.1f%% %11d %11d %6.2fx\n", name, b,
		       num(t, "arena_bytes"), num(t, "arena_bytes") / lb, lb, base,
		       100 * (base - lb) / base, num(t, "total_bytes"), num(i, "total_bytes"),
		       num(t, "total_bytes") / num(i, "total_bytes")
	}'
done
