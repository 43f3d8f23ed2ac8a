/* test_run.c: `gradc run` against the reference evaluator.
 *
 * For every model in models/ (and the convolutional ones of tests/models/)
 * and both dtypes: random inputs (labels in
 * range, I32 and I64) and parameters are written to an IN file, cmd_run
 * builds and runs the generated code (with $CC) at a batch other than the
 * model's, and every tensor of OUT (outputs, objective, each gradient, the
 * parameters after 3 steps) is compared with eval.c in double precision:
 * ||got - want|| / max(||want||, 1e-12) at most 1e-5 (f32) or 1e-10 (f64).
 * Then: missing parameters come from --seed (deterministically); the
 * parameter loader (--params); and the status paths (a label out of range,
 * a non-finite objective) and IN errors leave no OUT file.
 *
 * Run from the repository root (the models are read from models/).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "gradc_safetensors.h"
#include "testutil.h"

static const char *const models[] = {"mlp",  "iris", "cancer", "ops", "wide", "deep",
				     "../tests/models/conv_pad", "../tests/models/conv_dw",
				     "../tests/models/conv_frozen", "../tests/models/conv_wide"};
enum { N_MODELS = 10, BATCH = 3, STEPS = 3 };

static uint64_t rng;
static double urand(void) /* xorshift64, [0, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

/* The forward graph of models/NAME.nn at 'batch' (0: the model's). */
static Graph *load(const char *name, int batch, bool f64)
{
	const char *path = str_fmt("models/%s.nn", name);
	Source *src = alloc(sizeof *src);
	src->path = path;
	src->text = read_file(path, &src->len);
	ck_assert_msg(src->text, "cannot read %s", path);
	Options o = {.batch = batch, .f64 = f64};
	const char *msg;
	Graph *volatile g = NULL;
	err_src = src;
	CATCH_ERROR(msg, g = parse(src, &o); lower(g));
	ck_assert_msg(!msg, "%s", msg);
	return g;
}

static const char *tmp_name(const char *what)
{
	const char *dir = getenv("TMPDIR");
	return str_fmt("%s/gradc-test-run-%ld-%s.safetensors", dir && *dir ? dir : "/tmp",
		       (long)getpid(), what);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* A tensor of node 'n' (leading batch 'b' if > 0) with 'count' values
 * from v, stored as 'dt'.  */
static gradc_st_tensor tensor(const char *name, gradc_st_dtype dt, const Node *n, int64_t b,
			      const double *v)
{
	gradc_st_tensor t = {.name = name, .dtype = dt};
	if (b > 0)
		t.shape[t.rank++] = b;
	for (int r = 0; r < n->shape.rank; r++)
		t.shape[t.rank++] = n->shape.dim[r];
	size_t count = (size_t)shape_numel(n->shape) * (size_t)(b > 0 ? b : 1);
	t.nbytes = count * gradc_st_dtype_size(dt);
	t.data = alloc(t.nbytes);
	for (size_t i = 0; i < count; i++)
		switch (dt) {
		case GRADC_ST_F32:
			((float *)t.data)[i] = (float)v[i];
			break;
		case GRADC_ST_F64:
			((double *)t.data)[i] = v[i];
			break;
		case GRADC_ST_I32:
			((int32_t *)t.data)[i] = (int32_t)v[i];
			break;
		case GRADC_ST_I64:
			((int64_t *)t.data)[i] = (int64_t)v[i];
			break;
		}
	return t;
}

/* Values of every input and parameter of 'fwd', by node id.  Floats are
 * rounded to float for an f32 run, so the reference sees what the
 * generated code sees.  */
static double **random_values(const Graph *fwd, bool f64)
{
	double **v = alloc(sizeof(double *) * (size_t)fwd->n_node);
	for (int i = 0; i < fwd->n_node; i++) {
		const Node *n = &fwd->node[i];
		if (n->op != OP_INPUT && n->op != OP_PARAM)
			continue;
		int64_t count = n->op == OP_INPUT ? node_numel(fwd, n) : shape_numel(n->shape);
		int64_t classes = dt_is_int(n->dtype) ? label_classes(fwd, i) : 0;
		v[i] = alloc(sizeof(double) * (size_t)count);
		for (int64_t k = 0; k < count; k++) {
			double x = dt_is_int(n->dtype)    ? floor(urand() * (double)classes)
				   : n->op == OP_PARAM ? urand() - 0.5
						       : 2 * urand() - 1;
			v[i][k] = f64 ? x : (double)(float)x;
		}
	}
	return v;
}

/* Write IN: every input, and the parameters if 'params'. */
static void write_in(const char *path, const Graph *fwd, double **v, bool f64, bool params)
{
	gradc_st_tensor *t = alloc(sizeof *t * (size_t)fwd->n_node);
	int n_t = 0, n_int = 0;
	for (int i = 0; i < fwd->n_node; i++) {
		const Node *n = &fwd->node[i];
		gradc_st_dtype ft = f64 ? GRADC_ST_F64 : GRADC_ST_F32;
		if (n->op == OP_INPUT)
			t[n_t++] = tensor(
				n->name,
				dt_is_int(n->dtype) ? (n_int++ % 2 ? GRADC_ST_I32 : GRADC_ST_I64) : ft,
				n, fwd->batch, v[i]);
		else if (n->op == OP_PARAM && params)
			t[n_t++] = tensor(n->name, ft, n, 0, v[i]);
	}
	const char *msg = gradc_st_write(path, t, n_t);
	ck_assert_msg(!msg, "%s", msg);
}

/* ||got - want|| / max(||want||, 1e-12) for tensor 't' of OUT. */
static double rel_err(const gradc_st_tensor *t, const double *want, size_t count)
{
	size_t es = gradc_st_dtype_size(t->dtype);
	ck_assert_uint_eq(t->nbytes, count * es);
	double se = 0, sw = 0;
	for (size_t i = 0; i < count; i++) {
		double got = t->dtype == GRADC_ST_F64 ? ((const double *)t->data)[i]
						      : (double)((const float *)t->data)[i];
		se += (got - want[i]) * (got - want[i]);
		sw += want[i] * want[i];
	}
	double e = sqrt(se) / fmax(sqrt(sw), 1e-12);
	return e == e ? e : INFINITY;
}

static const gradc_st_tensor *find(const gradc_st_file *f, const char *name)
{
	const gradc_st_tensor *t = gradc_st_find(f, name);
	ck_assert_msg(t, "OUT lacks '%s'", name);
	return t;
}

/* Run 'fwd' with cmd_run; NULL, or the error message. */
static const char *run(const Graph *fwd, const char *in, const char *out, bool f64, int steps,
		       uint32_t seed, int batch_flag)
{
	Options o = {.f64 = f64, .batch = batch_flag};
	const char *msg;
	volatile int rc = -1;
	CATCH_ERROR(msg, rc = cmd_run(fwd->src->path, fwd, &o, in, out, steps, seed));
	if (!msg)
		ck_assert_int_eq(rc, 0);
	return msg;
}

/* Every model and dtype: OUT against the evaluator. */
START_TEST(test_against_eval)
{
	const char *name = models[_i / 2];
	bool f64 = _i % 2;
	rng = 88172645463325252ull + (uint64_t)_i;
	Graph *fwd = load(name, BATCH, f64);
	double **v = random_values(fwd, f64);
	const char *in = tmp_name("in"), *out = tmp_name("out");
	write_in(in, fwd, v, f64, true);
	remove(out);
	const char *msg = run(fwd, in, out, f64, STEPS, 7, 0);
	remove(in);
	ck_assert_msg(!msg, "%s: %s", name, msg);
	gradc_st_file f = {0};
	msg = gradc_st_read(out, &f);
	remove(out);
	ck_assert_msg(!msg, "%s", msg);
	double tol = f64 ? 1e-10 : 1e-5;
	gradc_st_dtype dt = f64 ? GRADC_ST_F64 : GRADC_ST_F32;
	for (int i = 0; i < f.n; i++)
		ck_assert_int_eq(f.t[i].dtype, dt);

	Eval *ei = evaluator(fwd, MODE_INFER, v);
	ck_assert_int_eq(eval_run(ei), 0);
	for (int k = 0; k < ei->g->n_out; k++) {
		const Node *n = &ei->g->node[ei->g->out[k]];
		const gradc_st_tensor *t = find(&f, n->name);
		ck_assert_int_eq(t->rank, n->shape.rank + 1);
		ck_assert_int_eq(t->shape[0], BATCH);
		double e = rel_err(t, ei->val[ei->g->out[k]], (size_t)node_numel(ei->g, n));
		ck_assert_msg(e <= tol, "%s: output %s: error %g", name, n->name, e);
	}
	Eval *eg = evaluator(fwd, MODE_GRAD, v);
	ck_assert_int_eq(eval_run(eg), 0);
	const gradc_st_tensor *t = find(&f, "objective");
	ck_assert_int_eq(t->rank, 0);
	double e = rel_err(t, eg->val[eg->g->loss], 1);
	ck_assert_msg(e <= tol, "%s: objective: error %g", name, e);
	int n_grads = 0, n_params = 0;
	for (int i = 0; i < eg->g->n_node; i++) {
		const Node *n = &eg->g->node[i];
		if (n->op != OP_PARAM || n->frozen)
			continue;
		size_t count = (size_t)shape_numel(n->shape);
		int gi = param_grad(eg->g, i);
		const double *want = gi >= 0 ? eg->val[gi] : alloc(sizeof(double) * count);
		e = rel_err(find(&f, str_fmt("grad.%s", n->name)), want, count);
		ck_assert_msg(e <= tol, "%s: grad.%s: error %g", name, n->name, e);
		n_grads++;
	}
	Eval *et = evaluator(fwd, MODE_TRAIN, v);
	for (int s = 0; s < STEPS; s++)
		ck_assert_int_eq(eval_run(et), 0);
	for (int i = 0; i < et->g->n_node; i++) {
		const Node *n = &et->g->node[i];
		if (n->op != OP_PARAM)
			continue;
		t = find(&f, n->name);
		ck_assert_int_eq(t->rank, n->shape.rank);
		e = rel_err(t, et->val[i], (size_t)shape_numel(n->shape));
		ck_assert_msg(e <= tol, "%s: %s after %d steps: error %g", name, n->name, STEPS, e);
		n_params++;
	}
	ck_assert_int_eq(f.n, ei->g->n_out + 1 + n_grads + n_params);
	gradc_st_free(&f);
}
END_TEST

/* Parameters missing from IN come from NAME_init(--seed): the same seed
 * gives the same values, another seed others; OUT's objective and
 * gradients are those at the initialized values.  --batch equal to the
 * tensors' batch is accepted.  */
START_TEST(test_seed)
{
	rng = 1234;
	Graph *fwd = load("mlp", BATCH, true);
	double **v = random_values(fwd, true);
	const char *in = tmp_name("in"), *out[3] = {tmp_name("o0"), tmp_name("o1"), tmp_name("o2")};
	write_in(in, fwd, v, true, false);
	uint32_t seeds[3] = {5, 5, 6};
	gradc_st_file f[3];
	for (int k = 0; k < 3; k++) {
		const char *msg = run(fwd, in, out[k], true, 0, seeds[k], k == 1 ? BATCH : 0);
		ck_assert_msg(!msg, "%s", msg);
		msg = gradc_st_read(out[k], &f[k]);
		remove(out[k]);
		ck_assert_msg(!msg, "%s", msg);
	}
	remove(in);
	const gradc_st_tensor *a = find(&f[0], "W1"), *b = find(&f[1], "W1"),
			      *c = find(&f[2], "W1");
	ck_assert(!memcmp(a->data, b->data, a->nbytes));
	ck_assert(memcmp(a->data, c->data, a->nbytes));
	/* the evaluator at the initialized parameters */
	for (int i = 0; i < fwd->n_node; i++) {
		const Node *n = &fwd->node[i];
		if (n->op == OP_PARAM)
			memcpy(v[i], find(&f[0], n->name)->data,
			       sizeof(double) * (size_t)shape_numel(n->shape));
	}
	Eval *eg = evaluator(fwd, MODE_GRAD, v);
	ck_assert_int_eq(eval_run(eg), 0);
	double e = rel_err(find(&f[0], "objective"), eg->val[eg->g->loss], 1);
	ck_assert_msg(e <= 1e-10, "objective: error %g", e);
	int w1 = find_name(eg->g, "W1");
	e = rel_err(find(&f[0], "grad.W1"), eg->val[param_grad(eg->g, w1)], 32 * 64);
	ck_assert_msg(e <= 1e-10, "grad.W1: error %g", e);
	for (int k = 0; k < 3; k++)
		gradc_st_free(&f[k]);
}
END_TEST

/* load_params: every parameter by name; errors name the file and tensor. */
START_TEST(test_load_params)
{
	rng = 99;
	Graph *fwd = load("mlp", 0, false);
	double **v = random_values(fwd, true);
	const char *in = tmp_name("p");
	write_in(in, fwd, v, true, true);
	Graph *modes[1] = {autodiff(fwd, MODE_GRAD)};
	const char *msg;
	CATCH_ERROR(msg, load_params(in, modes, 1));
	ck_assert_msg(!msg, "%s", msg);
	int w2 = find_name(modes[0], "W2"), w2f = find_name(fwd, "W2");
	ck_assert(modes[0]->node[w2].value);
	ck_assert(!memcmp(modes[0]->node[w2].value, v[w2f], sizeof(double) * 320));
	/* a wrong shape, a missing parameter, a wrong dtype */
	Node *p = &fwd->node[w2f];
	gradc_st_tensor t = tensor("W2", GRADC_ST_F32, &fwd->node[find_name(fwd, "W1")], 0,
				   v[find_name(fwd, "W1")]);
	gradc_st_tensor t1 = tensor("W1", GRADC_ST_I32, p, 0, v[w2f]);
	struct {
		gradc_st_tensor t[2];
		int n;
		const char *want;
	} cases[] = {
		{{t, tensor("W1", GRADC_ST_F64, &fwd->node[find_name(fwd, "W1")], 0,
			    v[find_name(fwd, "W1")])},
		 2,
		 "parameter 'W2' has shape [32, 64]; expected [10, 32]"},
		{{tensor("W2", GRADC_ST_F32, p, 0, v[w2f])}, 1, "missing parameter 'W1'"},
		{{t1}, 1, "dtype I32"},
	};
	for (volatile size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		ck_assert(!gradc_st_write(in, cases[k].t, cases[k].n));
		CATCH_ERROR(msg, load_params(in, modes, 1));
		ck_assert_msg(msg && strstr(msg, cases[k].want) && strstr(msg, in), "case %zu: %s",
			      (size_t)k, msg ? msg : "(no error)");
	}
	remove(in);
	CATCH_ERROR(msg, load_params(in, modes, 1));
	ck_assert_msg(msg && strstr(msg, in), "%s", msg ? msg : "(no error)");
}
END_TEST

/* A status of the generated code, and IN errors: a message, no OUT. */
START_TEST(test_errors)
{
	rng = 5;
	const char *in = tmp_name("in"), *out = tmp_name("out");
	/* a non-finite objective: the target of cancer's mse is infinite */
	Graph *fwd = load("cancer", BATCH, false);
	double **v = random_values(fwd, false);
	v[find_name(fwd, "t")][1] = INFINITY;
	write_in(in, fwd, v, false, false);
	remove(out);
	const char *msg = run(fwd, in, out, false, 1, 0, 0);
	ck_assert_msg(msg && strstr(msg, "not finite") && strstr(msg, "status 2"), "%s",
		      msg ? msg : "(no error)");
	ck_assert(!exists(out));
	/* a label out of range, caught before anything is built */
	fwd = load("mlp", BATCH, false);
	v = random_values(fwd, false);
	v[find_name(fwd, "y")][2] = 10;
	write_in(in, fwd, v, false, true);
	msg = run(fwd, in, out, false, 1, 0, 0);
	ck_assert_msg(msg && strstr(msg, "label 'y'[2] = 10 is outside [0, 10)"), "%s",
		      msg ? msg : "(no error)");
	ck_assert(!exists(out));
	/* --batch other than the tensors' */
	v[find_name(fwd, "y")][2] = 9;
	write_in(in, fwd, v, false, true);
	msg = run(fwd, in, out, false, 1, 0, BATCH + 1);
	ck_assert_msg(msg && strstr(msg, "batch"), "%s", msg ? msg : "(no error)");
	ck_assert(!exists(out));
	remove(in);
	msg = run(fwd, in, out, false, 1, 0, 0);
	ck_assert_msg(msg && strstr(msg, in), "%s", msg ? msg : "(no error)");
	ck_assert(!exists(out));
}
END_TEST

static Suite *run_suite_make(void)
{
	Suite *s = suite_create("run");
	TCase *tc = tcase_create("against eval");
	add_arena_fixture(tc);
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_against_eval, 0, 2 * N_MODELS);
	suite_add_tcase(s, tc);
	tc = tcase_create("seed, params, errors");
	add_arena_fixture(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_seed);
	tcase_add_test(tc, test_load_params);
	tcase_add_test(tc, test_errors);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(run_suite_make)
