/* quant_run.c: the commands of int8 inference (SPEC 4 "int8"):
 *   compile --infer-only --params P --quantize int8 --calib C
 *   report --params P --quantize int8 --calib C [--json]
 *   run --in IN --out OUT --quantize int8 --calib C
 * and the reading of the calibration inputs.
 *
 * `run` builds the int8 program at IN's batch, compiles the generated code
 * with the host C compiler (run.c's temporary directory, hostcc.c), runs it
 * on IN's inputs and writes its outputs to OUT.  It also runs quant_eval
 * on the same inputs and insists that both agree bit for bit (a
 * difference is a compiler bug: abort), so every `run --quantize int8` is
 * a check of the generated code against the reference.
 *
 * Limits: outputs only (no objective, gradients or steps: there is no int8
 * training).
 */
#define _XOPEN_SOURCE 700
#include "quant.h"
#include "gradc_rt.h"
#include "gradc_safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
#include "q8_src.h"
#pragma GCC diagnostic pop

/* ---- calibration inputs */

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

Data *quant_calib(const char *path, const Graph *fwd)
{
	if (ends_with(path, ".csv")) /* CSV as `gradc train` reads it (labels ignored) */
		return load_data(path, fwd, NULL);
	gradc_st_file f = {0};
	const char *msg = gradc_st_read(path, &f);
	if (msg)
		error_plain("%s", strstr(msg, path) ? msg : str_fmt("%s: %s", path, msg));
	Data *d = alloc(sizeof *d);
	d->path = path;
	d->v = alloc(sizeof(double *) * (size_t)fwd->n_node);
	int64_t batch = 0;
	for (int i = 0; i < fwd->n_node && !msg; i++) {
		const Node *n = &fwd->node[i];
		if (n->op != OP_INPUT || dt_is_int(n->dtype))
			continue; /* labels: not needed to calibrate */
		const gradc_st_tensor *t = gradc_st_find(&f, n->name);
		if (!t)
			msg = str_fmt("no calibration tensor '%s' (F32 or F64 of shape [B%s%s)",
				      n->name, n->shape.rank ? ", " : "]",
				      n->shape.rank ? shape_str(n->shape) + 1 : "");
		else
			msg = input_tensor(t, fwd, n, &batch, &d->v[i]);
		for (int64_t k = 0; !msg && k < batch * shape_numel(n->shape); k++)
			if (!isfinite(d->v[i][k]))
				msg = str_fmt("calibration input '%s' holds %g (element %lld): not "
					      "finite",
					      n->name, d->v[i][k], (long long)k);
	}
	gradc_st_free(&f);
	if (msg)
		error_plain("%s: %s", path, msg);
	d->n = batch;
	return d;
}

/* ---- graphs */

Graph *quant_graph(const Graph *fwd, int batch, const Options *o)
{
	Options so = *o;
	so.batch = batch;
	const Graph *f = batch == fwd->batch ? fwd : front_end(fwd->src, &so);
	if (o->params)
		f = standardize_graph(f, stats_from_file(o->params, f));
	Graph *g = autodiff(f, MODE_INFER);
	if (o->params)
		load_params(o->params, &g, 1);
	return g;
}

/* 'to' gets the parameter values of 'from' (by name). */
static void copy_values(Graph *to, const Graph *from)
{
	for (int i = 0; i < to->n_node; i++)
		if (to->node[i].op == OP_PARAM) {
			int j = find_name(from, to->node[i].name);
			if (!to->node[i].stat && j >= 0 && from->node[j].value)
				to->node[i].value = from->node[j].value;
		}
}

/* The calibration data by the ids of 'cal' (read by those of 'fwd'). */
static Data *calib_for(const Data *cd, const Graph *fwd, const Graph *cal)
{
	Data *d = alloc(sizeof *d);
	*d = *cd;
	d->v = alloc(sizeof(double *) * (size_t)cal->n_node);
	for (int i = 0; i < cal->n_node; i++)
		if (cal->node[i].op == OP_INPUT) {
			int j = find_name(fwd, cal->node[i].name);
			d->v[i] = j >= 0 ? cd->v[j] : NULL;
		}
	return d;
}

/* The int8 program of 'fwd' at batch 'batch' (the parameters as quant_graph
 * gives them, or those of 'vals' if given). */
static QModel *build(const Graph *fwd, int batch, const Options *o, const Graph *vals)
{
	Data *cd = quant_calib(o->calib, fwd);
	Graph *g = quant_graph(fwd, batch, o);
	Graph *cal = quant_graph(fwd, (int)cd->n, o);
	if (vals) {
		copy_values(g, vals);
		copy_values(cal, vals);
	}
	return quantize(g, cal, calib_for(cd, fwd, cal), o);
}

/* ---- compile */

int quant_compile(const char *outdir, const Graph *fwd, const Options *o, bool depfile,
		  const char *model_path)
{
	QModel *q = build(fwd, fwd->batch, o, NULL);
	Buf h = {0}, c = {0};
	quant_emit(&h, &c, q, o);
	const char *hp, *cp;
	write_model_files(outdir, q->prefix, &h, &c, &hp, &cp);
	const char *inputs[] = {model_path, o->params != model_path ? o->params : NULL, o->calib};
	if (depfile && write_depfile(str_fmt("%s/%s.d", outdir, q->prefix), hp, cp, inputs, 3)) {
		int e = errno;
		remove(hp);
		remove(cp);
		error_plain("cannot write '%s/%s.d': %s", outdir, q->prefix, strerror(e));
	}
	return 0;
}

/* ---- report */

/* Bytes of Cortex-M4F code (arm-none-eabi-gcc -O2, .text) per layer:
 * fitted to the six int8 builds of `make embedded` (mlp, cnn, kws_dscnn,
 * vww_mobilenet, ic_resnet8, ad_autoencoder: each within 8% since the
 * products' SMLAD form); the kinds
 * those builds lack (clamp, float, concat) take the size of the nearest
 * kind (quantize, quantize, add).  An estimate: the compiler decides. */
static const int code_bytes[] = {
	[Q_QUANTIZE] = 320, [Q_DEQUANTIZE] = 320, [Q_FC] = 1280, [Q_ADD] = 2140,
	[Q_CLAMP] = 320, [Q_FLOAT] = 320, [Q_CONV] = 1010, [Q_MAXPOOL] = 1340,
	[Q_AVGPOOL] = 1340, [Q_CONCAT] = 2140,
};

static int64_t code_estimate(const QModel *q)
{
	int64_t n = 0;
	for (int s = 0; s < q->n_layer; s++)
		n += code_bytes[q->layer[s].kind];
	return n;
}

int quant_report(const Graph *fwd, const Options *o, bool json)
{
	QModel *q = build(fwd, fwd->batch, o, NULL);
	const Graph *sf = o->params ? standardize_graph(fwd, stats_from_file(o->params, fwd)) : fwd;
	Graph *fl = build_mode(sf, MODE_INFER, o);
	int64_t fw = 0;
	for (int i = 0; i < fl->n_node; i++)
		if (fl->node[i].op == OP_PARAM)
			fw += node_bytes(fl, &fl->node[i]);
	Buf b = {0};
	if (json) {
		buf_printf(&b, "{\"quantize\": \"int8\", \"batch\": %d, \"calib_samples\": %lld, "
			       "\"ranges\": \"min/max\",\n",
			   q->batch, (long long)q->calib_n);
		buf_printf(&b, " \"float\": {\"weights_bytes\": %lld, \"arena_bytes\": %lld},\n",
			   (long long)fw, (long long)fl->arena_bytes);
		buf_printf(&b, " \"int8\": {\"weights_bytes\": %lld, \"arena_bytes\": %lld, "
			       "\"layers\": %d, \"code_estimate_bytes\": %lld},\n",
			   (long long)q->weight_bytes, (long long)q->arena_bytes, q->n_layer,
			   (long long)code_estimate(q));
		buf_printf(&b, " \"float_ops\": [");
		int k = 0;
		for (int s = 0; s < q->n_layer; s++)
			if (q->layer[s].kind == Q_FLOAT)
				buf_printf(&b, "%s\"%s\"", k++ ? ", " : "", q->layer[s].what);
		buf_printf(&b, "]}\n");
	} else {
		buf_printf(&b, "int8 inference of '%s' (batch %d), calibrated on %lld samples "
			       "(min/max ranges)\n",
			   q->prefix, q->batch, (long long)q->calib_n);
		buf_printf(&b, "%-34s %12s %12s\n", "", "float", "int8");
		buf_printf(&b, "%-34s %12lld %12lld\n", "flash: baked parameters (bytes)",
			   (long long)fw, (long long)q->weight_bytes);
		buf_printf(&b, "%-34s %12lld %12lld\n", "RAM: inference arena (bytes)",
			   (long long)fl->arena_bytes, (long long)q->arena_bytes);
		buf_printf(&b, "int8 parameters: weights int8 per output channel, with an int32 "
			       "bias, multiplier and shift per channel\n");
		buf_printf(&b, "%-34s %12s %12lld\n", "flash: code, estimate (bytes)", "-",
			   (long long)code_estimate(q));
		buf_printf(&b, "code estimate: per layer, Cortex-M4F at -O2 (fitted to make embedded's "
			       "int8 builds, within 8%%); `size` of a compiled object measures either "
			       "build (make demo prints both)\n");
		if (q->notes.len)
			buf_printf(&b, "float layers (no int8 form yet):\n%s", q->notes.s);
		else
			buf_printf(&b, "every layer runs in int8 (float only at the entry and exit)\n");
	}
	fwrite(b.s, 1, b.len, stdout);
	return 0;
}

/* ---- run */

/* The parameter values of 'g' lacking in IN: from --seed, as NAME_init. */
static void seed_params(Graph *g, uint32_t seed)
{
	int n_pa;
	int *pas = declared_nodes(g, OP_PARAM, &n_pa);
	for (int k = 0; k < n_pa; k++) {
		Node *p = &g->node[pas[k]];
		if (p->value || p->stat)
			continue;
		int32_t n = (int32_t)shape_numel(p->shape);
		float *f = alloc(sizeof(float) * (size_t)(n ? n : 1));
		double *v = alloc(sizeof(double) * (size_t)(n ? n : 1));
		int64_t fi = 1, fo = 1, rf = 1;
		if (p->shape.rank == 1)
			fi = fo = p->shape.dim[0];
		for (int r = 2; r < p->shape.rank; r++)
			rf *= p->shape.dim[r];
		if (p->shape.rank >= 2) {
			fi = p->shape.dim[1] * rf;
			fo = p->shape.dim[0] * rf;
		}
		gradc_rng r;
		gradc_rng_seed(&r, seed, (uint64_t)k);
		switch (p->init) {
		case INIT_ZEROS: gradc_fill_f32(f, n, 0); break;
		case INIT_ONES: gradc_fill_f32(f, n, 1); break;
		case INIT_CONSTANT: gradc_fill_f32(f, n, p->init_arg[0]); break;
		case INIT_NORMAL: gradc_normal_f32(f, n, p->init_arg[0], p->init_arg[1], &r); break;
		case INIT_UNIFORM: gradc_uniform_f32(f, n, p->init_arg[0], p->init_arg[1], &r); break;
		case INIT_XAVIER: {
			double bound = sqrt(3.0) * sqrt(2.0 / (double)(fi + fo));
			gradc_uniform_f32(f, n, -bound, bound, &r);
			break;
		}
		case INIT_HE: gradc_normal_f32(f, n, 0.0, sqrt(2.0) / sqrt((double)fi), &r); break;
		}
		for (int32_t i = 0; i < n; i++)
			v[i] = f[i];
		p->value = v;
	}
}

static const char harness[] =
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"#include \"%s.h\"\n"
	"static float gradc_hbuf[%lld];\n"
	"int main(int argc, char **argv)\n"
	"{\n"
	"\tFILE *fin = fopen(argv[1], \"rb\"), *fout = fopen(argv[2], \"wb\");\n"
	"\tif (argc < 3 || !fin || !fout)\n"
	"\t\treturn 3;\n"
	"\tfor (long i = 0; i < %lld; i++) {\n"
	"\t\tdouble v;\n"
	"\t\tif (fread(&v, sizeof v, 1, fin) != 1)\n"
	"\t\t\treturn 4;\n"
	"\t\tgradc_hbuf[i] = (float)v;\n"
	"\t}\n"
	"\tint st = %s_infer(%s);\n"
	"\tfor (long i = %lld; i < %lld; i++) {\n"
	"\t\tdouble v = gradc_hbuf[i];\n"
	"\t\tfwrite(&v, sizeof v, 1, fout);\n"
	"\t}\n"
	"\treturn fclose(fout) != 0 || st != 0;\n"
	"}\n";

/* A run of the generated code: 'buf' holds the inputs, then room for the
 * outputs (floats). */
typedef struct {
	const QModel *q;
	const char *path;
	float *buf;
	int64_t n_in, n_all;
	const Options *o;
} QJob;

/* Build and run the generated code in a temporary directory (in_tmpdir);
 * the outputs land in buf after the inputs. */
static void run_in_tmpdir(void *arg)
{
	const QJob *j = arg;
	const QModel *q = j->q;
	const char *path = j->path;
	float *buf = j->buf;
	int64_t n_in = j->n_in, n_all = j->n_all;
	Buf h = {0}, c = {0};
	quant_emit(&h, &c, q, j->o);
	put_file(str_fmt("%s.h", q->prefix), h.s, h.len);
	put_file(str_fmt("%s.c", q->prefix), c.s, c.len);
	put_runtime();
	put_file("gradc_q8.h", q8_src[0].text, strlen(q8_src[0].text));
	Buf args = {0};
	buf_printf(&args, "&%s_baked", q->prefix);
	int64_t at = 0;
	for (int k = 0; k < q->n_in; k++) {
		buf_printf(&args, ", gradc_hbuf + %lld", (long long)at);
		at += q->batch * shape_numel(q->in_shape[k]);
	}
	for (int k = 0; k < q->n_out; k++) {
		buf_printf(&args, ", gradc_hbuf + %lld", (long long)at);
		at += q->batch * shape_numel(q->out_shape[k]);
	}
	buf_printf(&args, ", (void *)0");
	const char *hs = str_fmt(harness, q->prefix, (long long)(n_all ? n_all : 1),
				 (long long)n_in, q->prefix, args.s, (long long)n_in,
				 (long long)n_all);
	put_file("gradc_harness.c", hs, strlen(hs));
	build_harness(path, q->prefix, "int8 code");
	Doubles d = {0};
	for (int64_t i = 0; i < n_in; i++)
		push_double(&d, buf[i]);
	put_file("in.bin", (const char *)d.v, d.n * sizeof(double));
	const char *cmd = str_fmt("%s %s %s >%s 2>&1", sh_quote(tmp_path("gradc_harness")),
				  sh_quote(tmp_path("in.bin")), sh_quote(tmp_path("out.bin")),
				  sh_quote(tmp_path("run.log")));
	int st = system(cmd);
	size_t len = 0;
	char *res = st == 0 ? read_file(tmp_path("out.bin"), &len) : NULL;
	if (!res || len != (size_t)(n_all - n_in) * sizeof(double))
		error_plain("%s: the generated int8 program failed\n%s", path,
			    log_tail("run.log", 4000));
	for (int64_t i = n_in; i < n_all; i++) {
		double v;
		memcpy(&v, res + (size_t)(i - n_in) * sizeof v, sizeof v);
		buf[i] = (float)v;
	}
}

int quant_run(const char *path, const Graph *fwd, const Options *o, const char *in,
	      const char *out, uint32_t seed)
{
	/* IN: the inputs (checked as `run` does) and any parameters */
	gradc_st_file f = {0};
	const char *msg = gradc_st_read(in, &f);
	if (msg)
		error_plain("%s", strstr(msg, in) ? msg : str_fmt("%s: %s", in, msg));
	int64_t batch = 0;
	double **iv = alloc(sizeof(double *) * (size_t)fwd->n_node);
	Graph *vals = copy_graph(fwd);
	for (int i = 0; i < fwd->n_node && !msg; i++) {
		const Node *n = &fwd->node[i];
		bool leaf = n->op == OP_INPUT || n->op == OP_PARAM;
		const gradc_st_tensor *t = leaf ? gradc_st_find(&f, n->name) : NULL;
		if (n->op == OP_INPUT && !dt_is_int(n->dtype) && !t)
			msg = str_fmt("missing input '%s' (F32 or F64 of shape [B%s%s)", n->name,
				      n->shape.rank ? ", " : "]",
				      n->shape.rank ? shape_str(n->shape) + 1 : "");
		else if (n->op == OP_INPUT && t)
			msg = input_tensor(t, fwd, n, &batch, &iv[i]);
		else if (n->op == OP_PARAM && t) {
			double *v;
			msg = param_tensor(t, n, &v);
			vals->node[i].value = v;
		}
	}
	gradc_st_free(&f);
	if (msg)
		error_plain("%s: %s", in, msg);
	if (o->batch && batch != o->batch)
		error_plain("%s: the tensors have batch %lld, but --batch is %d", in,
			    (long long)batch, o->batch);
	if (o->params) /* a file of train: the parameters IN lacks */
		for (int i = 0; i < fwd->n_node; i++)
			if (fwd->node[i].op == OP_PARAM && !vals->node[i].value) {
				Graph *pg = vals;
				load_params(o->params, &pg, 1);
				break;
			}
	seed_params(vals, seed);
	Options so = *o;
	so.batch = (int)batch;
	const Graph *bf = batch == fwd->batch ? fwd : front_end(fwd->src, &so);
	if (o->params)
		bf = standardize_graph(bf, stats_from_file(o->params, bf));
	Graph *g = autodiff(bf, MODE_INFER);
	Data *cd = quant_calib(o->calib, fwd);
	so.batch = (int)cd->n;
	const Graph *cf = front_end(fwd->src, &so);
	if (o->params)
		cf = standardize_graph(cf, stats_from_file(o->params, cf));
	Graph *cal = autodiff(cf, MODE_INFER);
	copy_values(g, vals);
	copy_values(cal, vals);
	QModel *q = quantize(g, cal, calib_for(cd, fwd, cal), o);

	/* the inputs as floats, in the entry's order */
	int64_t n_in = 0, n_all = 0;
	for (int k = 0; k < q->n_in; k++)
		n_in += batch * shape_numel(q->in_shape[k]);
	n_all = n_in;
	for (int k = 0; k < q->n_out; k++)
		n_all += batch * shape_numel(q->out_shape[k]);
	float *buf = alloc(sizeof(float) * (size_t)(n_all + 1));
	float *ref = alloc(sizeof(float) * (size_t)(n_all + 1));
	const float **ins = alloc(sizeof(float *) * (size_t)(q->n_in + 1));
	float **outs = alloc(sizeof(float *) * (size_t)(q->n_out + 1));
	int64_t at = 0;
	for (int k = 0; k < q->n_in; k++) {
		int id = find_name(fwd, q->in_name[k]);
		int64_t c = batch * shape_numel(q->in_shape[k]);
		for (int64_t i = 0; i < c; i++)
			buf[at + i] = ref[at + i] = (float)iv[id][i];
		ins[k] = ref + at;
		at += c;
	}
	for (int k = 0; k < q->n_out; k++) {
		outs[k] = ref + at;
		at += batch * shape_numel(q->out_shape[k]);
	}
	quant_eval(q, ins, outs);
	in_tmpdir(run_in_tmpdir, &(QJob){q, path, buf, n_in, n_all, o});
	for (int64_t i = n_in; i < n_all; i++)
		if (memcmp(&buf[i], &ref[i], sizeof(float)))
			die("int8: the generated code gives %.9g, the evaluator %.9g (result %lld)",
			    (double)buf[i], (double)ref[i], (long long)(i - n_in));

	/* OUT: the outputs */
	gradc_st_tensor *t = alloc(sizeof *t * (size_t)(q->n_out + 1));
	at = n_in;
	for (int k = 0; k < q->n_out; k++) {
		t[k].name = q->out_name[k];
		t[k].dtype = GRADC_ST_F32;
		t[k].rank = 0;
		t[k].shape[t[k].rank++] = batch;
		for (int r = 0; r < q->out_shape[k].rank; r++)
			t[k].shape[t[k].rank++] = q->out_shape[k].dim[r];
		int64_t c = batch * shape_numel(q->out_shape[k]);
		t[k].nbytes = (size_t)c * sizeof(float);
		t[k].data = buf + at;
		at += c;
	}
	msg = gradc_st_write(out, t, q->n_out);
	if (msg)
		error_plain("%s: %s", out, msg);
	return 0;
}
