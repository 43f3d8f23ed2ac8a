# lib.sh: sourced by the tests/t_*.sh scripts that need it (tests/run.sh
# runs only t_*.sh): the defaults of run.sh's environment (GRADC, ROOT, CC),
# a scratch directory $T removed at exit, fail() counting into $fails,
# mkst (tests/mkst.c, a safetensors writer) built into $T, and agree().
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

# agree A.st B.st: every tensor of B within 1e-4 of A (relative to A's largest value)
agree() {
	python3 - "$1" "$2" <<'EOF'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        f = {'F32': 'f', 'F64': 'd', 'I32': 'i', 'I64': 'q'}[v['dtype']]
        raw = b[8 + n + s:8 + n + e]
        out[k] = struct.unpack('<%d%s' % (len(raw) // struct.calcsize(f), f), raw)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys(), (sorted(a), sorted(b))
for k in a:
    m = max([abs(x) for x in a[k]] + [1e-30])
    d = max([abs(x - y) for x, y in zip(a[k], b[k])] + [0]) / m
    if d > 1e-4:
        print('%s: relative difference %.2e' % (k, d))
        sys.exit(1)
EOF
}
