/* test_schedule.c: the order of the kernels.
 *
 * The write-after-read hazard on a hand-built graph whose given order
 * updates a parameter before its last reader; fused nodes kept right before
 * their consumer; updates as early as their constraints allow; the loss
 * before every update; determinism; and, on random models, a valid order
 * never worse than the given one.
 */
#include <signal.h>

#include "testutil.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state >> 11) % n;
}

static Graph *derive(const Graph *f, Mode mode, bool fuse)
{
	Graph *g = autodiff(f, mode);
	optimize(g, fuse, fuse);
	return g;
}

static const char *model_file(const char *name)
{
	size_t len;
	char *s = read_file(str_fmt("models/%s.nn", name), &len);
	ck_assert_msg(s != NULL, "cannot read models/%s.nn", name);
	return s;
}

static int find_op(const Graph *g, Op op)
{
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].op == op)
			return i;
	return -1;
}

/* x[4] (batched), W[4]: a = x * W; dW = reduce(a); W -= dW; r = x + W, in
 * that order: the given order reads W after its update.  */
static Graph *hazard_graph(bool fuse_grad)
{
	Graph *g = new_graph("t", NULL);
	Loc l = {0};
	Shape s = shape_of(1, (int64_t)4);
	int x = new_leaf(g, OP_INPUT, "x", s, true, DT_F32, l);
	int w = new_leaf(g, OP_PARAM, "W", s, false, DT_F32, l);
	int a = new_binary(g, OP_MUL, x, w, l);
	int dw = new_grad(g, OP_REDUCE_TO, 1, &a, s, false);
	int in[2] = {w, dw};
	int u = new_grad(g, OP_SGD_STEP, 2, in, s, false);
	int r = new_binary(g, OP_ADD, x, w, l);
	g->node[w].grad = dw;
	g->node[dw].name = "dW";
	g->node[u].name = "update_W";
	g->node[r].name = "r";
	g->mode = MODE_TRAIN;
	g->out[g->n_out++] = r;
	if (fuse_grad)
		g->node[dw].fuse = u;
	return g;
}

START_TEST(write_after_read)
{
	for (int fuse = 0; fuse < 2; fuse++) {
		Graph *g = hazard_graph(fuse);
		ck_assert_int_gt(find_op(g, OP_ADD), find_op(g, OP_SGD_STEP));
		schedule(g);
		int u = find_op(g, OP_SGD_STEP), r = find_op(g, OP_ADD);
		ck_assert_int_lt(r, u);
		ck_assert_int_eq(g->node[g->out[0]].op, OP_ADD);
		ck_assert_int_eq(g->node[u].in[1], g->node[g->node[u].in[0]].grad);
		if (fuse) {
			ck_assert_int_eq(g->node[u - 1].op, OP_REDUCE_TO);
			ck_assert_int_eq(g->node[u - 1].fuse, u);
		}
		plan(g);
		verify_plan(g);
	}
}
END_TEST

START_TEST(verify_catches_hazard)
{
	/* the unscheduled graph breaks the rule: verify_schedule must die */
	Graph *g = hazard_graph(false);
	verify_schedule(g);
}
END_TEST

/* The step of every update is right after its last constraint (gradient,
 * other readers of the parameter, the loss), or after other updates only. */
START_TEST(updates_early)
{
	const char *names[] = {"mlp", "deep", "iris", "cancer", "ops", "wide"};
	for (size_t m = 0; m < sizeof names / sizeof *names; m++)
		for (int fuse = 0; fuse < 2; fuse++) {
			Graph *g = derive(lowered_model(model_file(names[m]), NULL), MODE_TRAIN, fuse);
			schedule(g);
			verify_schedule(g);
			for (int u = 0; u < g->n_node; u++) {
				const Node *un = &g->node[u];
				if (un->op != OP_SGD_STEP && un->op != OP_ADAM_STEP)
					continue;
				int start = u;  /* the unit's first member */
				while (start > 0 && op_kind[g->node[start - 1].op] != K_LEAF &&
				       exec_step(g, start - 1) == u)
					start--;
				int dep = exec_step(g, g->loss);
				for (int i = 0; i < g->n_node; i++) {
					bool reads = false;
					for (int k = 0; k < g->node[i].n_in; k++) {
						int x = g->node[i].in[k];
						reads |= x == un->in[0] ||
						         (g->node[x].op == OP_INPUT && dt_is_int(g->node[x].dtype));
						if (exec_step(g, i) == u && op_kind[g->node[x].op] != K_LEAF &&
						    exec_step(g, x) != u && exec_step(g, x) > dep)
							dep = exec_step(g, x);
					}
					if (reads && exec_step(g, i) != u && exec_step(g, i) > dep)
						dep = exec_step(g, i);
				}
				for (int i = dep + 1; i < start; i++)
					ck_assert_msg(g->node[exec_step(g, i)].op == OP_SGD_STEP ||
					              g->node[exec_step(g, i)].op == OP_ADAM_STEP,
					              "%s fuse %d: %s waits behind %s", names[m], fuse,
					              node_label(g, u), node_label(g, i));
			}
		}
}
END_TEST

START_TEST(deterministic)
{
	Graph *f = lowered_model(model_file("deep"), NULL);
	Graph *a = derive(f, MODE_TRAIN, true), *b = derive(f, MODE_TRAIN, true);
	schedule(a);
	schedule(b);
	ck_assert_int_eq(a->n_node, b->n_node);
	for (int i = 0; i < a->n_node; i++) {
		ck_assert_int_eq(a->node[i].op, b->node[i].op);
		ck_assert_str_eq(node_label(a, i), node_label(b, i));
		for (int k = 0; k < a->node[i].n_in; k++)
			ck_assert_int_eq(a->node[i].in[k], b->node[i].in[k]);
	}
}
END_TEST

START_TEST(branches)
{
	/* given order a, b, sum(a), sum(b): both big values live at once; the
	 * schedule finishes one branch first */
	const char *text = "model m\nbatch 8\ninput x[16]\n"
	                   "param W1[64, 16] ~ he\nparam W2[64, 16] ~ he\n"
	                   "a = relu(W1 @ x)\nb = tanh(W2 @ x)\n"
	                   "c = sum(a) + sum(b)\noutput c\n";
	Graph *f = lowered_model(text, NULL);
	Graph *given = derive(f, MODE_INFER, false), *g = derive(f, MODE_INFER, false);
	int64_t before = liveness(given);
	schedule(g);
	plan(g);
	ck_assert_int_lt(g->lower_bound, before);
	ck_assert_int_eq(g->arena_bytes, g->lower_bound);
}
END_TEST

/* A random model (as in test_plan.c, smaller). */
static const char *random_model(void)
{
	static const int dims[] = {2, 5, 12, 30};
	Buf b = {0};
	int nv = 1 + (int)rnd(3), dim[40], np = 0;
	buf_printf(&b, "model r\nbatch %d\ninput y int\n", 1 + (int)rnd(6));
	for (int i = 0; i < nv; i++) {
		dim[i] = dims[rnd(4)];
		buf_printf(&b, "input v%d[%d]\n", i, dim[i]);
	}
	for (int l = 2 + (int)rnd(10); l > 0; l--, nv++) {
		int a = (int)rnd((unsigned)nv), c = (int)rnd((unsigned)nv);
		if (rnd(2) || dim[c] != dim[a]) {
			int d = dims[rnd(4)];
			buf_printf(&b, "param P%d[%d, %d] ~ he\n", np, d, dim[a]);
			buf_printf(&b, "v%d = relu(P%d @ v%d)\n", nv, np++, a);
			dim[nv] = d;
		} else {
			buf_printf(&b, "v%d = v%d * v%d - v%d\n", nv, a, c, a);
			dim[nv] = dim[a];
		}
	}
	buf_printf(&b, "param Q[3, %d] ~ xavier\no = Q @ v%d\n", dim[nv - 1], nv - 1);
	buf_printf(&b, "J = cross_entropy(o, y) + sumsq(Q)\noutput o\nminimize J with %s\n",
	           rnd(2) ? "adam(0.01)" : "sgd(0.1)");
	return b.s;
}

START_TEST(random_models)
{
	const Mode modes[] = {MODE_INFER, MODE_TRAIN, MODE_GRAD};
	for (int r = 0; r < 60; r++) {
		Graph *f = lowered_model(random_model(), NULL);
		for (int k = 0; k < 3; k++) {
			bool fuse = rnd(2);
			Graph *given = derive(f, modes[k], fuse), *g = derive(f, modes[k], fuse);
			schedule(g);
			verify_schedule(g);
			plan(g);
			ck_assert_int_eq(g->n_node, given->n_node);
			if (modes[k] == MODE_INFER)  /* no updates: the given order is a candidate */
				ck_assert_int_le(g->lower_bound, liveness(given));
		}
	}
}
END_TEST

static Suite *schedule_suite(void)
{
	Suite *s = suite_create("schedule");
	TCase *tc = tcase_create("hazards");
	add_arena_fixture(tc);
	tcase_add_test(tc, write_after_read);
	tcase_add_test_raise_signal(tc, verify_catches_hazard, SIGABRT);
	tcase_add_test(tc, updates_early);
	suite_add_tcase(s, tc);
	tc = tcase_create("order");
	add_arena_fixture(tc);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, deterministic);
	tcase_add_test(tc, branches);
	tcase_add_test(tc, random_models);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(schedule_suite)
