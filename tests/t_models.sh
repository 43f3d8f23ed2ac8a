#!/bin/bash
# t_models.sh: models that once broke the compiler (tests/models/*.nn), each
# compiled with -Werror and gradient-checked on its generated code; a model
# without 'minimize' (the int8 test models of t_quant.sh) compiled with
# --infer-only (gradc check needs a training step).
#   lowrank, paramprod: products of two trainable parameters; fusing each
#   gradient into its update made the two updates wait for each other.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for m in "$ROOT"/tests/models/*.nn; do
	name=$(basename "$m" .nn)
	train=1
	grep -q '^minimize' "$m" || train=0
	if ! "$GRADC" compile "$m" -o "$tmp/$name" $([ $train = 1 ] || echo --infer-only) ||
	   ! $CC -std=c99 -Wall -Wextra -Wpedantic -Werror -I"$ROOT/runtime" -c \
		"$tmp/$name/$name.c" -o "$tmp/$name.o" ||
	   { [ $train = 1 ] && ! "$GRADC" check "$m" > "$tmp/$name.check"; }; then
		echo "FAIL $name"; cat "$tmp/$name.check" 2>/dev/null; fail=1
	else
		echo "ok   $name"
	fi
done
exit $fail
