#!/bin/bash
# t_golden.sh: generated/ is what the compiler emits now, byte for byte.
# After a deliberate change to the emitter or a model: `make generated`,
# review the diff of C, commit it.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GRADC=$GRADC sh "$ROOT/scripts/regen.sh" "$tmp"
status=0
for f in "$tmp"/*; do
	name=$(basename "$f")
	if ! cmp -s "$f" "$ROOT/generated/$name"; then
		echo "generated/$name differs from what gradc emits now:"
		diff -u "$ROOT/generated/$name" "$f" | head -20 || true
		status=1
	fi
done
for f in "$ROOT"/generated/*; do
	[ -e "$tmp/$(basename "$f")" ] || { echo "generated/$(basename "$f") has no model"; status=1; }
done
[ $status -eq 0 ] && echo "generated/: $(ls "$tmp" | wc -l) files identical"
exit $status
