/* train.c: `gradc train` and `gradc eval` (SPEC 4, "Host training"): the
 * generated training step, built with the host C compiler, on the user's
 * data, without the user writing any C.
 *
 *   1. read and check everything first: the model, the data (data.c), the
 *      validation data or split, --init / --params and their
 *      standardization statistics; a problem stops here, nothing written;
 *   2. build the model at the batch size (inference, training step,
 *      gradients) and emit it into a temporary directory with the runtime,
 *      the embedded driver (harness/trainer.c) and glue.h, which maps the
 *      driver's m_* names onto this model's entry points; compile with $CC;
 *   3. run the driver on IN.bin (settings, samples in the build's types,
 *      initial parameters): it trains and prints one line per epoch on
 *      gradc's own stdout (a live bar when that is a terminal), or
 *      evaluates; it writes OUT.bin;
 *   4. train: write the parameters (safetensors, with the statistics), the
 *      blob of NAME_save, the per-epoch log (CSV) and curve (SVG); each file
 *      atomically, and none if any fails.  eval: print the objective, the
 *      tracked values, the accuracy and the confusion matrix; --pred writes
 *      the predicted classes.
 *
 * Same seed, same data, same settings: the same bytes (the driver's only
 * clock is the throughput it prints).
 */
#define _POSIX_C_SOURCE 200809L
#include "gradc.h"
#include "gradc_safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
#define lua_scripts trainer_src
#include "trainer_src.h"
#undef lua_scripts
#pragma GCC diagnostic pop

static const char usage[] =
	"usage: gradc train MODEL.nn --data D [--val V | --val-split F] [--epochs N] [--batch N]\n"
	"                   [--lr X] [--schedule constant|step|cosine] [--step-size N] [--gamma "
	"G]\n"
	"                   [--min-lr X] [--warmup N] [--seed S] [--shuffle | --no-shuffle]\n"
	"                   [--last-batch drop|pad] [--standardize] [--label COLUMN]\n"
	"                   [--init P.safetensors] [--keep-best] [--out P.safetensors]\n"
	"                   [--blob P.blob] [--log LOG.csv] [--plot CURVE.svg] [--dtype f32|f64]\n"
	"       gradc eval MODEL.nn --data D --params P.safetensors [--batch N] [--label COLUMN]\n"
	"                  [--pred PRED.csv] [--dtype f32|f64]\n"
	"D, V: a CSV file (float inputs flattened, then the int label), a directory of\n"
	"NAME.npy (one per model input), or a safetensors file with a tensor per input.\n";

enum { SCHED_CONST, SCHED_STEP, SCHED_COSINE }; /* as harness/trainer.c */

typedef struct Targs {
	const char *cmd, *model, *data, *val, *init, *params, *out, *blob, *log, *plot, *label,
		*pred;
	double val_split, lr, gamma, min_lr;
	int epochs, step_size, warmup, sched;
	uint32_t seed;
	bool no_shuffle, pad, keep_best, standardize;
	Options opt;
} Targs;

/* What gradc knows of the build and the data. */
typedef struct Run {
	const Targs *a;
	const Graph *fwd;
	const char *prefix;
	int *ins, n_in, *pas, n_pa; /* input and parameter ids, declaration order */
	int label;                  /* the int input, or -1 */
	int64_t classes;
	int pred_out; /* index of the output argmax'ed, or -1 */
	int n_track;
	Data *train, *val;
	Stats *stats;
	double **init; /* per parameter node id: initial values, or NULL */
} Run;

static NORETURN void bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "gradc: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage);
	exit(2);
}

/* ---- arguments */

static double parse_num(const char *s, const char *what, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		bad_usage(str_fmt("bad %s '%%s'", what), s);
	return v;
}

static Targs parse_targs(int argc, char **argv)
{
	Targs a = {.cmd = argv[1], .epochs = 10, .step_size = 10, .gamma = 0.1, .seed = 0};
	const char *train_only = NULL; /* an option eval does not take */
	for (int i = 2; i < argc; i++) {
		const char *s = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VAL() (v ? (i++, v) : (bad_usage("option '%s' needs a value", s), v))
#define IS(x) (!strcmp(s, x))
		if (IS("--help") || IS("-h")) {
			fputs(usage, stdout);
			exit(0);
		}
		if (s[0] == '-' && !IS("--data") && !IS("--params") && !IS("--batch")
		    && !IS("--label") && !IS("--pred") && !IS("--dtype"))
			train_only = s;
		if (IS("--data"))
			a.data = VAL();
		else if (IS("--val"))
			a.val = VAL();
		else if (IS("--val-split"))
			a.val_split = parse_num(VAL(), "--val-split", 1e-9, 1 - 1e-9);
		else if (IS("--epochs"))
			a.epochs = (int)parse_num(VAL(), "epoch count", 1, 1000000);
		else if (IS("--batch"))
			a.opt.batch = (int)parse_num(VAL(), "batch", 1, 1 << 30);
		else if (IS("--lr"))
			a.lr = parse_num(VAL(), "learning rate", 1e-300, 1e300);
		else if (IS("--schedule")) {
			const char *k = VAL();
			a.sched = !strcmp(k, "constant") ? SCHED_CONST
				  : !strcmp(k, "step")   ? SCHED_STEP
				  : !strcmp(k, "cosine") ? SCHED_COSINE
							 : -1;
			if (a.sched < 0)
				bad_usage("bad --schedule '%s' (constant, step or cosine)", k);
		} else if (IS("--step-size"))
			a.step_size = (int)parse_num(VAL(), "--step-size", 1, 1000000);
		else if (IS("--gamma"))
			a.gamma = parse_num(VAL(), "--gamma", 0, 1e300);
		else if (IS("--min-lr"))
			a.min_lr = parse_num(VAL(), "--min-lr", 0, 1e300);
		else if (IS("--warmup"))
			a.warmup = (int)parse_num(VAL(), "--warmup", 0, 1000000);
		else if (IS("--seed"))
			a.seed = (uint32_t)parse_num(VAL(), "seed", 0, UINT32_MAX);
		else if (IS("--shuffle"))
			a.no_shuffle = false;
		else if (IS("--no-shuffle"))
			a.no_shuffle = true;
		else if (IS("--last-batch")) {
			const char *k = VAL();
			if (strcmp(k, "drop") && strcmp(k, "pad"))
				bad_usage("bad --last-batch '%s' (drop or pad)", k);
			a.pad = !strcmp(k, "pad");
		} else if (IS("--standardize"))
			a.standardize = true;
		else if (IS("--label"))
			a.label = VAL();
		else if (IS("--init"))
			a.init = VAL();
		else if (IS("--params"))
			a.params = VAL();
		else if (IS("--keep-best"))
			a.keep_best = true;
		else if (IS("--out"))
			a.out = VAL();
		else if (IS("--blob"))
			a.blob = VAL();
		else if (IS("--log"))
			a.log = VAL();
		else if (IS("--plot"))
			a.plot = VAL();
		else if (IS("--pred"))
			a.pred = VAL();
		else if (IS("--dtype")) {
			const char *d = VAL();
			if (strcmp(d, "f32") && strcmp(d, "f64"))
				bad_usage("bad dtype '%s' (f32 or f64)", d);
			a.opt.f64 = !strcmp(d, "f64");
		} else if (s[0] == '-' && s[1])
			bad_usage("unknown option '%s'", s);
		else if (!a.model)
			a.model = s;
		else
			bad_usage("unexpected argument '%s'", s);
#undef IS
#undef VAL
	}
	bool train = !strcmp(a.cmd, "train");
	if (!a.model)
		bad_usage("%s", "missing MODEL.nn");
	if (!a.data)
		bad_usage("%s", "missing --data");
	if (train && (a.params || a.pred))
		bad_usage("'%s' is an option of eval (train takes --init and --out)",
			  a.params ? "--params" : "--pred");
	if (!train && !a.params)
		bad_usage("%s", "eval needs --params P.safetensors");
	if (!train && train_only)
		bad_usage("'%s' is an option of train (eval takes --data, --params, --batch, "
			  "--label, --pred, --dtype)",
			  train_only);
	if (a.val && a.val_split)
		bad_usage("%s", "--val and --val-split exclude each other");
	if (a.keep_best && !a.val && !a.val_split)
		bad_usage("%s", "--keep-best needs validation data (--val or --val-split)");
	return a;
}

/* ---- reading */

/* The output argmax'ed for accuracy: the logits of the cross_entropy of the
 * label if they are an output, else the first output of [classes].  */
static int find_pred_out(const Run *r)
{
	const Graph *g = r->fwd;
	if (r->label < 0 || !g->n_out)
		return -1;
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].op == OP_CROSS_ENTROPY && g->node[i].in[1] == r->label)
			for (int k = 0; k < g->n_out; k++)
				if (g->out[k] == g->node[i].in[0])
					return k;
	for (int k = 0; k < g->n_out; k++) {
		Shape s = g->node[g->out[k]].shape;
		if (s.rank == 1 && s.dim[0] == r->classes)
			return k;
	}
	return -1;
}

/* The parameters file 'path' (--init or --params): parameter values into
 * r->init (all of them if 'all'), statistics into r->stats.  */
static void read_params(Run *r, const char *path, bool all)
{
	gradc_st_file f = {0};
	const char *msg = gradc_st_read(path, &f);
	if (msg)
		error_plain("%s", strstr(msg, path) ? msg : str_fmt("%s: %s", path, msg));
	int found = 0;
	r->init = alloc(sizeof(double *) * (size_t)r->fwd->n_node);
	for (int k = 0; k < r->n_pa && !msg; k++) {
		const Node *n = &r->fwd->node[r->pas[k]];
		const gradc_st_tensor *t = gradc_st_find(&f, n->name);
		if (t)
			msg = param_tensor(t, n, &r->init[r->pas[k]]), found++;
		else if (all)
			msg = str_fmt("missing parameter '%s' (F32 or F64 of shape %s)", n->name,
				      shape_str(n->shape));
	}
	if (!msg)
		msg = read_stats(&f, r->fwd, &r->stats);
	gradc_st_free(&f);
	if (!msg && !found && r->n_pa)
		msg = "none of the model's parameters is in the file";
	if (msg)
		error_plain("%s: %s", path, msg);
}

/* Read and check everything of step 1. */
static void prepare(Run *r)
{
	const Targs *a = r->a;
	const Graph *g = r->fwd;
	if (!g->has_minimize)
		error_plain("%s: no 'minimize' statement: nothing to %s", a->model,
			    !strcmp(a->cmd, "train") ? "train" : "evaluate");
	r->ins = declared_inputs(g, &r->n_in);
	r->label = -1;
	for (int k = 0; k < r->n_in; k++)
		if (g->node[r->ins[k]].type == T_INT)
			r->label = r->ins[k];
	r->classes = r->label >= 0 ? label_classes(g, r->label) : 0;
	r->pred_out = r->classes < INT32_MAX ? find_pred_out(r) : -1;
	r->n_track = g->n_track;
	r->pas = alloc(sizeof(int) * (size_t)g->n_node);
	for (int i = 0; i < g->n_node; i++) /* params in declaration order */
		if (g->node[i].op == OP_PARAM) {
			int k = r->n_pa++;
			for (; k > 0 && g->node[r->pas[k - 1]].loc.line > g->node[i].loc.line; k--)
				r->pas[k] = r->pas[k - 1];
			r->pas[k] = i;
		}
	r->train = load_data(a->data, g, a->label);
	if (a->val)
		r->val = load_data(a->val, g, a->label);
	else if (a->val_split)
		r->val = split_data(r->train, g, a->val_split, a->seed);
	const char *pfile = a->params ? a->params : a->init;
	if (pfile)
		read_params(r, pfile, a->params != NULL);
	if (!r->stats && a->standardize)
		r->stats = fit_standardize(r->train, g);
	if (a->params)
		return;
	int64_t b = g->batch;
	if (!a->pad && r->train->n < b)
		error_plain("%s: %lld training samples, fewer than one batch of %lld (--batch, or "
			    "--last-batch pad)",
			    a->data, (long long)r->train->n, (long long)b);
}

/* ---- the build */

typedef struct Bytes {
	char *p;
	size_t n, cap;
} Bytes;

static void put(Bytes *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 16;
		while (cap < b->n + n)
			cap *= 2;
		b->p = alloc_grow(b->p, b->n, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void put1(Bytes *b, double v)
{
	put(b, &v, sizeof v);
}

/* 'n' values of v[] as the build's real (or int32 for a label). */
static void put_values(Bytes *b, const Run *r, const double *v, int64_t n, bool is_int)
{
	for (int64_t i = 0; i < n; i++) {
		if (is_int) {
			int32_t x = (int32_t)v[i];
			put(b, &x, sizeof x);
		} else if (r->fwd->f64) {
			put(b, &v[i], sizeof(double));
		} else {
			float x = (float)v[i];
			put(b, &x, sizeof x);
		}
	}
}

/* glue.h: the driver's m_* names for this model. */
static void write_glue(const Run *r, Graph *infer)
{
	const Graph *g = r->fwd;
	Buf names = {0};
	for (int k = 0; k < r->n_pa; k++)
		buf_printf(&names, "\"%s\", ", g->node[r->pas[k]].name);
	const char *P = r->prefix;
	Buf b = {0};
	buf_printf(&b, "/* glue.h: generated by gradc train/eval for %s */\n#include \"%s.h\"\n\n",
		   r->a->model, P);
	buf_printf(&b,
		   "typedef %s_real real;\ntypedef %s_params m_params;\n"
		   "typedef %s_state m_state;\ntypedef %s_stats m_stats;\n",
		   P, P, P, P);
	buf_printf(&b, "#define M_BATCH %s_BATCH\n#define M_N_IN %d\n#define M_N_TRACK %d\n", P,
		   r->n_in, r->n_track);
	buf_printf(&b,
		   "#define M_N_PARAMS %d /* the model's own, without the statistics */\n"
		   "static const char *const m_param_name[M_N_PARAMS + 1] = {%s0};\n"
		   "#define M_N_TABLE %s_N_PARAMS\n#define M_BLOB_BYTES %s_BLOB_BYTES\n",
		   r->n_pa, names.s ? names.s : "", P, P);
	buf_printf(&b, "#define M_LABEL %d\n#define M_CLASSES %lld\n", -1, (long long)0);
	for (int k = 0; k < r->n_in; k++)
		if (r->ins[k] == r->label)
			buf_printf(&b,
				   "#undef M_LABEL\n#undef M_CLASSES\n#define M_LABEL %d\n"
				   "#define M_CLASSES %lld\n",
				   k, (long long)(r->classes < INT32_MAX ? r->classes : 0));
	int po = r->pred_out;
	buf_printf(&b, "#define M_PRED_OUT %d\n#define M_PRED_SIZE %lld\n", po,
		   po >= 0 ? (long long)shape_numel(g->node[g->out[po]].shape) : 0LL);
	buf_printf(&b, "static const long m_in_size[M_N_IN] = {");
	for (int k = 0; k < r->n_in; k++)
		buf_printf(&b, "%lld, ", (long long)shape_numel(g->node[r->ins[k]].shape));
	buf_printf(&b, "};\nstatic const int m_in_int[M_N_IN] = {");
	for (int k = 0; k < r->n_in; k++)
		buf_printf(&b, "%d, ", g->node[r->ins[k]].type == T_INT);
	buf_printf(&b, "};\nstatic const char *const m_track[M_N_TRACK + 1] = {");
	for (int k = 0; k < r->n_track; k++)
		buf_printf(&b, "\"%s\", ", node_label(g, g->track[k]));
	buf_printf(&b, "0};\n");
	for (int k = 0; k < g->n_out; k++)
		buf_printf(&b, "static real m_out%d[%s_BATCH * %lld];\n", k, P,
			   (long long)shape_numel(g->node[g->out[k]].shape));
	buf_printf(&b, "static real *const m_out[%d] = {", g->n_out + 1);
	for (int k = 0; k < g->n_out; k++)
		buf_printf(&b, "m_out%d, ", k);
	buf_printf(&b, "0};\nstatic m_params m_grad_buf;\n\n");
	/* the entry points' arguments */
	Buf all = {0}, inf = {0};
	buf_printf(&all, "%s", "");
	buf_printf(&inf, "%s", "");
	for (int k = 0; k < r->n_in; k++) {
		const Node *n = &g->node[r->ins[k]];
		const char *arg =
			str_fmt("(const %s *)in[%d], ", n->type == T_INT ? "int32_t" : "real", k);
		buf_printf(&all, "%s", arg);
		int id = find_name(infer, n->name);
		bool used = id >= 0 && infer->node[id].n_use > 0;
		for (int o = 0; id >= 0 && o < infer->n_out; o++)
			used = used || infer->out[o] == id;
		if (used)
			buf_printf(&inf, "%s", arg);
	}
	buf_printf(&b,
		   "static void m_init(m_params *p, m_state *s, uint32_t seed)\n{\n"
		   "\t%s_init(p, s, seed);\n}\n",
		   P);
	buf_printf(&b,
		   "static int m_step(m_params *p, m_state *s, void *const *in, m_stats *st)\n"
		   "{\n\treturn %s_train_step(p, s, %sst, NULL);\n}\n",
		   P, all.s);
	buf_printf(&b,
		   "static int m_eval(const m_params *p, void *const *in, m_stats *st)\n"
		   "{\n\treturn %s_grad(p, %s&m_grad_buf, st, NULL);\n}\n",
		   P, all.s);
	buf_printf(&b, "static int m_infer(const m_params *p, void *const *in)\n{\n");
	if (g->n_out) {
		buf_printf(&b, "\treturn %s_infer(p, %s", P, inf.s);
		for (int k = 0; k < g->n_out; k++)
			buf_printf(&b, "m_out%d, ", k);
		buf_printf(&b, "NULL);\n}\n");
	} else {
		buf_printf(&b, "\t(void)p;\n\t(void)in;\n\treturn 0;\n}\n");
	}
	buf_printf(&b,
		   "static real *m_param(m_params *p, int i)\n{\n"
		   "\treturn %s_param_values(p, i);\n}\n",
		   P);
	buf_printf(&b,
		   "static const char *m_table_name(int i)\n{\n"
		   "\treturn %s_param_table[i].name;\n}\n",
		   P);
	buf_printf(&b,
		   "static long m_param_count(int i)\n{\n"
		   "\treturn (long)%s_param_table[i].count;\n}\n",
		   P);
	buf_printf(&b,
		   "static size_t m_save(const m_params *p, const m_state *s, void *buf, "
		   "size_t cap)\n{\n\treturn %s_save(p, s, buf, cap);\n}\n",
		   P);
	put_file("glue.h", b.s, b.len);
}

/* ---- the build cache: a built driver is kept by the hash of everything
 * that went into it, so training the same build again skips $CC.  The
 * directory: $GRADC_CACHE ("off": none), else $XDG_CACHE_HOME/gradc, else
 * ~/.cache/gradc.  Entries are written atomically (a temporary, renamed).  */

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
	return h;
}

/* The cached driver for the sources in the temporary directory and the
 * compile command 'cmd', as a path (it may not exist yet), or NULL.  */
static const char *cache_path(const Run *r, const char *cmd)
{
	const char *dir = getenv("GRADC_CACHE"), *base = getenv("XDG_CACHE_HOME");
	if (dir && !strcmp(dir, "off"))
		return NULL;
	if (!dir || !*dir)
		dir = base && *base    ? str_fmt("%s/gradc", base)
		      : getenv("HOME") ? str_fmt("%s/.cache/gradc", getenv("HOME"))
				       : NULL;
	if (!dir || make_dirs(dir) != 0)
		return NULL;
	const char *files[] = {"trainer.c",
			       "glue.h",
			       "gradc_rt.h",
			       "gradc_rt.c",
			       str_fmt("%s.h", r->prefix),
			       str_fmt("%s.c", r->prefix)};
	uint64_t h = fnv(0xcbf29ce484222325u, cmd, strlen(cmd));
	for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
		size_t n;
		char *s = read_file(tmp_path(files[k]), &n);
		if (!s)
			return NULL;
		h = fnv(fnv(h, files[k], strlen(files[k]) + 1), s, n);
	}
	return str_fmt("%s/trainer-%016llx", dir, (unsigned long long)h);
}

/* Keep the driver just built at 'path' (a failure only loses the cache). */
static void cache_put(const char *path)
{
	size_t n;
	char *exe = read_file(tmp_path("trainer"), &n);
	const char *tmp = str_fmt("%s.tmp%ld", path, (long)getpid());
	FILE *f = exe ? fopen(tmp, "wb") : NULL;
	bool ok = f && fwrite(exe, 1, n, f) == n;
	ok = f && fclose(f) == 0 && ok;
	if (ok && chmod(tmp, 0755) == 0 && rename(tmp, path) == 0)
		return;
	remove(tmp);
}

/* Steps 2 and 3: emit, build and run on 'in'; OUT.bin's bytes in *n.  */
static char *build_and_run(Run *r, const Bytes *in, size_t *n)
{
	Options opt = r->a->opt;
	opt.dump = NULL;
	opt.infer_only = false;
	/* the statistics in the graph, as compile --params puts them: the
	 * model trained is the model shipped (and its blob loads there) */
	opt.params = r->stats ? "(the statistics)" : NULL;
	const Graph *fwd = standardize_graph(r->fwd, r->stats);
	Graph *modes[3];
	modes[0] = build_mode(fwd, MODE_INFER, &opt);
	modes[1] = build_mode(fwd, MODE_TRAIN, &opt);
	modes[2] = build_mode(fwd, MODE_GRAD, &opt);
	Buf h = {0}, c = {0};
	emit(&h, &c, modes, 3, &opt);
	put_file(str_fmt("%s.h", r->prefix), h.s, h.len);
	put_file(str_fmt("%s.c", r->prefix), c.s, c.len);
	put_runtime();
	put_file("trainer.c", trainer_src[0].text, strlen(trainer_src[0].text));
	write_glue(r, modes[0]);
	put_file("in.bin", in->p, in->n);
	const char *cc = getenv("CC");
	if (!cc || !*cc)
		cc = "cc";
	const char *flags = "-std=c99 -O2";
	const char *cached = cache_path(r, str_fmt("%s %s", cc, flags));
	const char *exe = tmp_path("trainer");
	if (cached && access(cached, X_OK) == 0) {
		exe = cached;
	} else {
		const char *cmd = str_fmt(
			"%s %s -I%s -o %s %s %s %s -lm >%s 2>&1", cc, flags, sh_quote(tmp_path("")),
			sh_quote(exe), sh_quote(tmp_path("trainer.c")),
			sh_quote(tmp_path(str_fmt("%s.c", r->prefix))),
			sh_quote(tmp_path("gradc_rt.c")), sh_quote(tmp_path("cc.log")));
		int st = system(cmd);
		if (st != 0)
			error_plain(
				"%s: the generated code did not build with '%s' (status %d):\n%s",
				r->a->model, cc, WIFEXITED(st) ? WEXITSTATUS(st) : st,
				log_tail("cc.log", 4000));
		if (cached)
			cache_put(cached);
	}
	fflush(stdout);
	const char *cmd = str_fmt("%s %s %s 2>%s", sh_quote(exe), sh_quote(tmp_path("in.bin")),
				  sh_quote(tmp_path("out.bin")), sh_quote(tmp_path("run.log")));
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		error_plain("%s: the training program failed (%s)\n%s", r->a->model,
			    st == -1          ? strerror(errno)
			    : WIFSIGNALED(st) ? str_fmt("killed by signal %d", WTERMSIG(st))
					      : str_fmt("exit status %d", WEXITSTATUS(st)),
			    log_tail("run.log", 4000));
	char *out = read_file(tmp_path("out.bin"), n);
	if (!out || *n < 3 * sizeof(double))
		error_plain("%s: the training program wrote no results", r->a->model);
	return out;
}

/* IN.bin: the settings (harness/trainer.c's Cfg), the sets, the initial
 * parameters.  */
static Bytes make_in(const Run *r, bool eval)
{
	const Targs *a = r->a;
	Bytes b = {0};
	double cfg[] = {eval,
			(double)r->train->n,
			r->val ? (double)r->val->n : 0,
			a->epochs,
			a->seed,
			a->lr,
			!a->no_shuffle,
			a->pad,
			a->keep_best,
			isatty(1) != 0,
			r->init != NULL,
			a->pred != NULL,
			a->sched,
			a->step_size,
			a->gamma,
			a->min_lr,
			a->warmup};
	for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++)
		put1(&b, cfg[k]);
	for (int set = 0; set < 2; set++) {
		const Data *d = set ? r->val : r->train;
		for (int k = 0; d && k < r->n_in; k++) {
			const Node *n = &r->fwd->node[r->ins[k]];
			put_values(&b, r, d->v[r->ins[k]], d->n * shape_numel(n->shape),
				   n->type == T_INT);
		}
	}
	for (int k = 0; r->init && k < r->n_pa; k++) {
		const double *v = r->init[r->pas[k]];
		put1(&b, v != NULL);
		if (v)
			put_values(&b, r, v, shape_numel(r->fwd->node[r->pas[k]].shape), false);
	}
	return b;
}

/* Run steps 2-3 with the temporary directory removed on every exit. */
static char *run_driver(Run *r, bool eval, size_t *n)
{
	Bytes in = make_in(r, eval);
	jmp_buf jb, *prev = err_jmp;
	err_jmp = &jb;
	if (setjmp(jb)) {
		err_jmp = prev;
		cleanup();
		longjmp(*prev, 1);
	}
	make_tmpdir();
	char *out = build_and_run(r, &in, n);
	cleanup();
	err_jmp = prev;
	const double *v = (const double *)out;
	if (v[0] != 0) {
		const char *what = v[0] == 1   ? "a label is outside its range"
				   : v[0] == 2 ? "the objective is not finite (a smaller --lr?)"
					       : "an error";
		error_plain(
			"%s: %s (status %d %s)", r->a->model, what, (int)v[0],
			v[1] < 0 ? "in an evaluation pass"
				 : str_fmt("at epoch %d, step %d", (int)v[1] + 1, (int)v[2] + 1));
	}
	return out;
}

/* ---- results */

typedef struct Reader {
	const char *p;
	size_t at, n;
	const char *model;
} Reader;

static double get1(Reader *rd)
{
	double v;
	if (rd->at + sizeof v > rd->n)
		error_plain("%s: the training program wrote too few results", rd->model);
	memcpy(&v, rd->p + rd->at, sizeof v);
	rd->at += sizeof v;
	return v;
}

static const char *getn(Reader *rd, size_t n)
{
	if (rd->at + n > rd->n)
		error_plain("%s: the training program wrote too few results", rd->model);
	rd->at += n;
	return rd->p + rd->at - n;
}

/* The parameters file: every parameter in declaration order, then the
 * statistics.  */
static const char *write_params(const Run *r, Reader *rd, const char *path)
{
	const Graph *g = r->fwd;
	gradc_st_tensor *t = alloc(sizeof *t * (size_t)(r->n_pa + 2 * g->n_node + 1));
	size_t es = g->f64 ? sizeof(double) : sizeof(float);
	for (int k = 0; k < r->n_pa; k++) {
		const Node *n = &g->node[r->pas[k]];
		t[k] = (gradc_st_tensor){.name = n->name,
					 .dtype = g->f64 ? GRADC_ST_F64 : GRADC_ST_F32,
					 .rank = n->shape.rank};
		for (int d = 0; d < n->shape.rank; d++)
			t[k].shape[d] = n->shape.dim[d];
		t[k].nbytes = es * (size_t)shape_numel(n->shape);
		t[k].data = alloc(t[k].nbytes + 1);
		memcpy(t[k].data, getn(rd, t[k].nbytes), t[k].nbytes);
	}
	int n = r->n_pa + stats_tensors(r->stats, g, t + r->n_pa);
	return gradc_st_write(path, t, n);
}

/* The objective (and accuracy) per epoch as an SVG line chart. */
static void plot(Buf *b, const Run *r, const double *rec, int w, int epochs)
{
	const int W = 640, H = 360, L = 60, R = 20, T = 40, B = 40;
	double maxj = 0;
	for (int e = 0; e < epochs; e++)
		for (int h = 0; h < 2; h++) {
			double j = rec[e * w + 1 + h * (r->n_track + 2)];
			maxj = j > maxj ? j : maxj; /* NaN never wins */
		}
	maxj = maxj > 0 ? maxj : 1;
	buf_printf(b,
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		   "font-family=\"sans-serif\" font-size=\"12\">\n"
		   "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		   W, H);
	buf_printf(b,
		   "<text x=\"%d\" y=\"16\">%s: objective (red; 0 .. %.3g)%s per epoch; "
		   "dashed: validation</text>\n",
		   L, r->fwd->model, maxj, r->pred_out >= 0 ? ", accuracy (blue; 0 .. 1)" : "");
	buf_printf(b,
		   "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
		   "stroke=\"#888\"/>\n",
		   L, T, W - L - R, H - T - B);
	for (int h = 0; h < 2; h++)
		for (int acc = 0; acc < 2; acc++) {
			int col = 1 + h * (r->n_track + 2) + (acc ? r->n_track + 1 : 0);
			if ((acc && r->pred_out < 0) || (h && !r->val))
				continue;
			buf_printf(b,
				   "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
				   "points=\"",
				   acc ? "#2471a3" : "#c0392b",
				   h ? " stroke-dasharray=\"6,4\"" : "");
			for (int e = 0; e < epochs; e++) {
				double v = rec[e * w + col] / (acc ? 1 : maxj);
				buf_printf(b, "%.1f,%.1f ",
					   L
						   + (W - L - R)
							     * (epochs > 1
									? (double)e / (epochs - 1)
									: 0.5),
					   T + (H - T - B) * (1 - fmin(fmax(v, 0), 1)));
			}
			buf_printf(b, "\"/>\n");
		}
	buf_printf(b, "<text x=\"%d\" y=\"%d\">1</text>\n<text x=\"%d\" y=\"%d\">0</text>\n",
		   L - 20, T + 4, L - 20, H - B);
	buf_printf(b, "<text x=\"%d\" y=\"%d\">epoch 1 .. %d</text>\n</svg>\n", W / 2 - 30, H - 12,
		   epochs);
}

/* The log: one CSV row per epoch (no times: the same bytes every run). */
static void log_csv(Buf *b, const Run *r, const double *rec, int w, int epochs)
{
	buf_printf(b, "epoch,lr");
	for (int h = 0; h < 2; h++) {
		if (h && !r->val)
			break;
		const char *pre = h ? "val_" : "";
		buf_printf(b, ",%sobjective", pre);
		for (int k = 0; k < r->n_track; k++)
			buf_printf(b, ",%s%s", pre, node_label(r->fwd, r->fwd->track[k]));
		if (r->pred_out >= 0)
			buf_printf(b, ",%saccuracy", pre);
	}
	buf_printf(b, "\n");
	for (int e = 0; e < epochs; e++) {
		const double *v = rec + e * w;
		buf_printf(b, "%d,%.9g", e + 1, v[0]);
		for (int h = 0; h < 2 && (!h || r->val); h++) {
			for (int k = 0; k <= r->n_track; k++)
				buf_printf(b, ",%.9g", v[1 + h * (r->n_track + 2) + k]);
			if (r->pred_out >= 0)
				buf_printf(b, ",%.9g",
					   v[1 + h * (r->n_track + 2) + r->n_track + 1]);
		}
		buf_printf(b, "\n");
	}
}

/* Write 'path' atomically; on failure remove the files written before
 * (done[0..*n_done)) and report.  */
static void write_or_undo(const char *path, const char *msg, const char **done, int *n_done)
{
	if (!msg) {
		done[(*n_done)++] = path;
		return;
	}
	for (int k = 0; k < *n_done; k++)
		remove(done[k]);
	error_plain("%s", strstr(msg, path) ? msg : str_fmt("cannot write '%s': %s", path, msg));
}

static int cmd_train(Run *r)
{
	const Targs *a = r->a;
	const Graph *g = r->fwd;
	printf("train %s on %s: %lld samples", a->model, a->data, (long long)r->train->n);
	if (r->val)
		printf(", %lld for validation%s", (long long)r->val->n,
		       a->val_split ? " (split off with the seed)" : "");
	printf("; batch %d, %d epochs, seed %u%s%s\n", g->batch, a->epochs, (unsigned)a->seed,
	       r->stats ? ", inputs standardized" : "", a->pad ? ", last batch padded" : "");
	size_t n;
	char *out = run_driver(r, false, &n);
	Reader rd = {out, 3 * sizeof(double), n, a->model};
	int w = 2 + 2 * (r->n_track + 2);
	double *rec = alloc(sizeof(double) * (size_t)(w * a->epochs));
	for (int k = 0; k < w * a->epochs; k++)
		rec[k] = get1(&rd);
	int kept = (int)get1(&rd);
	const char *path = a->out ? a->out : str_fmt("%s.safetensors", r->prefix);
	const char *done[4];
	int n_done = 0;
	write_or_undo(path, write_params(r, &rd, path), done, &n_done);
	size_t blob_n = (size_t)get1(&rd);
	const char *blob = getn(&rd, blob_n);
	if (a->blob)
		write_or_undo(a->blob,
			      write_file_atomic(a->blob, blob, blob_n) ? strerror(errno) : NULL,
			      done, &n_done);
	Buf b = {0};
	if (a->log) {
		log_csv(&b, r, rec, w, a->epochs);
		write_or_undo(a->log,
			      write_file_atomic(a->log, b.s, b.len) ? strerror(errno) : NULL, done,
			      &n_done);
	}
	if (a->plot) {
		b = (Buf){0};
		plot(&b, r, rec, w, a->epochs);
		write_or_undo(a->plot,
			      write_file_atomic(a->plot, b.s, b.len) ? strerror(errno) : NULL, done,
			      &n_done);
	}
	if (a->keep_best)
		printf("kept epoch %d (lowest validation objective, %.4f)\n", kept + 1,
		       rec[kept * w + 1 + r->n_track + 2]);
	printf("wrote %s", path);
	for (int k = 1; k < n_done; k++)
		printf(", %s", done[k]);
	printf("\n");
	return 0;
}

static int cmd_eval(Run *r)
{
	const Targs *a = r->a;
	size_t n;
	char *out = run_driver(r, true, &n);
	Reader rd = {out, 3 * sizeof(double), n, a->model};
	printf("eval %s on %s: %lld samples, parameters %s%s\n", a->model, a->data,
	       (long long)r->train->n, a->params, r->stats ? " (inputs standardized)" : "");
	printf("objective: %.6g\n", get1(&rd));
	for (int k = 0; k < r->n_track; k++)
		printf("%s: %.6g\n", node_label(r->fwd, r->fwd->track[k]), get1(&rd));
	double acc = get1(&rd);
	if (r->pred_out < 0)
		return 0;
	printf("accuracy: %.4f\n", acc);
	int64_t c = r->classes;
	int64_t *m = alloc(sizeof(int64_t) * (size_t)(c * c));
	for (int64_t k = 0; k < c * c; k++)
		m[k] = (int64_t)get1(&rd);
	if (c <= 32) {
		printf("confusion matrix (rows: true class, columns: predicted):\n      ");
		for (int64_t j = 0; j < c; j++)
			printf(" %5lld", (long long)j);
		for (int64_t i = 0; i < c; i++) {
			printf("\n%5lld ", (long long)i);
			for (int64_t j = 0; j < c; j++)
				printf(" %5lld", (long long)m[i * c + j]);
		}
		printf("\n");
	}
	if (a->pred) {
		Buf b = {0};
		buf_printf(&b, "pred\n");
		for (int64_t i = 0; i < r->train->n; i++)
			buf_printf(&b, "%d\n", (int)get1(&rd));
		if (write_file_atomic(a->pred, b.s, b.len) != 0)
			error_plain("cannot write '%s': %s", a->pred, strerror(errno));
		printf("wrote %s\n", a->pred);
	}
	return 0;
}

int train_main(int argc, char **argv)
{
	Targs a = parse_targs(argc, argv);
	jmp_buf jb;
	err_jmp = &jb;
	if (setjmp(jb)) {
		fputs(err_msg, stderr);
		free_all();
		return 1;
	}
	Source *src = alloc(sizeof *src);
	src->path = a.model;
	src->text = read_file(a.model, &src->len);
	if (!src->text)
		error_plain("cannot read '%s': %s", a.model, strerror(errno));
	Run r = {.a = &a, .fwd = front_end(src, &a.opt)};
	r.prefix = r.fwd->model;
	prepare(&r);
	if (a.pred && r.pred_out < 0)
		error_plain("--pred: '%s' is no classifier (no int label with an output of its "
			    "classes)",
			    a.model);
	int rc = !strcmp(a.cmd, "train") ? cmd_train(&r) : cmd_eval(&r);
	free_all();
	return rc;
}
