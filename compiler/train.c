/* train.c: `gradc train` and `gradc eval` (SPEC 4, "Host training"): the
 * generated training step, built with the host C compiler, on the user's
 * data, without the user writing any C.
 *
 *   1. read and check everything first: the model, the data (data.c), the
 *      validation data or split, --init / --params and their
 *      standardization statistics; a problem stops here, nothing written;
 *   2. build the model and its driver, run it (driver.c): it trains and
 *      prints one line per epoch on gradc's own stdout (a live bar when
 *      that is a terminal), or evaluates;
 *   3. read its results (OUT.bin);
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
#include "host.h"
#include "gradc_safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

static NORETURN void bad_usage(const char *fmt, const char *arg)
{
	usage_exit(usage, fmt, arg);
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

/* A whole number in [0, hi]. */
static double parse_whole(const char *s, const char *what, double hi)
{
	double v = parse_num(s, what, 0, hi);
	if (v != floor(v))
		bad_usage(str_fmt("bad %s '%%s'", what), s);
	return v;
}

/* A whole number in [lo, hi]. */
static int parse_count(const char *s, const char *what, int lo, int hi)
{
	double v = parse_whole(s, what, hi);
	if (v < lo)
		bad_usage(str_fmt("bad %s '%%s'", what), s);
	return (int)v;
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
			a.epochs = parse_count(VAL(), "epoch count", 1, 1000000);
		else if (IS("--batch"))
			a.opt.batch = parse_count(VAL(), "batch", 1, 1 << 30);
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
			a.step_size = parse_count(VAL(), "--step-size", 1, 1000000);
		else if (IS("--gamma"))
			a.gamma = parse_num(VAL(), "--gamma", 0, 1e300);
		else if (IS("--min-lr"))
			a.min_lr = parse_num(VAL(), "--min-lr", 0, 1e300);
		else if (IS("--warmup"))
			a.warmup = parse_count(VAL(), "--warmup", 0, 1000000);
		else if (IS("--seed"))
			a.seed = (uint32_t)parse_whole(VAL(), "seed", UINT32_MAX);
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
	if (a.val && a.val_split > 0)
		bad_usage("%s", "--val and --val-split exclude each other");
	if (a.keep_best && !a.val && !(a.val_split > 0))
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
	const char *msg = read_tensors(path, &f);
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
		error_plain("%s: no 'minimize' statement: nothing to %s%s", a->model,
			    !strcmp(a->cmd, "train") ? "train" : "evaluate",
			    is_onnx(a->model) ? " (gradc import --loss ... --train ... makes an "
						"ONNX model trainable)" : "");
	r->ins = declared_nodes(g, OP_INPUT, &r->n_in);
	r->label = -1;
	for (int k = 0; k < r->n_in; k++)
		if (dt_is_int(g->node[r->ins[k]].dtype))
			r->label = r->ins[k];
	r->classes = r->label >= 0 ? label_classes(g, r->label) : 0;
	r->pred_out = r->classes < INT32_MAX ? find_pred_out(r) : -1;
	r->n_track = g->n_track;
	r->pas = declared_nodes(g, OP_PARAM, &r->n_pa);
	r->train = load_data(a->data, g, a->label);
	if (a->val)
		r->val = load_data(a->val, g, a->label);
	else if (a->val_split > 0)
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
		       a->val_split > 0 ? " (split off with the seed)" : "");
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

static int train_cmd(void *arg);

int train_main(int argc, char **argv)
{
	Targs a = parse_targs(argc, argv);
	return run_command(train_cmd, &a);
}

/* train or eval with the arguments 'arg' (a Targs); run_command's body. */
static int train_cmd(void *arg)
{
	Targs a = *(Targs *)arg;
	Source *src = load_model(a.model);
	if (is_onnx(a.model) && !a.init && !a.params)
		a.init = a.model; /* the initializers (read_tensors) */
	Run r = {.a = &a, .fwd = front_end(src, &a.opt)};
	r.prefix = r.fwd->model;
	prepare(&r);
	if (a.pred && r.pred_out < 0)
		error_plain("--pred: '%s' is no classifier (no int label with an output of its "
			    "classes)",
			    a.model);
	return !strcmp(a.cmd, "train") ? cmd_train(&r) : cmd_eval(&r);
}
