#!/bin/sh
# regen.sh [DIR]: the checked-in output of every model in models/, into DIR
# (default generated/).  `make generated` runs it; tests/t_golden.sh runs it
# into a temporary directory and diffs against generated/.
set -eu
GRADC=${GRADC:-build/gradc}
dir=${1:-generated}
mkdir -p "$dir"
for m in models/*.nn; do
	"$GRADC" compile "$m" -o "$dir"
done
