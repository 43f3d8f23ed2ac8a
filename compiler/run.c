/* run.c: the harness of `gradc run` and `gradc check`: the generated code,
 * built with the host C compiler and run on tensors, and `gradc run`.
 *
 * Both commands do the same five steps:
 *   1. build the model's graphs (inference, training step, gradients) at
 *      the batch size of the data, and emit NAME.h and NAME.c;
 *   2. write them, the runtime (embedded in gradc, build/runtime_src.h) and
 *      a generated harness (gradc_harness.c) into a fresh temporary
 *      directory;
 *   3. compile with $CC (default cc) -std=c99 -O2;
 *   4. run the harness on a flat file of doubles (in.bin) that gradc writes:
 *      every input, then the parameters given; it writes out.bin, doubles:
 *      a status and the call that returned it, then the results;
 *   5. read the results, remove the directory (on every exit path: an
 *      error, a compiler bug (die_hook), SIGINT, SIGTERM, SIGHUP).
 *
 * Names: the harness's own names are gradc_h* (files and arrays; a model
 * name cannot start with 'gradc') or have no '_' (every symbol of the
 * model has one), so no model can collide with it; OUT's tensors carry the
 * user's names exactly, and a name that would collide there (an output or
 * parameter called 'objective' beside the objective) is an error at it.
 *
 * `run` (SPEC 2): IN is checked completely before anything is built (every
 * input present with its dtype and shape, one batch size B, labels in
 * range, parameters of their exact shapes); the harness calls NAME_init
 * (--seed), overwrites the parameters IN gives, then NAME_infer (the
 * outputs), NAME_grad (objective and gradients at those parameters), and K
 * NAME_train_step; OUT is written atomically by the safetensors writer, so
 * an error leaves no file.  A nonzero status of the generated code is a
 * user error (status 1 from gradc), as is any problem in IN.  `--params P`
 * (a file of `gradc train`) gives the parameters IN lacks and its
 * standardization statistics, applied to IN's inputs (standardize.c).
 *
 * `check` (check.c) fills in.bin with its own inputs and the elements to
 * check; the harness then differentiates numerically (Job.check).  The
 * temporary directory and its cleanup are hostcc.c's.
 *
 * Limits: POSIX (mkdtemp, system); the harness exchanges doubles in the
 * host's byte order (it runs on the same machine).
 */
#define _XOPEN_SOURCE 700
#include "host.h"
#include "gradc_safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>


/* ---- values exchanged with the harness */

void push_double(Doubles *d, double v)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 4096;
		d->v = alloc_grow(d->v, d->n * sizeof(double), cap * sizeof(double));
		d->cap = cap;
	}
	d->v[d->n++] = v;
}


/* ---- the harness */

/* The C type of a forward input node's array. */
static const char *in_type(const Job *j, const Node *n)
{
	return dt_is_int(n->dtype) ? "int32_t" : str_fmt("%s_real", j->prefix);
}

/* The harness's name of each argument of an entry point (api.c's order);
 * 'ctx' the gradients' struct.  */
static const char *harness_arg(const Api *a, ApiArg arg, int k, const void *ctx)
{
	(void)a;
	switch (arg) {
	case ARG_P: return "&p";
	case ARG_S: return "&s";
	case ARG_IN: return str_fmt("gradc_hin%d", k);
	case ARG_OUT: return str_fmt("gradc_hout%d", k);
	case ARG_GRAD: return ctx;
	case ARG_ST: return "&st";
	case ARG_ARENA: return "NULL";
	}
	die("harness_arg: %d", arg);
}

static const char harness_common[] =
	"#include <stdint.h>\n"
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"#include <math.h>\n"
	"#include \"%s.h\"\n"
	"\n"
	"typedef %s_real real;\n"
	"static FILE *fin, *fout;\n"
	"\n"
	"static double rd1(void)\n"
	"{\n"
	"\tdouble v;\n"
	"\tif (fread(&v, sizeof v, 1, fin) != 1) {\n"
	"\t\tfputs(\"harness: short input\\n\", stderr);\n"
	"\t\texit(4);\n"
	"\t}\n"
	"\treturn v;\n"
	"}\n"
	"\n"
	"static void rd(real *d, long n)\n"
	"{\n"
	"\tfor (long i = 0; i < n; i++)\n"
	"\t\td[i] = (real)rd1();\n"
	"}\n"
	"\n"
	"static void rdi(int32_t *d, long n)\n"
	"{\n"
	"\tfor (long i = 0; i < n; i++)\n"
	"\t\td[i] = (int32_t)rd1();\n"
	"}\n"
	"\n"
	"static void wr1(double v)\n"
	"{\n"
	"\tif (fwrite(&v, sizeof v, 1, fout) != 1) {\n"
	"\t\tfputs(\"harness: cannot write\\n\", stderr);\n"
	"\t\texit(4);\n"
	"\t}\n"
	"}\n"
	"\n"
	"static void wr(const real *d, long n)\n"
	"{\n"
	"\tfor (long i = 0; i < n; i++)\n"
	"\t\twr1((double)d[i]);\n"
	"}\n"
	"\n"
	"/* a status from the generated code: report it and which call */\n"
	"static void fail(int status, int where)\n"
	"{\n"
	"\twr1((double)status);\n"
	"\twr1((double)where);\n"
	"\tfclose(fout);\n"
	"\texit(0);\n"
	"}\n"
	"\n";

/* Write harness.c for job 'j'. */
static void write_harness(const Job *j)
{
	const Graph *fwd = j->fwd;
	const char *P = j->prefix;
	int n_in, n_pa;
	int *ins = declared_nodes(j->fwd, OP_INPUT, &n_in);
	int *pas = declared_nodes(j->fwd, OP_PARAM, &n_pa);
	Buf b = {0};
	buf_printf(&b, "/* gradc_harness.c: generated by gradc %s for %s */\n",
		   j->check ? "check" : "run", j->path);
	buf_printf(&b, harness_common, P, P);
	buf_printf(&b, "static %s_params p, g%s;\n", P, j->check ? ", g2" : "");
	if (j->train)
		buf_printf(&b, "static %s_state s;\nstatic %s_stats st;\n", P, P);
	for (int k = 0; k < n_in; k++) {
		const Node *n = &fwd->node[ins[k]];
		buf_printf(&b, "static %s gradc_hin%d[%lld]; /* %s */\n", in_type(j, n), k,
			   (long long)node_numel(fwd, n), n->name);
	}
	for (int k = 0; k < fwd->n_out && !j->check; k++) {
		const Node *n = &fwd->node[fwd->out[k]];
		buf_printf(&b, "static real gradc_hout%d[%lld]; /* %s */\n", k,
			   (long long)node_numel(fwd, n), fwd->out_name[k]);
	}
	buf_printf(&b, "\nint main(int argc, char **argv)\n{\n");
	buf_printf(&b, "\tint rc;\n\t(void)rc;\n\t(void)rd;\n\t(void)rdi;\n\t(void)rd1;\n"
		       "\t(void)wr;\n\t(void)fail;\n");
	buf_printf(&b, "\tif (argc != 3 || !(fin = fopen(argv[1], \"rb\")) ||"
		       " !(fout = fopen(argv[2], \"wb\"))) {\n"
		       "\t\tfputs(\"harness: cannot open its files\\n\", stderr);\n"
		       "\t\treturn 4;\n\t}\n");
	buf_printf(&b, "\t%s_init(&p, %s%lluu);\n", P, j->train ? "&s, " : "",
		   (unsigned long long)(j->check ? CHECK_SEED : j->seed));
	for (int k = 0; k < n_in; k++) {
		const Node *n = &fwd->node[ins[k]];
		buf_printf(&b, "\t%s(gradc_hin%d, %lld);\n", dt_is_int(n->dtype) ? "rdi" : "rd", k,
			   (long long)node_numel(fwd, n));
	}
	for (int k = 0; k < n_pa; k++) {
		const Node *n = &fwd->node[pas[k]];
		if (j->param && j->param[pas[k]])
			buf_printf(&b, "\trd(%s_param_values(&p, %d), %lld); /* %s */\n", P, k,
				   (long long)shape_numel(n->shape), n->name);
	}
	const Api *api = api_describe(j->fwd, j->infer, P);
	if (!j->check && fwd->n_out)
		buf_printf(&b, "\trc = %s;\n\tif (rc)\n\t\tfail(rc, 0);\n",
			   api_call(api, API_INFER, harness_arg, NULL));
	if (j->grad)
		buf_printf(&b, "\trc = %s;\n\tif (rc)\n\t\tfail(rc, 1);\n",
			   api_call(api, API_GRAD, harness_arg, "&g"));
	const char *fd_grad = api_call(api, API_GRAD, harness_arg, "&g2");
	buf_printf(&b, "\twr1(0);\n\twr1(0);\n");
	if (j->check) {
		/* the objective J; per trainable parameter: n and n indices in;
		 * n, sum (fd - g)^2, sum g^2, sum fd^2 out */
		buf_printf(&b, "\twr1((double)st.objective);\n");
		buf_printf(&b, "\t{\n\t\treal *w, *gw;\n\t\tlong n, i, k;\n");
		for (int k = 0; k < n_pa; k++) {
			const Node *n = &fwd->node[pas[k]];
			if (n->frozen)
				continue;
			buf_printf(&b, "\t\t/* %s */\n", n->name);
			buf_printf(&b, "\t\tw = %s_param_values(&p, %d);\n", P, k);
			buf_printf(&b, "\t\tgw = %s_param_values(&g, %d);\n", P, k);
			buf_printf(&b,
				   "\t\tn = (long)rd1();\n"
				   "\t\t{\n"
				   "\t\t\tdouble se = 0, sg = 0, sf = 0;\n"
				   "\t\t\tfor (k = 0; k < n; k++) {\n"
				   "\t\t\t\tdouble v, h, jp, jm, fd, d;\n"
				   "\t\t\t\ti = (long)rd1();\n"
				   "\t\t\t\tv = w[i];\n"
				   "\t\t\t\th = 1e-5 * (fabs(v) > 1 ? fabs(v) : 1);\n"
				   "\t\t\t\tw[i] = v + h;\n"
				   "\t\t\t\trc = %s;\n"
				   "\t\t\t\tif (rc)\n\t\t\t\t\tfail(rc, 2);\n"
				   "\t\t\t\tjp = st.objective;\n"
				   "\t\t\t\tw[i] = v - h;\n"
				   "\t\t\t\trc = %s;\n"
				   "\t\t\t\tif (rc)\n\t\t\t\t\tfail(rc, 2);\n"
				   "\t\t\t\tjm = st.objective;\n"
				   "\t\t\t\tw[i] = v;\n"
				   "\t\t\t\tfd = (jp - jm) / (2 * h);\n"
				   "\t\t\t\td = fd - gw[i];\n"
				   "\t\t\t\tse += d * d;\n"
				   "\t\t\t\tsg += (double)gw[i] * gw[i];\n"
				   "\t\t\t\tsf += fd * fd;\n"
				   "\t\t\t}\n"
				   "\t\t\twr1((double)n);\n\t\t\twr1(se);\n\t\t\twr1(sg);\n"
				   "\t\t\twr1(sf);\n"
				   "\t\t}\n",
				   fd_grad, fd_grad);
		}
		buf_printf(&b, "\t}\n");
	} else {
		for (int k = 0; k < fwd->n_out; k++) {
			const Node *n = &fwd->node[fwd->out[k]];
			buf_printf(&b, "\twr(gradc_hout%d, %lld);\n", k, (long long)node_numel(fwd, n));
		}
		if (j->grad) {
			buf_printf(&b, "\twr1((double)st.objective);\n");
			for (int k = 0; k < n_pa; k++) {
				const Node *n = &fwd->node[pas[k]];
				if (!n->frozen)
					buf_printf(
						&b,
						"\twr(%s_param_values(&g, %d), %lld); /* %s */\n",
						P, k, (long long)shape_numel(n->shape), n->name);
			}
		}
		if (j->train && j->steps > 0) {
			buf_printf(&b, "\t{\n\t\tlong k;\n\t\tfor (k = 0; k < %d; k++) {\n",
				   j->steps);
			buf_printf(&b, "\t\t\trc = %s;\n",
				   api_call(api, API_TRAIN, harness_arg, NULL));
			buf_printf(&b, "\t\t\tif (rc) {\n\t\t\t\tfseek(fout, 0, SEEK_SET);\n"
				       "\t\t\t\tfail(rc, 2 + (int)k);\n\t\t\t}\n\t\t}\n\t}\n");
		}
		for (int k = 0; k < n_pa; k++) {
			const Node *n = &fwd->node[pas[k]];
			buf_printf(&b, "\twr(%s_param_values(&p, %d), %lld); /* %s */\n", P, k,
				   (long long)shape_numel(n->shape), n->name);
		}
	}
	buf_printf(&b, "\tif (fclose(fout) != 0)\n\t\treturn 4;\n\treturn 0;\n}\n");
	put_file("gradc_harness.c", b.s, b.len);
}

/* ---- building and running */

/* Build the graphs of 'src' at batch j->batch, emit, and write every file
 * the harness needs but itself.  */
static void generate(Job *j, const Source *src, const Options *o)
{
	Options opt = *o;
	opt.batch = (int)j->batch;
	opt.f64 = j->f64;
	opt.params = NULL;
	opt.dump = NULL;
	j->fwd = front_end(src, &opt);
	j->prefix = opt.name ? opt.name : j->fwd->model;
	opt.infer_only = !j->fwd->has_minimize;
	j->n_modes = 0;
	j->modes[j->n_modes++] = j->infer = build_mode(j->fwd, MODE_INFER, &opt);
	if (j->fwd->has_minimize && opt.budget_set) { /* --budget [--fit]: fitbuild.c */
		Fit r;
		build_fit(j->fwd, &opt, &r);
		if (r.ram > opt.budget)
			error_plain("training needs %lld bytes of RAM, over the budget of %lld (--fit may "
			            "find a way)", (long long)r.ram, (long long)opt.budget);
		opt = r.opt;
		/* micro-batched (r.n == 2): one graph behind the step and the gradients */
		j->n_modes = r.n;
		for (int k = 0; k < r.n; k++)
			j->modes[k] = r.modes[k];
		j->infer = r.modes[0];
		j->train = r.modes[1];
		j->grad = r.n > 2 ? r.modes[2] : r.modes[1];
	} else if (j->fwd->has_minimize) {
		j->modes[j->n_modes++] = j->train = build_mode(j->fwd, MODE_TRAIN, &opt);
		j->modes[j->n_modes++] = j->grad = build_mode(j->fwd, MODE_GRAD, &opt);
	}
	Buf h = {0}, c = {0};
	emit(&h, &c, j->modes, j->n_modes, &opt);
	put_file(str_fmt("%s.h", j->prefix), h.s, h.len);
	put_file(str_fmt("%s.c", j->prefix), c.s, c.len);
	put_runtime();
}


/* Run the harness on in.bin; return out.bin's doubles (*n of them). */
static double *execute(const Job *j, const Doubles *in, size_t *n)
{
	put_file("in.bin", (const char *)in->v, in->n * sizeof(double));
	const char *cmd = str_fmt("%s %s %s >%s 2>&1", sh_quote(tmp_path("gradc_harness")),
				  sh_quote(tmp_path("in.bin")), sh_quote(tmp_path("out.bin")),
				  sh_quote(tmp_path("run.log")));
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		const char *why = st == -1          ? strerror(errno)
				  : WIFSIGNALED(st) ? str_fmt("killed by signal %d", WTERMSIG(st))
				  : WIFEXITED(st)   ? str_fmt("exit status %d", WEXITSTATUS(st))
						    : "failed";
		error_plain("%s: the generated program failed (%s)\n%s", j->path, why,
			    log_tail("run.log", 4000));
	}
	/* not read_file: the results may be larger than a model file */
	size_t len = 0;
	char *s = NULL;
	FILE *f = fopen(tmp_path("out.bin"), "rb");
	if (f && !fseek(f, 0, SEEK_END)) {
		long end = ftell(f);
		rewind(f);
		if (end >= 0) {
			len = (size_t)end;
			s = alloc(len + 1);
			if (fread(s, 1, len, f) != len)
				s = NULL;
		}
	}
	if (f)
		fclose(f);
	if (!s)
		error_plain("%s: cannot read the generated program's results: %s", j->path,
			    strerror(errno));
	if (len % sizeof(double) || len < 2 * sizeof(double))
		error_plain("%s: the generated program wrote %zu bytes of results", j->path, len);
	*n = len / sizeof(double);
	double *v = alloc(len);
	memcpy(v, s, len);
	return v;
}

/* The message for a status the generated code returned. */
static const char *status_msg(const Job *j, int status, int where)
{
	const char *call = where == 0   ? str_fmt("%s_infer", j->prefix)
			   : where == 1 ? str_fmt("%s_grad", j->prefix)
			   : j->check   ? str_fmt("%s_grad (finite differences)", j->prefix)
					: str_fmt("%s_train_step (step %d)", j->prefix, where - 1);
	return str_fmt("%s (status %d from %s)", api_status_what(status), status, call);
}

/* Run the steps 1-5 of the top comment with cleanup on every exit path:
 * 'fill' writes in.bin's values once the graphs are built.  The results
 * (after the status pair) in *res, *n_res.  */
typedef struct RunJob {
	Job *j;
	const Source *src;
	const Options *o;
	void (*fill)(Job *, Doubles *);
	double **res;
	size_t *n_res;
} RunJob;

/* Steps 1-4 in the temporary directory (in_tmpdir's body, 'arg' a RunJob). */
static void run_body(void *arg)
{
	RunJob *r = arg;
	Job *j = r->j;
	generate(j, r->src, r->o);
	Doubles in = {0};
	r->fill(j, &in);
	write_harness(j);
	build_harness(j->path, j->prefix, "code");
	double *v = execute(j, &in, r->n_res);
	if (v[0] != 0)
		error_plain("%s: %s", j->check ? j->path : j->in,
			    status_msg(j, (int)v[0], (int)v[1]));
	*r->res = v + 2;
	*r->n_res -= 2;
}

void run_job(Job *j, const Source *src, const Options *o, void (*fill)(Job *, Doubles *),
		    double **res, size_t *n_res)
{
	RunJob rj = {j, src, o, fill, res, n_res};
	in_tmpdir(run_body, &rj);
}

/* ---- gradc run */

/* A message of the safetensors reader about file 'path', which names the
 * file itself mostly; "path: msg" when it does not.  */
static const char *st_read_msg(const char *path, const char *msg)
{
	return strstr(msg, path) ? msg : str_fmt("%s: %s", path, msg);
}

/* Check IN against the forward graph 'fwd' (any batch); fill j->input,
 * j->param (by the ids of 'fwd', kept in j->orig) and j->batch.  */
static void read_in(Job *j, const Graph *fwd, int want_batch)
{
	gradc_st_file f = {0};
	const char *msg = gradc_st_read(j->in, &f);
	if (msg)
		error_plain("%s", st_read_msg(j->in, msg));
	j->orig = fwd;
	j->input = alloc(sizeof(double *) * (size_t)fwd->n_node);
	j->param = alloc(sizeof(double *) * (size_t)fwd->n_node);
	int64_t batch = 0;
	for (int i = 0; i < fwd->n_node && !msg; i++) {
		const Node *n = &fwd->node[i];
		const gradc_st_tensor *t =
			n->op == OP_INPUT || n->op == OP_PARAM ? gradc_st_find(&f, n->name) : NULL;
		if (n->op == OP_INPUT && !t)
			msg = str_fmt("missing input '%s' (%s of shape [B%s%s)", n->name,
				      dt_is_int(n->dtype) ? "I32 or I64" : "F32 or F64",
				      n->shape.rank ? ", " : "]",
				      n->shape.rank ? shape_str(n->shape) + 1 : "");
		else if (n->op == OP_INPUT)
			msg = input_tensor(t, fwd, n, &batch, &j->input[i]);
		else if (t)
			msg = param_tensor(t, n, &j->param[i]);
	}
	gradc_st_free(&f);
	if (msg)
		error_plain("%s: %s", j->in, msg);
	if (want_batch && batch && want_batch != batch)
		error_plain("%s: the tensors have batch %lld, but --batch is %d", j->in,
			    (long long)batch, want_batch);
	if (!batch)
		batch = want_batch ? want_batch : fwd->batch;
	j->batch = batch;
}

/* Values by the ids of j->orig -> by the ids of the rebuilt j->fwd. */
static double **remap(const Job *j, double **v)
{
	double **w = alloc(sizeof(double *) * (size_t)j->fwd->n_node);
	for (int i = 0; i < j->orig->n_node; i++)
		if (v[i]) {
			int k = find_name(j->fwd, j->orig->node[i].name);
			if (k < 0)
				die("remap: no '%s'", j->orig->node[i].name);
			w[k] = v[i];
		}
	return w;
}

/* in.bin of `run`: the inputs, then the parameters given, in declaration
 * order (the harness reads them so).  */
static void fill_run(Job *j, Doubles *d)
{
	const Graph *g = j->fwd;
	j->input = remap(j, j->input);
	j->param = remap(j, j->param);
	int n_in, n_pa;
	int *ins = declared_nodes(j->fwd, OP_INPUT, &n_in);
	int *pas = declared_nodes(j->fwd, OP_PARAM, &n_pa);
	for (int k = 0; k < n_in; k++)
		for (int64_t i = 0, c = node_numel(g, &g->node[ins[k]]); i < c; i++)
			push_double(d, j->input[ins[k]][i]);
	for (int k = 0; k < n_pa; k++)
		if (j->param[pas[k]])
			for (int64_t i = 0, c = shape_numel(g->node[pas[k]].shape); i < c; i++)
				push_double(d, j->param[pas[k]][i]);
}

/* Fill tensor 't' (name, shape of node 'n', with a leading batch if
 * 'batch' > 0) from res[*at..], converted to the OUT dtype.  */
static void out_tensor(const Job *j, gradc_st_tensor *t, const char *name, const Node *n,
		       int64_t batch, const double *res, size_t n_res, size_t *at)
{
	t->name = name;
	t->dtype = j->f64 ? GRADC_ST_F64 : GRADC_ST_F32;
	t->rank = 0;
	if (batch > 0)
		t->shape[t->rank++] = batch;
	for (int r = 0; n && r < n->shape.rank; r++)
		t->shape[t->rank++] = n->shape.dim[r];
	size_t c = (size_t)(n ? shape_numel(n->shape) : 1) * (size_t)(batch > 0 ? batch : 1);
	if (*at + c > n_res)
		error_plain("%s: the generated program wrote too few results", j->path);
	t->nbytes = c * (j->f64 ? sizeof(double) : sizeof(float));
	t->data = alloc(t->nbytes ? t->nbytes : 1);
	for (size_t k = 0; k < c; k++)
		if (j->f64)
			((double *)t->data)[k] = res[*at + k];
		else
			((float *)t->data)[k] = (float)res[*at + k];
	*at += c;
}

int cmd_run(const char *path, const Graph *fwd, const Options *o, const char *in, const char *out,
	    int steps, uint32_t seed)
{
	if (steps > 0 && !fwd->has_minimize)
		error_plain("%s: --steps needs a 'minimize' statement", path);
	/* OUT holds the objective as 'objective' (SPEC 2): no other tensor may */
	for (int k = 0; fwd->has_minimize && k < fwd->n_out; k++)
		if (!strcmp(fwd->out_name[k], "objective"))
			error_at(fwd->out_loc[k],
				 "'gradc run' writes the objective as 'objective': an output "
				 "cannot have that name");
	for (int i = 0; fwd->has_minimize && i < fwd->n_node; i++)
		if (fwd->node[i].op == OP_PARAM && !strcmp(fwd->node[i].name, "objective"))
			error_at(fwd->node[i].loc,
				 "'gradc run' writes the objective as 'objective': a parameter "
				 "cannot have that name");
	Job j = {.path = path, .in = in, .f64 = o->f64, .seed = seed, .steps = steps};
	read_in(&j, fwd, o->batch);
	if (o->params) /* a file of train: parameters IN lacks, statistics */
		run_params(o->params, fwd, j.param, j.input, j.batch);
	double *res;
	size_t n_res;
	run_job(&j, fwd->src, o, fill_run, &res, &n_res);

	/* OUT: outputs, objective, grad.P, then every parameter */
	const Graph *g = j.fwd;
	int n_pa;
	int *pas = declared_nodes(j.fwd, OP_PARAM, &n_pa);
	gradc_st_tensor *t = alloc(sizeof *t * (size_t)(g->n_out + 2 * n_pa + 1));
	int n_t = 0;
	size_t at = 0;
	for (int k = 0; k < g->n_out; k++) {
		const Node *n = &g->node[g->out[k]];
		out_tensor(&j, &t[n_t++], g->out_name[k], n, j.batch, res, n_res, &at);
	}
	if (j.grad) {
		out_tensor(&j, &t[n_t++], "objective", NULL, 0, res, n_res, &at);
		for (int k = 0; k < n_pa; k++) {
			const Node *n = &g->node[pas[k]];
			if (!n->frozen)
				out_tensor(&j, &t[n_t++], str_fmt("grad.%s", n->name), n, 0, res,
					   n_res, &at);
		}
	}
	for (int k = 0; k < n_pa; k++)
		out_tensor(&j, &t[n_t++], g->node[pas[k]].name, &g->node[pas[k]], 0, res, n_res,
			   &at);
	if (at != n_res)
		error_plain("%s: the generated program wrote %zu results, expected %zu", path,
			    n_res, at);
	const char *msg = gradc_st_write(out, t, n_t);
	if (msg)
		error_plain("%s: %s", out, msg);
	return 0;
}
