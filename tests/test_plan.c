/* test_plan.c: the arena planner.
 *
 * Hand-made interval sets with known answers (chains, in-place reuse,
 * rounding, everything live at once), property tests over random interval
 * sets and random models (no overlap — plan_intervals and plan verify every
 * result —, arena >= lower bound, arena == sum when nothing can share), and
 * every model in models/ in every mode: arena == lower bound; the scratch
 * of packed products.
 */
#include "testutil.h"

#include <signal.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static unsigned rnd(unsigned n)  /* xorshift64 in [0, n) */
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state >> 11) % n;
}

/* Parse, lower and build 'mode' of the model 'text' as main.c does. */
static Graph *build(const char *text, Mode mode, bool fuse, int batch)
{
	Options o = {.batch = batch};
	Graph *f;
	const char *msg = parse_model_opt(text, &o, &f);
	ck_assert_msg(!msg, "%s", msg);
	const char *volatile m2 = NULL;
	Graph *volatile g = NULL;
	CATCH_ERROR(m2, {
		lower(f);
		g = autodiff(f, mode);
		optimize(g, fuse, fuse);
		schedule(g);
		plan(g);
	});
	ck_assert_msg(!m2, "%s", m2);
	return g;
}

static const char *model_file(const char *name)
{
	size_t len;
	char *s = read_file(str_fmt("models/%s.nn", name), &len);
	ck_assert_msg(s != NULL, "cannot read models/%s.nn", name);
	return s;
}

/* ---- hand-made intervals */

START_TEST(chain)
{
	/* a -> b -> c, each live from its step to its reader's */
	Interval iv[] = {{128, 0, 1, -1, 0}, {256, 1, 2, -1, 0}, {128, 2, 3, -1, 0}};
	int64_t lb, arena = plan_intervals(iv, 3, 64, &lb);
	ck_assert_int_eq(lb, 384);
	ck_assert_int_eq(arena, 384);
	ck_assert_int_eq(iv[0].offset, iv[2].offset);  /* a's memory reused by c */
}
END_TEST

START_TEST(in_place)
{
	/* relu over z in place while w is live: 2 allocations instead of 3 */
	Interval iv[] = {{256, 0, 1, -1, 0}, {256, 1, 2, 0, 0}, {256, 1, 2, -1, 0}};
	int64_t lb, arena = plan_intervals(iv, 3, 64, &lb);
	ck_assert_int_eq(lb, 512);
	ck_assert_int_eq(arena, 512);
	ck_assert_int_eq(iv[1].offset, iv[0].offset);
	ck_assert_int_ne(iv[2].offset, iv[0].offset);
	iv[1].alias = -1;  /* the same without reuse */
	arena = plan_intervals(iv, 3, 64, &lb);
	ck_assert_int_eq(lb, 768);
	ck_assert_int_eq(arena, 768);
}
END_TEST

START_TEST(rounding)
{
	Interval iv[] = {{1, 0, 0, -1, 0}, {65, 0, 0, -1, 0}, {64, 1, 1, -1, 0}};
	int64_t lb, arena = plan_intervals(iv, 3, 64, &lb);
	ck_assert_int_eq(lb, 192);
	int64_t lb8, arena8 = plan_intervals(iv, 3, 8, &lb8);  /* a Cortex-M alignment */
	ck_assert_int_eq(lb8, 8 + 72);
	ck_assert_int_eq(arena8, lb8);
	ck_assert_int_eq(arena, lb);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(iv[i].offset % 8, 0);
}
END_TEST

START_TEST(all_live)
{
	Interval iv[6];
	int64_t sum = 0;
	for (int i = 0; i < 6; i++) {
		iv[i] = (Interval){(i + 1) * 100, i, 10 + i, -1, 0};
		sum += round_to((i + 1) * 100, 64);
	}
	int64_t lb, arena = plan_intervals(iv, 6, 64, &lb);
	ck_assert_int_eq(lb, sum);
	ck_assert_int_eq(arena, sum);
}
END_TEST

START_TEST(mixed_lifetimes)
{
	/* a long small buffer beside short big ones that reuse each other */
	Interval iv[] = {
		{192, 0, 1, -1, 0}, {128, 2, 3, -1, 0}, {128, 2, 3, -1, 0},
		{64, 0, 3, -1, 0}, {192, 4, 5, -1, 0}, {64, 4, 5, -1, 0},
	};
	int64_t lb, arena = plan_intervals(iv, 6, 64, &lb);
	ck_assert_int_eq(lb, 320);
	ck_assert_int_eq(arena, lb);
}
END_TEST

START_TEST(empty)
{
	int64_t lb, arena = plan_intervals(NULL, 0, 64, &lb);
	ck_assert_int_eq(lb, 0);
	ck_assert_int_eq(arena, 0);
}
END_TEST

/* ---- random intervals */

/* A random interval set; in-place links where an interval ends at a later
 * one's start with the same size.  */
static int random_set(Interval *iv, int max_n, int steps)
{
	int n = 1 + (int)rnd((unsigned)max_n);
	for (int i = 0; i < n; i++) {
		int a = (int)rnd((unsigned)steps), len = (int)rnd(6);
		iv[i] = (Interval){64 * (1 + (int64_t)rnd(16)) - (int64_t)rnd(64), a, a + len, -1, 0};
		for (int j = 0; j < i && rnd(3) == 0; j++)
			if (iv[j].last == a && iv[j].alias < 0 && iv[j].bytes == iv[i].bytes) {
				bool used = false;
				for (int k = 0; k < i; k++)
					used |= iv[k].alias == j;
				if (!used)
					iv[i].alias = j;
				break;
			}
	}
	return n;
}

START_TEST(random_sets)
{
	int hit = 0, runs = 300;
	int64_t over = 0, total = 0;
	for (int r = 0; r < runs; r++) {
		Interval iv[60];
		int n = random_set(iv, 60, 30);
		int64_t lb, arena = plan_intervals(iv, n, 64, &lb);
		verify_intervals(iv, n, 64, arena);
		ck_assert_int_ge(arena, lb);
		ck_assert_int_eq(lb, intervals_lower_bound(iv, n, 64));
		hit += arena == lb;
		over += arena - lb;
		total += lb;
	}
	fprintf(stderr, "random sets: arena == lower bound in %d of %d, %.3f%% over\n", hit,
	        runs, 100.0 * (double)over / (double)total);
	ck_assert_int_ge(hit, runs * 9 / 10);
}
END_TEST

START_TEST(random_all_overlap)
{
	for (int r = 0; r < 200; r++) {
		Interval iv[30];
		int n = 1 + (int)rnd(30);
		int64_t sum = 0;
		for (int i = 0; i < n; i++) {
			iv[i] = (Interval){1 + (int64_t)rnd(5000), (int)rnd(10), 10 + (int)rnd(10), -1, 0};
			sum += round_to(iv[i].bytes, 64);
		}
		int64_t lb, arena = plan_intervals(iv, n, 64, &lb);
		ck_assert_int_eq(lb, sum);
		ck_assert_int_eq(arena, sum);
	}
}
END_TEST

/* Chains like a network's forward and backward pass: each value read by
 * the next one or two steps, some kept long.  Not every such set can meet
 * its lower bound (dynamic storage allocation: an exhaustive search proved
 * a 12-interval set of this family infeasible at the bound), so this asks
 * for the bound in most runs and within 10% in all.  */
START_TEST(random_chains)
{
	int hit = 0, runs = 200;
	for (int r = 0; r < runs; r++) {
		Interval iv[80];
		int n = 4 + (int)rnd(76);
		for (int i = 0; i < n; i++) {
			int len = rnd(4) == 0 ? (int)rnd((unsigned)(2 * (n - i)) + 1) : 1 + (int)rnd(2);
			iv[i] = (Interval){64 * (1 + (int64_t)rnd(64)), i, i + len, -1, 0};
		}
		int64_t lb, arena = plan_intervals(iv, n, 64, &lb);
		ck_assert_msg(arena * 100 <= lb * 110, "run %d: arena %lld, lower bound %lld", r,
		              (long long)arena, (long long)lb);
		hit += arena == lb;
	}
	fprintf(stderr, "random chains: arena == lower bound in %d of %d\n", hit, runs);
	ck_assert_int_ge(hit, runs * 3 / 4);
}
END_TEST

/* ---- graphs */

static const char *const models[] = {"mlp", "deep", "wide", "iris", "cancer", "ops"};

START_TEST(models_reach_bound)
{
	const Mode modes[] = {MODE_INFER, MODE_TRAIN, MODE_GRAD};
	for (size_t m = 0; m < sizeof models / sizeof *models; m++)
		for (int k = 0; k < 3; k++)
			for (int fuse = 0; fuse < 2; fuse++) {
				Graph *g = build(model_file(models[m]), modes[k], fuse, 0);
				verify_plan(g);
				ck_assert_msg(g->arena_bytes == g->lower_bound,
				              "%s mode %d fuse %d: arena %lld, lower bound %lld", models[m],
				              modes[k], fuse, (long long)g->arena_bytes,
				              (long long)g->lower_bound);
				ck_assert_int_ge(g->unshared_bytes, g->arena_bytes);
			}
}
END_TEST

/* autodiff, then schedule and plan, without optimize (no fusion). */
static Graph *build_unoptimized(const char *text, Mode mode)
{
	Graph *f;
	const char *msg = parse_model(text, &f);
	ck_assert_msg(!msg, "%s", msg);
	lower(f);
	Graph *g = autodiff(f, mode);
	schedule(g);
	plan(g);
	return g;
}

START_TEST(storage_classes)
{
	const char *text = model_file("mlp");
	Graph *g = build(text, MODE_INFER, true, 0);
	ck_assert_int_eq(g->node[g->out[0]].sto, STO_OUTPUT);
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].op == OP_PARAM)
			ck_assert_int_eq(g->node[i].sto, STO_PARAM);
		else if (g->node[i].op == OP_INPUT)
			ck_assert_int_eq(g->node[i].sto, STO_INPUT);
	g = build_unoptimized(text, MODE_GRAD);
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].op == OP_PARAM) {
			ck_assert_int_ge(param_grad(g, i), 0);
			ck_assert_int_eq(g->node[param_grad(g, i)].sto, STO_GRAD);
		}
	g = build(text, MODE_TRAIN, true, 0);
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (n->op == OP_SGD_STEP || n->op == OP_ADAM_STEP || fused_into(g, i) >= 0)
			ck_assert_int_eq(n->sto, STO_NONE);
		if (n->sto == STO_ARENA)
			ck_assert_int_eq(n->offset % g->target->align, 0);
	}
	ck_assert_int_eq(g->node[g->loss].last, g->n_node - 1);
}
END_TEST

START_TEST(in_place_in_graph)
{
	/* unfused, relu(z) can overwrite z: the arena holds fewer buffers
	 * than arena nodes */
	Graph *g = build(model_file("mlp"), MODE_INFER, false, 0);
	int aliased = 0;
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].alias >= 0) {
			const Node *n = &g->node[i], *a = &g->node[n->alias];
			ck_assert_int_eq(n->offset, a->offset);
			ck_assert_int_eq(n->bytes, a->bytes);
			aliased++;
		}
	ck_assert_int_ge(aliased, 1);
}
END_TEST

/* A random model: layers over earlier values, branches and joins. */
static const char *random_model(void)
{
	static const int dims[] = {3, 8, 16, 40};
	static const char *const act[] = {"relu", "tanh", "sigmoid", "abs", "exp"};
	Buf b = {0};
	int nv = 1 + (int)rnd(3), dim[40];
	int batch = 1 + (int)rnd(9);
	buf_printf(&b, "model r\nbatch %d\ninput y int\n", batch);
	for (int i = 0; i < nv; i++) {
		dim[i] = dims[rnd(4)];
		buf_printf(&b, "input v%d[%d]\n", i, dim[i]);
	}
	int layers = 2 + (int)rnd(10), np = 0;
	for (int l = 0; l < layers; l++, nv++) {
		int a = (int)rnd((unsigned)nv);
		switch (rnd(4)) {
		case 0: case 1: {
			int d = dims[rnd(4)];
			buf_printf(&b, "param P%d[%d, %d] ~ he%s\n", np, d, dim[a],
			           rnd(5) == 0 ? " frozen" : "");
			buf_printf(&b, "v%d = %s(P%d @ v%d)\n", nv, act[rnd(5)], np++, a);
			dim[nv] = d;
			break;
		}
		case 2: {
			int c = -1;
			for (int k = 0; k < nv; k++)
				if (dim[k] == dim[a] && k != a && rnd(2))
					c = k;
			if (c < 0)
				c = a;
			buf_printf(&b, "v%d = v%d * 0.5 + v%d\n", nv, a, c);
			dim[nv] = dim[a];
			break;
		}
		default:
			buf_printf(&b, "param P%d[%d] ~ normal(0, 0.1)\n", np, dim[a]);
			buf_printf(&b, "v%d = tanh(v%d - P%d)\n", nv, a, np++);
			dim[nv] = dim[a];
		}
	}
	buf_printf(&b, "param Q[4, %d] ~ xavier\n", dim[nv - 1]);
	buf_printf(&b, "o = Q @ v%d\nL = cross_entropy(o, y)\n", nv - 1);
	buf_printf(&b, "J = L + 0.001 * sumsq(Q)\noutput o\ntrack L\n");
	buf_printf(&b, "minimize J with %s\n", rnd(2) ? "adam(0.01)" : "sgd(0.1, momentum = 0.9)");
	return b.s;
}

START_TEST(random_graphs)
{
	const Mode modes[] = {MODE_INFER, MODE_TRAIN, MODE_GRAD};
	int hit = 0, runs = 0;
	for (int r = 0; r < 60; r++) {
		const char *text = random_model();
		for (int k = 0; k < 3; k++) {
			Graph *g = build(text, modes[k], rnd(2), 0);
			verify_plan(g);
			ck_assert_int_ge(g->arena_bytes, g->lower_bound);
			hit += g->arena_bytes == g->lower_bound;
			runs++;
		}
	}
	fprintf(stderr, "random graphs: arena == lower bound in %d of %d\n", hit, runs);
	ck_assert_int_eq(hit, runs);
}
END_TEST

/* A batched product X W^T with 64+ columns packs pack_rows() rows of X per
 * block into scratch live at its step alone, disjoint from every value live
 * there; without fusion nothing packs. */
START_TEST(packed_scratch)
{
	const char *text = "model t\nbatch 40\ninput x[70]\ninput y int\nparam W[100, 70] ~ he\n"
	                   "param V[3, 100] ~ he\no = V @ relu(W @ x)\nL = cross_entropy(o, y)\noutput o\n"
	                   "minimize L with sgd(0.1)\n";
	for (int mode = MODE_INFER; mode <= MODE_GRAD; mode++) {
		Graph *g = build(text, (Mode)mode, true, 0);
		int packed = 0;
		for (int i = 0; i < g->n_node; i++) {
			const Node *n = &g->node[i];
			if (n->op != OP_MATMUL || n->mm.pack == 0) {
				ck_assert_int_eq(n->scratch, 0);
				continue;
			}
			packed++;
			ck_assert(!n->mm.ta && n->mm.tb && n->mm.n == 100 && n->mm.k == 70);
			ck_assert_int_eq(n->mm.pack, pack_rows(g->target, DT_F32));
			ck_assert_int_eq(n->scratch, pack_rows(g->target, DT_F32) * 70 * 4);
			int s = exec_step(g, i);
			for (int j = 0; j < g->n_node; j++) {
				const Node *x = &g->node[j];
				if (x->sto == STO_ARENA && x->first <= s && s <= x->last)
					ck_assert(x->offset + x->bytes <= n->scratch_offset ||
					          n->scratch_offset + n->scratch <= x->offset);
			}
		}
		ck_assert_int_eq(packed, 1);  /* V @ h has 3 columns: not packed */
		Graph *u = build(text, (Mode)mode, false, 0);
		for (int i = 0; i < u->n_node; i++)
			ck_assert_int_eq(u->node[i].scratch, 0);
	}
}
END_TEST

START_TEST(baseline)
{
	for (size_t m = 0; m < sizeof models / sizeof *models; m++) {
		Graph *g = build(model_file(models[m]), MODE_TRAIN, true, 0);
		int64_t base = baseline_lower_bound(g);
		ck_assert_int_ge(base, g->lower_bound);
		fprintf(stderr, "%-7s train arena %9lld  lower bound %9lld  baseline %9lld  (%.1f%% lower)\n",
		        models[m], (long long)g->arena_bytes, (long long)g->lower_bound,
		        (long long)base, 100.0 * (1.0 - (double)g->lower_bound / (double)base));
	}
}
END_TEST

/* The seed's cross-entropy leaves its exps in the logits' buffer
 * (Node.clobber) in fused builds only; its gradient reads the loss, so the
 * plan verifies.  */
static const char *const ce_model =
	"model t\nbatch 4\ninput x[8]\ninput y int\nparam W[5, 8] ~ he\no = W @ x\n"
	"L = cross_entropy(o, y)\noutput o\nminimize L with sgd(0.1)\n";

static int ce_node(const Graph *g)
{
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].op == OP_CROSS_ENTROPY)
			return i;
	ck_abort_msg("no cross_entropy");
	return -1;
}

START_TEST(ce_clobber)
{
	Graph *g = build(ce_model, MODE_TRAIN, true, 0);
	int l = ce_node(g);
	ck_assert_int_eq(g->node[l].clobber, 1);
	ck_assert_ptr_nonnull(g->node[l].note);
	g = build(ce_model, MODE_TRAIN, false, 0);
	ck_assert_int_eq(g->node[ce_node(g)].clobber, 0);
	/* a second reader of the logits: nothing is written over them */
	g = build("model t\nbatch 4\ninput x[8]\ninput y int\nparam W[5, 8] ~ he\no = W @ x\n"
	          "L = cross_entropy(o, y) + sum(o)\nminimize L with sgd(0.1)\n", MODE_TRAIN, true, 0);
	ck_assert_int_eq(g->node[ce_node(g)].clobber, 0);
}
END_TEST

/* verify_plan refuses a reader of a clobbered buffer that does not read
 * the clobbering kernel (it would see exps where it expects logits). */
START_TEST(ce_clobber_verified)
{
	Graph *g = build(ce_model, MODE_TRAIN, true, 0);
	int l = ce_node(g);
	for (int i = l + 1; i < g->n_node; i++)
		if (g->node[i].op == OP_CE_GRAD)
			g->node[i].in[3] = g->node[i].in[1];  /* forget the loss */
	verify_plan(g);
}
END_TEST

static Suite *plan_suite(void)
{
	Suite *s = suite_create("plan");
	TCase *tc = tcase_create("intervals");
	add_arena_fixture(tc);
	tcase_add_test(tc, chain);
	tcase_add_test(tc, in_place);
	tcase_add_test(tc, rounding);
	tcase_add_test(tc, all_live);
	tcase_add_test(tc, mixed_lifetimes);
	tcase_add_test(tc, empty);
	suite_add_tcase(s, tc);
	tc = tcase_create("random intervals");
	add_arena_fixture(tc);
	tcase_add_test(tc, random_sets);
	tcase_add_test(tc, random_all_overlap);
	tcase_add_test(tc, random_chains);
	suite_add_tcase(s, tc);
	tc = tcase_create("graphs");
	add_arena_fixture(tc);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, models_reach_bound);
	tcase_add_test(tc, storage_classes);
	tcase_add_test(tc, in_place_in_graph);
	tcase_add_test(tc, random_graphs);
	tcase_add_test(tc, baseline);
	tcase_add_test(tc, packed_scratch);
	tcase_add_test(tc, ce_clobber);
	tcase_add_test_raise_signal(tc, ce_clobber_verified, SIGABRT);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(plan_suite)
