/* test_diff.c: the differential test of issue 22.  Random valid models
 * (tests/randmodel.h: seeded, shapes and positivity by construction, names
 * chosen to collide with gradc's and the C library's) each go through
 *   - parse and lower: a model of the generator is valid, so any error is
 *     a failure;
 *   - `gradc run` in f64 against the reference evaluator (outputs under
 *     the names of the output statement, aliases included; objective,
 *     gradients, parameters after 2 steps), relative error 1e-9;
 *   - `gradc run` in f32, built with -Wall -Wextra -Wpedantic -Werror
 *     (the generated code and run's harness), against the f64 run;
 *   - `gradc run --no-fuse` in f32 against the fused f32 run;
 *   - `gradc check` (status 0: every gradient within SPEC's 1e-6).
 * GRADC_DIFF_MODELS sets the number of models (default 12: 4 builds
 * each, about a minute), GRADC_DIFF_SEED the first seed (default 1);
 * `make fuzz` runs many more (fuzz.mk, DIFF_MODELS).  A failure names the seed and prints the model.
 *
 * Run from the repository root.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gradc_safetensors.h"
#include "randmodel.h"
#include "testutil.h"

enum { STEPS = 2 };

static uint64_t rng;
static double urand(void) /* xorshift64, [0, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static const char *tmp_name(const char *what)
{
	const char *dir = getenv("TMPDIR");
	return str_fmt("%s/gradc-test-diff-%ld-%s.safetensors", dir && *dir ? dir : "/tmp",
		       (long)getpid(), what);
}

/* Values of every input and parameter, rounded to float (every run sees
 * the same numbers). */
static double **random_values(const Graph *fwd)
{
	double **v = alloc(sizeof(double *) * (size_t)fwd->n_node);
	for (int i = 0; i < fwd->n_node; i++) {
		const Node *n = &fwd->node[i];
		if (n->op != OP_INPUT && n->op != OP_PARAM)
			continue;
		int64_t count = n->op == OP_INPUT ? node_numel(fwd, n) : shape_numel(n->shape);
		int64_t classes = dt_is_int(n->dtype) ? label_classes(fwd, i) : 0;
		v[i] = alloc(sizeof(double) * (size_t)count);
		for (int64_t k = 0; k < count; k++)
			v[i][k] = dt_is_int(n->dtype) ? floor(urand() * (double)classes)
						   : (double)(float)(urand() - 0.5);
	}
	return v;
}

static void write_in(const char *path, const Graph *fwd, double **v)
{
	gradc_st_tensor *t = alloc(sizeof *t * (size_t)fwd->n_node);
	int n_t = 0;
	for (int i = 0; i < fwd->n_node; i++) {
		const Node *n = &fwd->node[i];
		if (n->op != OP_INPUT && n->op != OP_PARAM)
			continue;
		gradc_st_tensor *x = &t[n_t++];
		x->name = n->name;
		x->dtype = dt_is_int(n->dtype) ? GRADC_ST_I32 : GRADC_ST_F64;
		if (n->op == OP_INPUT)
			x->shape[x->rank++] = fwd->batch;
		for (int r = 0; r < n->shape.rank; r++)
			x->shape[x->rank++] = n->shape.dim[r];
		size_t count = (size_t)(n->op == OP_INPUT ? node_numel(fwd, n) : shape_numel(n->shape));
		x->nbytes = count * gradc_st_dtype_size(x->dtype);
		x->data = alloc(x->nbytes);
		for (size_t k = 0; k < count; k++)
			if (dt_is_int(n->dtype))
				((int32_t *)x->data)[k] = (int32_t)v[i][k];
			else
				((double *)x->data)[k] = v[i][k];
	}
	const char *msg = gradc_st_write(path, t, n_t);
	ck_assert_msg(!msg, "%s", msg);
}

static double value(const gradc_st_tensor *t, size_t i)
{
	return t->dtype == GRADC_ST_F64 ? ((const double *)t->data)[i]
					: (double)((const float *)t->data)[i];
}

/* ||got - want|| / max(||want||, floor); 'want' a tensor or values. */
static double err_of(const gradc_st_tensor *got, const gradc_st_tensor *wt, const double *wv,
		     size_t count, double floor_)
{
	ck_assert_uint_eq(got->nbytes / gradc_st_dtype_size(got->dtype), count);
	double se = 0, sw = 0;
	for (size_t i = 0; i < count; i++) {
		double w = wt ? value(wt, i) : wv[i], d = value(got, i) - w;
		se += d * d;
		sw += w * w;
	}
	double e = sqrt(se) / fmax(sqrt(sw), floor_);
	return e == e ? e : INFINITY;
}

static const gradc_st_tensor *find(const gradc_st_file *f, const char *name, const char *model)
{
	const gradc_st_tensor *t = gradc_st_find(f, name);
	ck_assert_msg(t, "OUT lacks '%s'\n%s", name, model);
	return t;
}

/* cmd_run of 'fwd' on IN into OUT with these options; the message or NULL. */
static const char *run(const Graph *fwd, const char *in, const char *out, bool f64, bool no_fuse)
{
	Options o = {.f64 = f64, .no_fuse = no_fuse};
	const char *msg;
	volatile int rc = -1;
	remove(out);
	CATCH_ERROR(msg, rc = cmd_run(fwd->src->path, fwd, &o, in, out, STEPS, 5));
	if (!msg && rc != 0)
		msg = "nonzero status";
	return msg;
}

static gradc_st_file read_out(const char *path)
{
	gradc_st_file f = {0};
	const char *msg = gradc_st_read(path, &f);
	ck_assert_msg(!msg, "%s", msg);
	remove(path);
	return f;
}

/* Every tensor of 'a' against the one of the same name in 'b'. */
static void compare_files(const gradc_st_file *a, const gradc_st_file *b, double tol,
			  const char *what, const char *model)
{
	ck_assert_int_eq(a->n, b->n);
	for (int i = 0; i < a->n; i++) {
		const gradc_st_tensor *t = &a->t[i], *u = find(b, t->name, model);
		ck_assert_int_eq(t->rank, u->rank);
		size_t count = t->nbytes / gradc_st_dtype_size(t->dtype);
		double e = err_of(t, u, NULL, count, 1e-3);
		ck_assert_msg(e <= tol, "%s: '%s': error %g\n%s", what, t->name, e, model);
	}
}

static Graph *front(const char *text, bool f64)
{
	Source *src = alloc(sizeof *src);
	src->path = "random.nn";
	src->text = str_ndup(text, strlen(text));
	src->len = strlen(text);
	Options o = {.f64 = f64};
	const char *msg;
	Graph *volatile g = NULL;
	CATCH_ERROR(msg, g = front_end(src, &o));
	ck_assert_msg(!msg, "a generated model is refused: %s\n%s", msg, text);
	return g;
}

START_TEST(test_random_models)
{
	const char *env = getenv("GRADC_DIFF_MODELS"), *env0 = getenv("GRADC_DIFF_SEED");
	int n = env && *env ? atoi(env) : 12;
	uint64_t seed0 = env0 && *env0 ? strtoull(env0, NULL, 10) : 1;
	const char *in = tmp_name("in"), *out = tmp_name("out");
	const char *cc = getenv("CC");
	const char *cc0 = str_fmt("%s", cc && *cc ? cc : "cc");
	const char *strict = str_fmt("%s -Wall -Wextra -Wpedantic -Werror", cc0);
	for (uint64_t seed = seed0; seed < seed0 + (uint64_t)n; seed++) {
		char *text = rand_model(seed);
		const char *model = str_fmt("seed %llu:\n%s", (unsigned long long)seed, text);
		free(text);
		const char *src = strchr(model, '\n') + 1;
		rng = 0x9E3779B97F4A7C15u ^ (seed * 7919);
		Graph *fwd = front(src, true);
		double **v = random_values(fwd);
		write_in(in, fwd, v);

		/* f64 against the evaluator */
		const char *msg = run(fwd, in, out, true, false);
		ck_assert_msg(!msg, "f64 run: %s\n%s", msg, model);
		gradc_st_file f64 = read_out(out);
		Eval *ei = evaluator(fwd, MODE_INFER, v);
		ck_assert_int_eq(eval_run(ei), 0);
		for (int k = 0; k < fwd->n_out; k++) {
			int id = find_name(ei->g, ei->g->node[ei->g->out[k]].name);
			const gradc_st_tensor *t = find(&f64, fwd->out_name[k], model);
			double e = err_of(t, NULL, ei->val[id], (size_t)node_numel(ei->g, &ei->g->node[id]),
					  1e-12);
			ck_assert_msg(e <= 1e-9, "output '%s': error %g\n%s", fwd->out_name[k], e, model);
		}
		Eval *eg = evaluator(fwd, MODE_GRAD, v);
		ck_assert_int_eq(eval_run(eg), 0);
		double e = err_of(find(&f64, "objective", model), NULL, eg->val[eg->g->loss], 1, 1e-12);
		ck_assert_msg(e <= 1e-9, "objective: error %g\n%s", e, model);
		for (int i = 0; i < eg->g->n_node; i++) {
			const Node *nd = &eg->g->node[i];
			if (nd->op != OP_PARAM || nd->frozen)
				continue;
			size_t count = (size_t)shape_numel(nd->shape);
			int gi = param_grad(eg->g, i);
			const double *want = gi >= 0 ? eg->val[gi] : alloc(sizeof(double) * count);
			e = err_of(find(&f64, str_fmt("grad.%s", nd->name), model), NULL, want, count,
				   1e-12);
			ck_assert_msg(e <= 1e-9, "grad.%s: error %g\n%s", nd->name, e, model);
		}
		Eval *et = evaluator(fwd, MODE_TRAIN, v);
		for (int s = 0; s < STEPS; s++)
			ck_assert_int_eq(eval_run(et), 0);
		for (int i = 0; i < et->g->n_node; i++) {
			const Node *nd = &et->g->node[i];
			if (nd->op != OP_PARAM)
				continue;
			e = err_of(find(&f64, nd->name, model), NULL, et->val[i],
				   (size_t)shape_numel(nd->shape), 1e-12);
			ck_assert_msg(e <= 1e-9, "%s after %d steps: error %g\n%s", nd->name, STEPS, e,
				      model);
		}

		/* f32 with -Werror against f64; --no-fuse against fused */
		Graph *fwd32 = front(src, false);
		setenv("CC", strict, 1);
		msg = run(fwd32, in, out, false, false);
		setenv("CC", cc0, 1);
		ck_assert_msg(!msg, "f32 run (-Werror): %s\n%s", msg, model);
		gradc_st_file f32 = read_out(out);
		compare_files(&f32, &f64, 2e-3, "f32 against f64", model);
		msg = run(fwd32, in, out, false, true);
		ck_assert_msg(!msg, "f32 --no-fuse run: %s\n%s", msg, model);
		gradc_st_file nf = read_out(out);
		compare_files(&nf, &f32, 1e-4, "--no-fuse against fused", model);
		gradc_st_free(&f64);
		gradc_st_free(&f32);
		gradc_st_free(&nf);

		/* the gradient check, quietly */
		Options o = {.f64 = true};
		volatile int rc = -1;
		fflush(stdout);
		int saved = dup(1);
		ck_assert(freopen("/dev/null", "w", stdout) != NULL);
		CATCH_ERROR(msg, rc = cmd_check("random.nn", fwd, &o));
		fflush(stdout);
		dup2(saved, 1);
		close(saved);
		ck_assert_msg(!msg && rc == 0, "gradc check failed (%s)\n%s", msg ? msg : "status 1",
			      model);
	}
	remove(in);
}
END_TEST

static Suite *diff_suite(void)
{
	Suite *s = suite_create("diff");
	TCase *tc = tcase_create("random");
	const char *env = getenv("GRADC_DIFF_MODELS");
	tcase_set_timeout(tc, 60.0 + 30.0 * (env && *env ? atoi(env) : 12));
	tcase_add_test(tc, test_random_models);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(diff_suite)
