/* test_fit.c: fit.c and fitdp.c (--fit's recomputation) on graphs built
 * here: the DP over a chain's segments finds the plans the exhaustive
 * search finds (the fewest multiply-adds at every arena of the curve);
 * recomputed copies are ordinary, verified, annotated nodes; a refused
 * budget names the smallest arena.  The scripts (t_fit.sh) run the builds.
 */
#include "testutil.h"
#include "randmodel.h"

#include <math.h>

/* A chain of 'layers' tanh layers of width 8. */
static const char *chain_text(int layers)
{
	Buf b = {0};
	buf_printf(&b, "model chain\nbatch 4\ninput x[8]\ninput y int\n");
	for (int k = 1; k <= layers; k++)
		buf_printf(&b, "param W%d[8, 8] ~ he\n", k);
	buf_printf(&b, "param Wo[3, 8] ~ xavier\nh0 = x\n");
	for (int k = 1; k <= layers; k++)
		buf_printf(&b, "h%d = tanh(W%d @ h%d)\n", k, k, k - 1);
	buf_printf(&b, "o = Wo @ h%d\nL = cross_entropy(o, y)\noutput o\n"
	               "minimize L with sgd(lr = 0.1)\n", layers);
	return b.s;
}

static Graph *train_graph(const char *text)
{
	static Options o;
	return build_mode(lowered_model(text, &o), MODE_TRAIN, &o);
}

START_TEST(dp_matches_exhaustive)
{
	Graph *g = train_graph(chain_text(13));
	int nc;
	fit_candidates(g, &nc);
	ck_assert_int_eq(nc, 13);  /* above the exhaustive search's 12: the DP */
	fit_all_max = 13;
	int np;
	FitPoint *pt = fit_curve(g, &np);
	ck_assert_int_ge(np, 4);
	fit_all_max = 12;
	for (int k = 0; k < np; k++) {
		FitPlan p;
		int64_t least;
		Graph *f = fit_search(g, pt[k].arena, &p, &least);
		ck_assert_msg(f, "the DP found no plan within %lld bytes", (long long)pt[k].arena);
		ck_assert_int_le(f->arena_bytes, pt[k].arena);
		ck_assert_msg(p.extra_macs == pt[k].extra_macs,
		              "arena %lld: the DP's plan costs %lld multiply-adds, the optimum %lld",
		              (long long)pt[k].arena, (long long)p.extra_macs,
		              (long long)pt[k].extra_macs);
		if (k > 0)
			ck_assert_int_eq(p.search, FIT_DP);
	}
	/* one byte under the curve's end: no plan, and that end named */
	FitPlan p;
	int64_t least;
	ck_assert_ptr_null(fit_search(g, pt[np - 1].arena - 1, &p, &least));
	ck_assert_int_eq(least, pt[np - 1].arena);
}
END_TEST

START_TEST(copies_are_nodes)
{
	Graph *g = train_graph(chain_text(4));
	int nc, *c = fit_candidates(g, &nc);
	ck_assert_int_eq(nc, 4);
	bool *drop = alloc(sizeof(bool) * (size_t)g->n_node);
	drop[c[0]] = drop[c[1]] = true;
	int64_t macs;
	Graph *f = fit_recompute(g, drop, &macs);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(macs, 2 * 4 * 8 * 8);  /* W1 @ x and W2 @ h1 again */
	plan(f);
	verify_schedule(f);
	int copies = 0;
	for (int i = 0; i < f->n_node; i++) {
		const Node *n = &f->node[i];
		if (!n->recomputed)
			continue;
		copies++;
		ck_assert(!n->backward);
		ck_assert_ptr_nonnull(strstr(n->note, "(recomputed for the backward pass of "));
		/* right before a backward kernel or another copy */
		int next = exec_step(f, i) + 1;
		ck_assert(f->node[next].backward || f->node[next].recomputed);
	}
	ck_assert_int_eq(copies, 4);  /* two products, two tanh fused into them */
	ck_assert_int_lt(f->lower_bound, g->lower_bound);
}
END_TEST

/* The reference evaluator on g with inputs and parameters from v (per
 * forward id of fwd), one training step; the evaluator after it. */
static Eval *step(const Graph *g, const Graph *fwd, double **v)
{
	Eval *e = new_eval(g);
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (n->op != OP_INPUT && n->op != OP_PARAM)
			continue;
		int k = find_name(fwd, n->name);
		ck_assert(k >= 0 && v[k]);
		memcpy(e->val[i], v[k], sizeof(double) * (size_t)node_numel(g, n));
	}
	ck_assert_int_eq(eval_run(e), 0);
	return e;
}

/* Random models (tests/randmodel.h): dropping every candidate, or every
 * other one, gives a graph the verifiers accept whose training step the
 * evaluator computes bit for bit as the plain graph's (the copies repeat
 * the same operations in the same order). */
START_TEST(random_models_same_step)
{
	int tried = 0;
	for (uint64_t seed = 1; seed <= 60; seed++) {
		char *text = rand_model(seed);
		static Options o;
		Graph *fwd = lowered_model(text, &o);
		free(text);
		if (!fwd->has_minimize)
			continue;
		Graph *g = build_mode(fwd, MODE_TRAIN, &o);
		int nc, *c = fit_candidates(g, &nc);
		uint64_t r = seed;
		double **v = alloc(sizeof(double *) * (size_t)fwd->n_node);
		for (int i = 0; i < fwd->n_node; i++) {
			const Node *n = &fwd->node[i];
			if (n->op != OP_INPUT && n->op != OP_PARAM)
				continue;
			int64_t count = node_numel(fwd, n);
			int64_t classes = dt_is_int(n->dtype) ? label_classes(fwd, i) : 0;
			v[i] = alloc(sizeof(double) * (size_t)count);
			for (int64_t k = 0; k < count; k++) {
				r = r * 6364136223846793005u + 1442695040888963407u;
				double u = (double)(r >> 11) / 9007199254740992.0;
				v[i][k] = classes ? floor(u * (double)classes) : u - 0.5;
			}
		}
		Eval *plain = step(g, fwd, v);
		for (int every = 1; every <= 2 && nc > 0; every++) {
			bool *drop = alloc(sizeof(bool) * (size_t)g->n_node);
			for (int k = 0; k < nc; k += every)
				drop[c[k]] = true;
			int64_t macs;
			Graph *f = fit_recompute(g, drop, &macs);
			if (!f)
				continue;
			plan(f);
			verify_schedule(f);
			tried++;
			Eval *e = step(f, fwd, v);
			ck_assert_msg(!memcmp(&e->val[f->loss][0], &plain->val[g->loss][0], sizeof(double)),
			              "seed %llu: the loss differs", (unsigned long long)seed);
			for (int i = 0; i < g->n_node; i++) {
				const Node *n = &g->node[i];
				if (n->op != OP_PARAM)
					continue;
				int j = find_name(f, n->name);
				ck_assert_msg(!memcmp(e->val[j], plain->val[i],
				                      sizeof(double) * (size_t)shape_numel(n->shape)),
				              "seed %llu: %s after the step differs", (unsigned long long)seed,
				              n->name);
			}
		}
	}
	ck_assert_int_ge(tried, 20);
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("fit");
	TCase *tc = tcase_create("fit");
	tcase_set_timeout(tc, 300);
	add_arena_fixture(tc);
	tcase_add_test(tc, dp_matches_exhaustive);
	tcase_add_test(tc, copies_are_nodes);
	tcase_add_test(tc, random_models_same_step);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(make_suite)
