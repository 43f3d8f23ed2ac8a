# lib.sh: sourced by the tests/t_*.sh scripts that need it (tests/run.sh
# runs only t_*.sh): the defaults of run.sh's environment (GRADC, ROOT, CC),
# a scratch directory $T removed at exit, fail() counting into $fails, and
# mkst (tests/mkst.c, a safetensors writer) built into $T.
GRADC=${GRADC:-$PWD/build/gradc}
ROOT=${ROOT:-$PWD}
CC=${CC:-cc}
export CC
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# tests/mkst as $T/mkst, and mkst() to call it; exit 1 if it does not build
need_mkst() {
	$CC -std=c99 -O1 -I"$ROOT/runtime/host" -o "$T/mkst" "$ROOT/tests/mkst.c" \
		"$ROOT/runtime/host/gradc_safetensors.c" || { echo "cannot build mkst"; exit 1; }
}
mkst() { "$T/mkst" "$@"; }
