#!/usr/bin/env python3
"""gen_harness.py: a C harness for the generated code of one model (t_generated.sh).

    gen_harness.py DIR NAME > harness.c

DIR holds three builds of the model: NAME (f32, fused), NAME_nf (f32,
--no-fuse) and NAME_d (f64, fused), each as .h/.c.  The harness reads the
API from NAME.h (size macros and prototypes), so it works for any model:

  1. deterministic inputs (floats in [-1, 1), labels i % classes), the
     parameters of NAME_init(seed 7) copied into the other two builds;
  2. inference, gradients and three training steps in every build; the
     outputs, objective, tracked means, gradients and parameters after the
     steps of NAME and NAME_nf must agree to 1e-5 and of NAME and NAME_d to
     2e-4 (normwise relative error);
  3. a digest line: an FNV-1a hash of NAME's parameters after the steps,
     gradients, objective and inference outputs (t_generated.sh compares
     builds that must agree to the bit);
  4. status paths on NAME: a label out of range returns GRADC_EBADLABEL and
     an infinite input GRADC_ENONFINITE (when it makes the objective
     non-finite), each leaving parameters and state bit-identical; a saved
     blob loads back, a corrupted one is refused with nothing changed.
Exit status 0 when everything agrees; one line per failure on stdout.
"""
import re
import sys

d, P = sys.argv[1], sys.argv[2]
h = open(f"{d}/{P}.h").read()


def macro(name):
    m = re.search(r"#define %s_%s (\d+)" % (re.escape(P), name), h)
    return int(m.group(1)) if m else None


def proto(fn):
    m = re.search(r"int %s_%s\(([^)]*)\);" % (re.escape(P), fn), h)
    if not m:
        return None
    args = []
    for a in m.group(1).split(", "):
        a = a.strip()
        name = re.search(r"(\w+)$", a).group(1)
        args.append((a, name))
    return args


infer, train, grad = proto("infer"), proto("train_step"), proto("grad")
inputs = []   # (cname, macro name, is int)
for m in re.finditer(r"#define %s_(\w+)_SIZE (\d+) /\* input '(\w+)'([^*]*)\*/" % re.escape(P), h):
    inputs.append((m.group(3), m.group(1), "class label" in m.group(4), int(m.group(2))))
outputs = []
for m in re.finditer(r"#define %s_(\w+)_SIZE (\d+) /\* output '(\w+)'" % re.escape(P), h):
    outputs.append((m.group(3), m.group(1), int(m.group(2))))
B = macro("BATCH")
tracks = re.findall(r"\t%s_real (\w+); /\* track" % re.escape(P), h)

o = []
w = o.append
w('#include <math.h>\n#include <stdio.h>\n#include <string.h>\n')
for v in ("", "_nf", "_d"):
    w(f'#include "{P}{v}.h"')
w('''
static int fails;
static void fail(const char *what, double err)
{
	printf("%s: error %.3g\\n", what, err);
	fails++;
}
/* ||a - b|| / max(||b||, 1e-6), a and b given as doubles */
static double relerr(const double *a, const double *b, int n)
{
	double num = 0, den = 0;
	for (int i = 0; i < n; i++) {
		num += (a[i] - b[i]) * (a[i] - b[i]);
		den += b[i] * b[i];
	}
	den = sqrt(den);
	return sqrt(num) / (den > 1e-6 ? den : 1e-6);
}
/* FNV-1a over n bytes at p, continuing from h */
static unsigned long long fnv1a(unsigned long long h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
	return h;
}
static double bufa[1 << 22], bufb[1 << 22];
static void cmpf(const char *what, const float *a, const float *b, int n, double tol)
{
	for (int i = 0; i < n; i++) { bufa[i] = a[i]; bufb[i] = b[i]; }
	double e = relerr(bufa, bufb, n);
	if (!(e <= tol))
		fail(what, e);
}
static void cmpd(const char *what, const float *a, const double *b, int n, double tol)
{
	for (int i = 0; i < n; i++) { bufa[i] = a[i]; bufb[i] = b[i]; }
	double e = relerr(bufa, bufb, n);
	if (!(e <= tol))
		fail(what, e);
}
''')
# inputs: one float and one double copy, labels shared
for name, M, isint, size in inputs:
    n = f"{P}_BATCH * {P}_{M}_SIZE"
    if isint:
        w(f"static int32_t in_{name}[{n}];")
    else:
        w(f"static float in_{name}[{n}];\nstatic double ind_{name}[{n}];")
for name, M, size in outputs:
    n = f"{P}_BATCH * {P}_{M}_SIZE"
    w(f"static float out_{name}[{n}], outn_{name}[{n}];\nstatic double outd_{name}[{n}];")
w(f"""
static {P}_params p, pref, gr;
static {P}_nf_params pn, grn;
static {P}_d_params pd, grd;
static {P}_state s, sref;
static {P}_nf_state sn;
static {P}_d_state sd;
static {P}_stats st;
static {P}_nf_stats stn;
static {P}_params pl, pc;
static {P}_state sl;
static {P}_d_stats std_;
static unsigned char blob[{P}_BLOB_BYTES + 64];
""")


def args(fn_args, build):
    """The argument list of a call for build '' / '_nf' / '_d'."""
    t = []
    for decl, name in fn_args:
        if name == "p":
            t.append({"": "&p", "_nf": "&pn", "_d": "&pd"}[build])
        elif name == "s":
            t.append({"": "&s", "_nf": "&sn", "_d": "&sd"}[build])
        elif name == "st":
            t.append({"": "&st", "_nf": "&stn", "_d": "&std_"}[build])
        elif name == "grad":
            t.append({"": "&gr", "_nf": "&grn", "_d": "&grd"}[build])
        elif name == "arena":
            t.append("NULL")
        else:
            inp = [i for i in inputs if i[0] == name or i[0] + "_" == name]
            out = [o for o in outputs if o[0] == name or o[0] + "_" == name]
            if inp:
                nm, _, isint, _ = inp[0]
                t.append(f"in_{nm}" if isint or build != "_d" else f"ind_{nm}")
            elif out:
                nm = out[0][0]
                t.append({"": "out_", "_nf": "outn_", "_d": "outd_"}[build] + nm)
            else:
                raise SystemExit(f"gen_harness: unknown argument '{name}'")
    return ", ".join(t)


def copy_params(dst, src, dsttype):
    w(f"\tfor (int i = 0; i < {P}_N_PARAMS; i++)")
    w(f"\t\tfor (int k = 0; k < {P}_param_table[i].count; k++)")
    w(f"\t\t\t{dsttype}_param_values({dst}, i)[k] = {P}_param_values({src}, i)[k];")


w("int main(void)\n{\n\tint rc;")
for name, M, isint, size in inputs:
    n = f"{P}_BATCH * {P}_{M}_SIZE"
    w(f"\tfor (int i = 0; i < {n}; i++) {{")
    if isint:
        cl = macro(f"{M}_CLASSES") or 1
        w(f"\t\tin_{name}[i] = (int32_t)((i * 7 + 3) % {cl});")
    else:
        w(f"\t\tin_{name}[i] = (float)((i * 7919 % 2000) / 1000.0 - 1.0);")
        w(f"\t\tind_{name}[i] = in_{name}[i];")
    w("\t}")
w(f"\t{P}_init(&p, &s, 7);\n\t{P}_nf_init(&pn, &sn, 7);\n\t{P}_d_init(&pd, &sd, 7);")
copy_params("&pn", "&p", P + "_nf")
copy_params("&pd", "&p", P + "_d")
if infer:
    for b in ("", "_nf", "_d"):
        w(f"\trc = {P}{b}_infer({args(infer, b)});")
        w(f'\tif (rc != GRADC_OK) fail("{b} infer status", rc);')
    for name, M, size in outputs:
        n = f"{P}_BATCH * {P}_{M}_SIZE"
        w(f'\tcmpf("output {name}: fused vs no-fuse", out_{name}, outn_{name}, {n}, 1e-5);')
        w(f'\tcmpd("output {name}: f32 vs f64", out_{name}, outd_{name}, {n}, 2e-4);')
if grad:
    for b in ("", "_nf", "_d"):
        w(f"\trc = {P}{b}_grad({args(grad, b)});")
        w(f'\tif (rc != GRADC_OK) fail("{b} grad status", rc);')
    w(f'\tcmpf("objective: fused vs no-fuse", &st.objective, &stn.objective, 1, 1e-5);')
    w(f'\tcmpd("objective: f32 vs f64", &st.objective, &std_.objective, 1, 2e-4);')
    for t in tracks:
        w(f'\tcmpf("track {t}: fused vs no-fuse", &st.{t}, &stn.{t}, 1, 1e-5);')
        w(f'\tcmpd("track {t}: f32 vs f64", &st.{t}, &std_.{t}, 1, 2e-4);')
    w(f"\tfor (int i = 0; i < {P}_N_PARAMS; i++) {{")
    w(f"\t\tint n = {P}_param_table[i].count;")
    w(f'\t\tcmpf({P}_param_table[i].name, {P}_param_values(&gr, i), {P}_nf_param_values(&grn, i), n, 1e-5);')
    w(f'\t\tcmpd({P}_param_table[i].name, {P}_param_values(&gr, i), {P}_d_param_values(&grd, i), n, 2e-4);')
    w("\t}")
if train:
    w("\tfor (int step = 0; step < 3; step++) {")
    for b in ("", "_nf", "_d"):
        w(f"\t\trc = {P}{b}_train_step({args(train, b)});")
        w(f'\t\tif (rc != GRADC_OK) fail("{b} train status", rc);')
    w("\t}")
    w(f'\tcmpf("objective after steps: fused vs no-fuse", &st.objective, &stn.objective, 1, 1e-5);')
    w(f"\tfor (int i = 0; i < {P}_N_PARAMS; i++) {{")
    w(f"\t\tint n = {P}_param_table[i].count;")
    w(f'\t\tcmpf({P}_param_table[i].name, {P}_param_values(&p, i), {P}_nf_param_values(&pn, i), n, 1e-5);')
    w(f'\t\tcmpd({P}_param_table[i].name, {P}_param_values(&p, i), {P}_d_param_values(&pd, i), n, 2e-4);')
    w("\t}")
    w(f'\tif (s.step != 3) fail("state step", s.step);')
    # the bits of the results so far, which builds of other flags must match
    digest = ["&p, sizeof p", "&gr, sizeof gr" if grad else None, "&st.objective, sizeof st.objective"]
    digest += [f"out_{name}, sizeof out_{name}" for name, M, size in outputs if infer]
    w("\tunsigned long long h = 14695981039346656037ull;")
    for a in filter(None, digest):
        w(f"\th = fnv1a(h, {a});")
    w('\tprintf("digest %016llx\\n", h);')
    # status paths
    w("\tpref = p;\n\tsref = s;")
    labels = [i for i in inputs if i[2]]
    if labels:
        name, M = labels[0][0], labels[0][1]
        cl = macro(f"{M}_CLASSES")
        w(f"\tin_{name}[{P}_BATCH - 1] = {cl};")
        w(f"\trc = {P}_train_step({args(train, '')});")
        w(f'\tif (rc != GRADC_EBADLABEL) fail("bad label: status", rc);')
        w(f'\tif (memcmp(&p, &pref, sizeof p) || memcmp(&s, &sref, sizeof s)) fail("bad label: parameters changed", 0);')
        w(f"\tin_{name}[{P}_BATCH - 1] = 0;")
    floats = [i for i in inputs if not i[2]]
    if floats:
        name = floats[0][0]
        w(f"\tin_{name}[0] = (float)HUGE_VAL;")
        w(f"\trc = {P}_train_step({args(train, '')});")
        w(f"\tif (rc == GRADC_OK) {{\n\t\tp = pref;\n\t\ts = sref;\n\t\tin_{name}[0] = (float)NAN;")
        w(f"\t\trc = {P}_train_step({args(train, '')});\n\t}}")
        w(f'\tif (rc == GRADC_ENONFINITE && (memcmp(&p, &pref, sizeof p) || memcmp(&s, &sref, sizeof s))) fail("non-finite: parameters changed", 0);')
        w(f'\tif (rc == GRADC_ENONFINITE && GRADC_ISFINITE(st.objective)) fail("non-finite: objective reported finite", st.objective);')
        w(f'\tif (rc != GRADC_ENONFINITE && rc != GRADC_OK) fail("non-finite: status", rc);')
        w(f'\tif (rc == GRADC_OK) printf("note: neither an infinite nor a NaN input made the objective non-finite\\n");')
        w(f"\tp = pref;\n\ts = sref;")
    # save / load
    w(f"\tsize_t nb = {P}_save(&p, &s, blob, sizeof blob);")
    w(f'\tif (nb != {P}_BLOB_BYTES) fail("save: bytes", (double)nb);')
    w(f"\tif ({P}_save(&p, &s, blob, 10) != 0) fail(\"save: small buffer\", 0);")
    w(f"\trc = {P}_load(&pl, &sl, blob, nb);")
    w(f'\tif (rc != GRADC_OK || memcmp(&pl, &p, sizeof p) || memcmp(&sl, &s, sizeof s)) fail("load: round trip", rc);')
    w(f"\tblob[nb / 2] ^= 1;\n\tpc = pl;")
    w(f"\trc = {P}_load(&pl, &sl, blob, nb);")
    w(f'\tif (rc != GRADC_EBLOB || memcmp(&pl, &pc, sizeof pl)) fail("load: corrupted blob accepted", rc);')
    w(f"\tblob[nb / 2] ^= 1;")
    w(f"\trc = {P}_load(&pl, &sl, blob, nb - 1);")
    w(f'\tif (rc != GRADC_EBLOB) fail("load: truncated blob accepted", rc);')
w('\treturn fails != 0;\n}')
print("\n".join(o))
