/* glue.c: harnesses printed from a model's Api (api.c), for
 * `gradc compile --harness KIND` (written beside NAME.h as NAME_KIND.*):
 *
 *   compare   NAME_compare.c, the tests' program (tests/t_generated.sh)
 *             for three builds of one model: NAME (f32, fused), NAME_nf
 *             (f32, --no-fuse --name NAME_nf) and NAME_d (f64, --name
 *             NAME_d):
 *               1. deterministic inputs (floats in [-1, 1), labels
 *                  (7 i + 3) % classes), NAME_init(seed 7)'s parameters
 *                  copied into the other two builds;
 *               2. inference, gradients and three training steps in every
 *                  build; outputs, objective, tracked means, gradients and
 *                  parameters after the steps of NAME and NAME_nf agree to
 *                  1e-5 and of NAME and NAME_d to 2e-4 (normwise relative);
 *               3. "digest %016llx": FNV-1a of NAME's parameters after the
 *                  steps, gradients, objective and outputs (builds that
 *                  must agree to the bit are compared by it);
 *               4. status paths on NAME: a label out of range returns
 *                  GRADC_EBADLABEL, an infinite (or NaN) input
 *                  GRADC_ENONFINITE when it makes the objective non-finite,
 *                  each leaving parameters and state bit-identical; a saved
 *                  blob loads back, a corrupted or truncated one is refused.
 *             Exit status 0 when everything agrees; a line per failure.
 *   bench     NAME_bench.h, bench/bench.c's view of the model and of its
 *             --no-fuse build NAME_nf (bench_glue below).
 *   embedded  NAME_glue.h, embedded/harness.c's view of the model (GLUE(x)
 *             pastes the prefix; glue_fill() fills the inputs in
 *             declaration order from the harness's LCG; GLUE_TRAIN(p, s,
 *             st) and GLUE_INFER(p) call the entry points on them;
 *             glue_outputs() prints the outputs' checksums; sizes are
 *             numbers, so the one glue serves the inference-only build).
 *
 * The harness's own names have no '_' (every model symbol has one) or
 * start with 'glue', so no model collides with them.
 */
#include "host.h"

#include <string.h>

/* ---- compare */

static const char compare_common[] =
	"#include <math.h>\n"
	"#include <stdio.h>\n"
	"#include <string.h>\n"
	"#include \"%s.h\"\n"
	"#include \"%s_nf.h\"\n"
	"#include \"%s_d.h\"\n"
	"\n"
	"static int fails;\n"
	"static void fail(const char *what, double err)\n"
	"{\n"
	"\tprintf(\"%%s: error %%.3g\\n\", what, err);\n"
	"\tfails++;\n"
	"}\n"
	"/* ||a - b|| / max(||b||, 1e-6), a and b given as doubles */\n"
	"static double relerr(const double *a, const double *b, int n)\n"
	"{\n"
	"\tdouble num = 0, den = 0;\n"
	"\tfor (int i = 0; i < n; i++) {\n"
	"\t\tnum += (a[i] - b[i]) * (a[i] - b[i]);\n"
	"\t\tden += b[i] * b[i];\n"
	"\t}\n"
	"\tden = sqrt(den);\n"
	"\treturn sqrt(num) / (den > 1e-6 ? den : 1e-6);\n"
	"}\n"
	"/* FNV-1a over n bytes at p, continuing from h */\n"
	"static unsigned long long fnv1a(unsigned long long h, const void *p, size_t n)\n"
	"{\n"
	"\tfor (size_t i = 0; i < n; i++)\n"
	"\t\th = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;\n"
	"\treturn h;\n"
	"}\n"
	"static double bufa[1 << 22], bufb[1 << 22];\n"
	"/* a (float) against b (float, or double if 'dbl'), n elements */\n"
	"static void cmp(const char *what, const float *a, const void *b, int dbl, int n, double tol)\n"
	"{\n"
	"\tfor (int i = 0; i < n; i++) {\n"
	"\t\tbufa[i] = a[i];\n"
	"\t\tbufb[i] = dbl ? ((const double *)b)[i] : ((const float *)b)[i];\n"
	"\t}\n"
	"\tdouble e = relerr(bufa, bufb, n);\n"
	"\tif (!(e <= tol))\n"
	"\t\tfail(what, e);\n"
	"}\n"
	"\n";

/* The comparison harness's arguments: ctx the build, 0 (NAME), 1 (NAME_nf)
 * or 2 (NAME_d).  */
static const char *compare_arg(const Api *a, ApiArg arg, int k, const void *ctx)
{
	int b = *(const int *)ctx;
	static const char *const name[][3] = {
		[ARG_P] = {"&p", "&pn", "&pd"},     [ARG_S] = {"&s", "&sn", "&sd"},
		[ARG_ST] = {"&st", "&stn", "&sdd"}, [ARG_GRAD] = {"&gr", "&grn", "&grd"},
		[ARG_OUT] = {"gout", "goutn", "goutd"},
	};
	switch (arg) {
	case ARG_P:
	case ARG_S:
	case ARG_ST:
	case ARG_GRAD: return name[arg][b];
	case ARG_IN: return str_fmt("%s%d", b == 2 && !a->in[k].is_int ? "gind" : "gin", k);
	case ARG_OUT: return str_fmt("%s%d", name[arg][b], k);
	case ARG_ARENA: return "NULL";
	}
	die("compare_arg: %d", arg);
}

/* "\trc = CALL;\n\tif (rc != GRADC_OK) fail(WHAT, rc);\n" in builds 0..2 */
static void compare_calls(Buf *o, const Api *a, ApiEntry e, const char *indent)
{
	static const char *const sfx[] = {"", "_nf", "_d"};
	static const char *const what[] = {"infer", "train", "grad"};
	for (int b = 0; b < 3; b++) {
		Api ab = *a; /* the build's prefix */
		ab.prefix = str_fmt("%s%s", a->prefix, sfx[b]);
		buf_printf(o, "%src = %s;\n%sif (rc != GRADC_OK) fail(\"%s %s status\", rc);\n",
			   indent, api_call(&ab, e, compare_arg, &b), indent, sfx[b], what[e]);
	}
}

/* The build's parameters 'v' (p or gr) against NAME_nf's and NAME_d's. */
static void compare_params(Buf *o, const char *P, const char *v, const char *vn, const char *vd)
{
	buf_printf(o, "\tfor (int i = 0; i < %s_N_PARAMS; i++) {\n", P);
	buf_printf(o, "\t\tint n = %s_param_table[i].count;\n", P);
	buf_printf(o,
		   "\t\tcmp(%s_param_table[i].name, %s_param_values(&%s, i), "
		   "%s_nf_param_values(&%s, i), 0, n, 1e-5);\n",
		   P, P, v, P, vn);
	buf_printf(o,
		   "\t\tcmp(%s_param_table[i].name, %s_param_values(&%s, i), "
		   "%s_d_param_values(&%s, i), 1, n, 2e-4);\n\t}\n",
		   P, P, v, P, vd);
}

/* The status paths on NAME (step 4 of the top comment). */
static void compare_status(Buf *o, const Api *a)
{
	const char *P = a->prefix;
	int b = 0;
	const char *step = api_call(a, API_TRAIN, compare_arg, &b);
	const char *same = "memcmp(&p, &pref, sizeof p) || memcmp(&s, &sref, sizeof s)";
	buf_printf(o, "\tpref = p;\n\tsref = s;\n");
	for (int k = 0; k < a->n_in; k++)
		if (a->in[k].is_int && a->in[k].classes) {
			buf_printf(o, "\tgin%d[%lld] = %lld;\n", k, (long long)(a->in[k].numel - 1),
				   (long long)a->in[k].classes);
			buf_printf(o, "\trc = %s;\n", step);
			buf_printf(o, "\tif (rc != GRADC_EBADLABEL) fail(\"bad label: status\", rc);\n");
			buf_printf(o, "\tif (%s) fail(\"bad label: parameters changed\", 0);\n", same);
			buf_printf(o, "\tgin%d[%lld] = 0;\n", k, (long long)(a->in[k].numel - 1));
			break;
		}
	for (int k = 0; k < a->n_in; k++)
		if (!a->in[k].is_int) {
			buf_printf(o, "\tgin%d[0] = (float)HUGE_VAL;\n\trc = %s;\n", k, step);
			buf_printf(o, "\tif (rc == GRADC_OK) {\n\t\tp = pref;\n\t\ts = sref;\n");
			buf_printf(o, "\t\tgin%d[0] = (float)NAN;\n\t\trc = %s;\n\t}\n", k, step);
			buf_printf(o, "\tif (rc == GRADC_ENONFINITE && (%s))\n"
				      "\t\tfail(\"non-finite: parameters changed\", 0);\n", same);
			buf_printf(o, "\tif (rc == GRADC_ENONFINITE && GRADC_ISFINITE(st.objective))\n"
				      "\t\tfail(\"non-finite: objective reported finite\", st.objective);\n");
			buf_printf(o, "\tif (rc != GRADC_ENONFINITE && rc != GRADC_OK)\n"
				      "\t\tfail(\"non-finite: status\", rc);\n");
			buf_printf(o, "\tif (rc == GRADC_OK)\n\t\tprintf(\"note: neither an infinite nor a "
				      "NaN input made the objective non-finite\\n\");\n");
			buf_printf(o, "\tp = pref;\n\ts = sref;\n");
			break;
		}
	/* save / load */
	buf_printf(o, "\tsize_t nb = %s_save(&p, &s, blob, sizeof blob);\n", P);
	buf_printf(o, "\tif (nb != %s_BLOB_BYTES) fail(\"save: bytes\", (double)nb);\n", P);
	buf_printf(o, "\tif (%s_save(&p, &s, blob, 10) != 0) fail(\"save: small buffer\", 0);\n", P);
	buf_printf(o, "\trc = %s_load(&pl, &sl, blob, nb);\n", P);
	buf_printf(o, "\tif (rc != GRADC_OK || memcmp(&pl, &p, sizeof p) || memcmp(&sl, &s, sizeof s))\n"
		      "\t\tfail(\"load: round trip\", rc);\n");
	buf_printf(o, "\tblob[nb / 2] ^= 1;\n\tpc = pl;\n\trc = %s_load(&pl, &sl, blob, nb);\n", P);
	buf_printf(o, "\tif (rc != GRADC_EBLOB || memcmp(&pl, &pc, sizeof pl))\n"
		      "\t\tfail(\"load: corrupted blob accepted\", rc);\n");
	buf_printf(o, "\tblob[nb / 2] ^= 1;\n\trc = %s_load(&pl, &sl, blob, nb - 1);\n", P);
	buf_printf(o, "\tif (rc != GRADC_EBLOB) fail(\"load: truncated blob accepted\", rc);\n");
}

/* NAME_compare.c for the training build 'a' (the harness needs every entry). */
static void compare_harness(Buf *o, const Api *a)
{
	const char *P = a->prefix;
	int64_t B = a->batch;
	buf_printf(o, "/* %s_compare.c: generated by gradc compile --harness compare (glue.c) */\n", P);
	buf_printf(o, compare_common, P, P, P);
	for (int k = 0; k < a->n_in; k++)
		if (a->in[k].is_int)
			buf_printf(o, "static int32_t gin%d[%lld]; /* %s */\n", k,
				   (long long)(B * a->in[k].size), a->in[k].name);
		else
			buf_printf(o, "static float gin%d[%lld]; /* %s */\nstatic double gind%d[%lld];\n",
				   k, (long long)(B * a->in[k].size), a->in[k].name, k,
				   (long long)(B * a->in[k].size));
	for (int k = 0; k < a->n_out; k++)
		buf_printf(o, "static float gout%d[%lld], goutn%d[%lld]; /* %s */\n"
			      "static double goutd%d[%lld];\n",
			   k, (long long)(B * a->out[k].size), k, (long long)(B * a->out[k].size),
			   a->out[k].name, k, (long long)(B * a->out[k].size));
	buf_printf(o, "static %s_params p, pref, gr, pl, pc;\nstatic %s_nf_params pn, grn;\n"
		      "static %s_d_params pd, grd;\nstatic %s_state s, sref, sl;\n"
		      "static %s_nf_state sn;\nstatic %s_d_state sd;\nstatic %s_stats st;\n"
		      "static %s_nf_stats stn;\nstatic %s_d_stats sdd;\n"
		      "static unsigned char blob[%s_BLOB_BYTES + 64];\n\n",
		   P, P, P, P, P, P, P, P, P, P);
	buf_printf(o, "int main(void)\n{\n\tint rc;\n");
	for (int k = 0; k < a->n_in; k++) {
		buf_printf(o, "\tfor (int i = 0; i < %lld; i++) {\n", (long long)(B * a->in[k].size));
		if (a->in[k].is_int)
			buf_printf(o, "\t\tgin%d[i] = (int32_t)((i * 7 + 3) %% %lld);\n", k,
				   (long long)(a->in[k].classes ? a->in[k].classes : 1));
		else
			buf_printf(o, "\t\tgin%d[i] = (float)((i * 7919 %% 2000) / 1000.0 - 1.0);\n"
				      "\t\tgind%d[i] = gin%d[i];\n", k, k, k);
		buf_printf(o, "\t}\n");
	}
	buf_printf(o, "\t%s_init(&p, &s, 7);\n\t%s_nf_init(&pn, &sn, 7);\n\t%s_d_init(&pd, &sd, 7);\n",
		   P, P, P);
	buf_printf(o, "\tfor (int i = 0; i < %s_N_PARAMS; i++)\n"
		      "\t\tfor (int k = 0; k < %s_param_table[i].count; k++) {\n"
		      "\t\t\t%s_nf_param_values(&pn, i)[k] = %s_param_values(&p, i)[k];\n"
		      "\t\t\t%s_d_param_values(&pd, i)[k] = %s_param_values(&p, i)[k];\n\t\t}\n",
		   P, P, P, P, P, P);
	if (a->n_out) {
		compare_calls(o, a, API_INFER, "\t");
		for (int k = 0; k < a->n_out; k++) {
			long long n = (long long)(B * a->out[k].size);
			buf_printf(o, "\tcmp(\"output %s: fused vs no-fuse\", gout%d, goutn%d, 0, %lld, 1e-5);\n",
				   a->out[k].name, k, k, n);
			buf_printf(o, "\tcmp(\"output %s: f32 vs f64\", gout%d, goutd%d, 1, %lld, 2e-4);\n",
				   a->out[k].name, k, k, n);
		}
	}
	compare_calls(o, a, API_GRAD, "\t");
	/* the stats: the objective, then the tracked means, all real */
	for (int k = 0; k <= a->n_track; k++) {
		const char *what = k ? str_fmt("track %s", a->track[k - 1]) : "objective";
		buf_printf(o, "\tcmp(\"%s: fused vs no-fuse\", (const float *)(void *)&st + %d, "
			      "(const float *)(void *)&stn + %d, 0, 1, 1e-5);\n", what, k, k);
		buf_printf(o, "\tcmp(\"%s: f32 vs f64\", (const float *)(void *)&st + %d, "
			      "(const double *)(void *)&sdd + %d, 1, 1, 2e-4);\n", what, k, k);
	}
	compare_params(o, P, "gr", "grn", "grd");
	buf_printf(o, "\tfor (int step = 0; step < 3; step++) {\n");
	compare_calls(o, a, API_TRAIN, "\t\t");
	buf_printf(o, "\t}\n");
	buf_printf(o, "\tcmp(\"objective after steps: fused vs no-fuse\", &st.objective, "
		      "&stn.objective, 0, 1, 1e-5);\n");
	compare_params(o, P, "p", "pn", "pd");
	buf_printf(o, "\tif (s.step != 3) fail(\"state step\", s.step);\n");
	/* the bits of the results so far, which builds of other flags must match */
	buf_printf(o, "\tunsigned long long h = 14695981039346656037ull;\n"
		      "\th = fnv1a(h, &p, sizeof p);\n\th = fnv1a(h, &gr, sizeof gr);\n"
		      "\th = fnv1a(h, &st.objective, sizeof st.objective);\n");
	for (int k = 0; k < a->n_out; k++)
		buf_printf(o, "\th = fnv1a(h, gout%d, sizeof gout%d);\n", k, k);
	buf_printf(o, "\tprintf(\"digest %%016llx\\n\", h);\n");
	compare_status(o, a);
	buf_printf(o, "\treturn fails != 0;\n}\n");
}

/* ---- embedded */

static const char *embedded_arg(const Api *a, ApiArg arg, int k, const void *ctx)
{
	(void)a;
	(void)ctx;
	switch (arg) {
	case ARG_P: return "p";
	case ARG_S: return "s";
	case ARG_IN: return str_fmt("glue_in%d", k);
	case ARG_OUT: return str_fmt("glue_out%d", k);
	case ARG_ST: return "st";
	case ARG_ARENA: return "NULL";
	case ARG_GRAD: break;
	}
	die("embedded_arg: %d", arg);
}

/* NAME_glue.h for the training build 'a' (lr: the model's learning rate). */
static void embedded_glue(Buf *o, const Api *a, double lr)
{
	const char *P = a->prefix, *real = a->f64 ? "double" : "float", *sfx = a->f64 ? "d" : "f";
	long long B = (long long)a->batch;
	buf_printf(o, "/* %s_glue.h: embedded/harness.c's view of model '%s' (gradc compile "
		      "--harness embedded) */\n", P, P);
	buf_printf(o, "#include \"%s.h\"\n#define GLUE(x) %s_##x\n", P, P);
	buf_printf(o, "#define print_real print_%s\n#define checksum_real checksum_%s\n", sfx, sfx);
	Buf fill = {0}, outs = {0};
	buf_printf(&fill, "%s", "");
	buf_printf(&outs, "%s", "");
	for (int k = 0; k < a->n_in; k++) {
		long long n = (long long)a->in[k].size;
		if (a->in[k].is_int) {
			buf_printf(o, "static int32_t glue_in%d[%lld * %lld]; /* %s */\n", k, B, n,
				   a->in[k].name);
			buf_printf(&fill, "\tfill_label(glue_in%d, %lld * %lld, %lld);\n", k, B, n,
				   (long long)(a->in[k].classes ? a->in[k].classes : 1));
		} else {
			buf_printf(o, "static %s glue_in%d[%lld * %lld]; /* %s */\n", real, k, B, n,
				   a->in[k].name);
			buf_printf(&fill, "\tfill_real_%s(glue_in%d, %lld * %lld);\n", sfx, k, B, n);
		}
	}
	for (int k = 0; k < a->n_out; k++) {
		long long n = (long long)a->out[k].size;
		buf_printf(o, "static %s glue_out%d[%lld * %lld]; /* %s */\n", real, k, B, n,
			   a->out[k].name);
		buf_printf(&outs, "\tchecksum_%s(\"out.%s\", glue_out%d, %lld * %lld);\n", sfx,
			   a->out[k].name, k, B, n);
	}
	buf_printf(o, "#define GLUE_LR ((%s)%.17g)\n", real, lr);
	buf_printf(o, "#define GLUE_TRAIN(p, s, st) %s\n", api_call(a, API_TRAIN, embedded_arg, NULL));
	buf_printf(o, "#define GLUE_INFER(p) %s\n", api_call(a, API_INFER, embedded_arg, NULL));
	buf_printf(o, "static void glue_fill(void)\n{\n%s}\n", fill.s);
	buf_printf(o, "static void glue_outputs(void)\n{\n%s}\n", outs.s);
	buf_printf(o, "EMB_UNUSED static const char *const glue_stat_names[] = {\"objective\"");
	for (int k = 0; k < a->n_track; k++)
		buf_printf(o, ", \"%s\"", a->track[k]);
	buf_printf(o, "};\n");
}

/* ---- bench */

/* bench/bench.c's arguments: batch 'i' of the inputs' cycle, output copy
 * 'w' (0 the generated build's, 1 the --no-fuse build's).  */
static const char *bench_arg(const Api *a, ApiArg arg, int k, const void *ctx)
{
	(void)ctx;
	switch (arg) {
	case ARG_P: return "p";
	case ARG_S: return "s";
	case ARG_ST: return "st";
	case ARG_ARENA: return "NULL";
	case ARG_IN: return str_fmt("bench_in%d + (size_t)(i) * %lld", k, (long long)a->in[k].numel);
	case ARG_OUT: return str_fmt("bench_out%d[w]", k);
	case ARG_GRAD: break;
	}
	die("bench_arg: %d", arg);
}

/* The index of the first input that is (is_int) or is not a label, or -1. */
static int first_input(const Api *a, bool is_int)
{
	for (int k = 0; k < a->n_in; k++)
		if (a->in[k].is_int == is_int)
			return k;
	return -1;
}

/* NAME_bench.h: bench/bench.c's view of the model (NAME) and of its
 * --no-fuse build (NAME_nf): the inputs of 'cycle' batches filled in
 * declaration order by bench.c's bench_real() and bench_label(classes),
 * the entry points' calls on batch i (BENCH_TRAIN(W, p, s, i, st),
 * BENCH_INFER(W, p, i, w); W is GEN or NF), and the reference's view (the
 * hand-written OpenBLAS networks take one feature input and one label):
 * BENCH_X(i), BENCH_Y(i), the first output BENCH_O(w).  */
static void bench_glue(Buf *o, const Api *a)
{
	const char *P = a->prefix;
	int x = first_input(a, false), y = first_input(a, true);
	buf_printf(o, "/* %s_bench.h: bench/bench.c's view of model '%s' and of its --no-fuse build "
		      "%s_nf\n * (gradc compile --harness bench, glue.c) */\n", P, P, P);
	buf_printf(o, "#include <stdlib.h>\n#include \"%s.h\"\n#include \"%s_nf.h\"\n", P, P);
	for (int k = 0; k < a->n_in; k++)
		buf_printf(o, "static %s *bench_in%d; /* %s: the cycle's batches, %lld elements each */\n",
			   a->in[k].is_int ? "int32_t" : "float", k, a->in[k].name,
			   (long long)a->in[k].numel);
	for (int k = 0; k < a->n_out; k++)
		buf_printf(o, "static float bench_out%d[2][%lld]; /* %s */\n", k,
			   (long long)a->out[k].numel, a->out[k].name);
	buf_printf(o, "/* the inputs of 'cycle' batches; 0, or -1 out of memory */\n");
	buf_printf(o, "static int bench_inputs(int cycle)\n{\n");
	for (int k = 0; k < a->n_in; k++) {
		long long n = (long long)a->in[k].numel;
		buf_printf(o, "\tbench_in%d = malloc(sizeof *bench_in%d * %lld * (size_t)cycle);\n", k, k, n);
		buf_printf(o, "\tif (!bench_in%d)\n\t\treturn -1;\n", k);
		buf_printf(o, "\tfor (size_t i = 0; i < %lld * (size_t)cycle; i++)\n", n);
		if (a->in[k].is_int)
			buf_printf(o, "\t\tbench_in%d[i] = bench_label(%lld);\n", k,
				   (long long)(a->in[k].classes ? a->in[k].classes : 1));
		else
			buf_printf(o, "\t\tbench_in%d[i] = bench_real();\n", k);
	}
	buf_printf(o, "\treturn 0;\n}\n");
	buf_printf(o, "static void bench_free_inputs(void)\n{\n");
	for (int k = 0; k < a->n_in; k++)
		buf_printf(o, "\tfree(bench_in%d);\n", k);
	buf_printf(o, "}\n");
	static const char *const sfx[] = {"", "_nf"};
	static const char *const which[] = {"GEN", "NF"};
	for (int b = 0; b < 2; b++) {
		Api ab = *a;
		ab.prefix = str_fmt("%s%s", P, sfx[b]);
		buf_printf(o, "#define BENCH_TRAIN_%s(p, s, i, st) %s\n", which[b],
			   api_call(&ab, API_TRAIN, bench_arg, NULL));
		buf_printf(o, "#define BENCH_INFER_%s(p, i, w) %s\n", which[b],
			   api_call(&ab, API_INFER, bench_arg, NULL));
	}
	buf_printf(o, "#define BENCH_TRAIN(W, p, s, i, st) BENCH_TRAIN_##W(p, s, i, st)\n");
	buf_printf(o, "#define BENCH_INFER(W, p, i, w) BENCH_INFER_##W(p, i, w)\n");
	if (x < 0 || y < 0 || a->n_out < 1) {
		buf_printf(o, "#error \"bench: the reference networks take a feature input and a label "
			      "and return an output\"\n");
		return;
	}
	buf_printf(o, "#define BENCH_X(i) (bench_in%d + (size_t)(i) * %lld) /* %s */\n", x,
		   (long long)a->in[x].numel, a->in[x].name);
	buf_printf(o, "#define BENCH_Y(i) (bench_in%d + (size_t)(i) * %lld) /* %s */\n", y,
		   (long long)a->in[y].numel, a->in[y].name);
	buf_printf(o, "#define BENCH_O(w) bench_out0[w] /* %s */\n#define BENCH_ON %lld\n",
		   a->out[0].name, (long long)a->out[0].numel);
	buf_printf(o, "#define BENCH_CLASSES %lld /* %s */\n",
		   (long long)(a->in[y].classes ? a->in[y].classes : 1), a->in[y].name);
}

/* ---- the command */

const char *harness_text(const char *kind, const Graph *fwd, const Graph *infer,
			 const char *prefix, Buf *out)
{
	if (!fwd->has_minimize)
		error_plain("--harness %s needs a training build (a 'minimize' statement)", kind);
	const Api *a = api_describe(fwd, infer, prefix);
	if (!strcmp(kind, "compare")) {
		compare_harness(out, a);
		return str_fmt("%s_compare.c", prefix);
	}
	if (!strcmp(kind, "bench")) {
		bench_glue(out, a);
		return str_fmt("%s_bench.h", prefix);
	}
	embedded_glue(out, a, fwd->opt.lr);
	return str_fmt("%s_glue.h", prefix);
}
