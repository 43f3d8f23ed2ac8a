/* test_emit.c: optimize.c (dead code, use counts, fusion marks) and the
 * emitter (emit.c and the Lua scripts).
 *
 * TCases: the Lua unit tests in tests/emit (FILE_test.lua), each file a list of
 * {name, function} run in the emitter's own Lua state (hand-made tables,
 * no compiler pass involved); fusion and dead-code elimination on the seed
 * network; the whole pipeline into emit(): the API a user relies on,
 * --infer-only and --dtype f64 variants, and byte-identical output.
 * Compiling and running the generated code is tests/t_generated.sh.
 */
#include "testutil.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char mlp[] =
	"model mlp\n"
	"batch 4\n"
	"input x[6]\n"
	"input y int\n"
	"param W1[5, 6] ~ he\n"
	"param W2[3, 5] ~ xavier\n"
	"const lambda = 1e-4\n"
	"z = W1 @ x\n"
	"h = relu(z)\n"
	"o = W2 @ h\n"
	"L = cross_entropy(o, y)\n"
	"s = lambda / 2 * (sumsq(W1) + sumsq(W2))\n"
	"J = L + s\n"
	"output o\n"
	"track L, s\n"
	"minimize J with sgd(lr = 0.1)\n";

/* ---- Lua unit tests */

/* Run every test of tests/emit/FILE; ck_abort on the first failure. */
static void run_lua_file(const char *file)
{
	lua_State *L = emit_lua_state();
	const char *path = str_fmt("tests/emit/%s", file);
	if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
		ck_abort_msg("%s: %s", path, lua_tostring(L, -1));
	ck_assert_msg(lua_istable(L, -1), "%s returns no table", path);
	int n = (int)luaL_len(L, -1);
	ck_assert_int_gt(n, 0);
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		lua_rawgeti(L, -1, 1);
		const char *name = str_fmt("%s", lua_tostring(L, -1));
		lua_pop(L, 1);
		lua_rawgeti(L, -1, 2);
		if (lua_pcall(L, 0, 0, 0) != LUA_OK)
			ck_abort_msg("%s: %s: %s", path, name, lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_close(L);
}

START_TEST(lua_cfmt)
{
	run_lua_file("cfmt_test.lua");
}
END_TEST

START_TEST(lua_emitter)
{
	run_lua_file("emitter_test.lua");
}
END_TEST

/* ---- the pipeline */

static Graph *mode(const Graph *fwd, Mode m, bool fuse)
{
	Graph *g = autodiff(fwd, m);
	optimize(g, fuse, fuse);
	return g;
}

static Graph *planned(const Graph *fwd, Mode m, bool fuse)
{
	Graph *g = mode(fwd, m, fuse);
	schedule(g);
	plan(g);
	return g;
}

/* The id of the node named 'name', of the update of param 'p' if 'upd'. */
static int node_named(const Graph *g, const char *name)
{
	int id = find_name(g, name);
	ck_assert_msg(id >= 0, "no node '%s'", name);
	return id;
}

static int update_of(const Graph *g, const char *param)
{
	int p = node_named(g, param);
	for (int i = 0; i < g->n_node; i++)
		if ((g->node[i].op == OP_SGD_STEP || g->node[i].op == OP_ADAM_STEP) &&
		    g->node[i].in[0] == p)
			return i;
	ck_abort_msg("no update of '%s'", param);
	return -1;
}

START_TEST(fuse_mlp)
{
	Graph *g = mode(lowered_model(mlp, NULL), MODE_TRAIN, true);
	int z = node_named(g, "z"), h = node_named(g, "h");
	ck_assert_int_eq(g->node[z].fuse, h);  /* matmul + relu epilogue */
	ck_assert_int_eq(g->node[h].fuse, -1); /* h is read by the backward pass */
	int dh = node_named(g, "dh"), dz = node_named(g, "dz");
	ck_assert_int_eq(g->node[dh].fuse, dz); /* relu' in dh's epilogue */
	for (int k = 0; k < 2; k++) {
		const char *w = k ? "W2" : "W1";
		int u = update_of(g, w), d = g->node[node_named(g, w)].grad;
		ck_assert_int_eq(d, g->node[u].in[1]); /* lambda W folded out (optimize) */
		ck_assert_int_eq(g->node[d].fuse, u); /* dW, decay, step: one loop */
		ck_assert_int_eq(g->node[u].fuse, -1);
	}
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (n->fuse < 0)
			continue;
		const Node *c = &g->node[n->fuse];
		ck_assert_int_eq(n->n_use, 1);
		ck_assert(op_is(c->op, F_EW) || op_is(c->op, F_UPDATE));
		ck_assert(n->fuse > i);
	}
}
END_TEST

START_TEST(no_fuse)
{
	Graph *g = mode(lowered_model(mlp, NULL), MODE_TRAIN, false);
	for (int i = 0; i < g->n_node; i++)
		ck_assert_int_eq(g->node[i].fuse, -1);
}
END_TEST

START_TEST(dead_code)
{
	Graph *fwd = lowered_model(mlp, NULL);
	Graph *g = mode(fwd, MODE_INFER, true);
	ck_assert_int_lt(g->n_node, fwd->n_node);
	int y = node_named(g, "y");
	ck_assert_int_eq(g->node[y].n_use, 0); /* kept: it is part of the API */
	ck_assert_int_eq(find_name(g, "L"), -1);
	ck_assert_int_eq(g->n_track, 0);
	node_named(g, "W1");
	node_named(g, "W2");
	ck_assert_str_eq(g->node[g->out[0]].name, "o");
	/* ids stay a topological order */
	for (int i = 0; i < g->n_node; i++)
		for (int k = 0; k < g->node[i].n_in; k++)
			ck_assert_int_lt(g->node[i].in[k], i);
	/* the gradients survive in MODE_GRAD */
	Graph *gg = mode(fwd, MODE_GRAD, true);
	ck_assert_int_ge(gg->node[node_named(gg, "W1")].grad, 0);
	ck_assert_int_ge(gg->node[node_named(gg, "W2")].grad, 0);
}
END_TEST

/* emit() of the three modes of 'text' with 'opt'. */
static void emit_model(const char *text, const Options *opt, Buf *h, Buf *c)
{
	Graph *fwd = lowered_model(text, opt);
	Graph *modes[3];
	int n = 0;
	modes[n++] = planned(fwd, MODE_INFER, !opt->no_fuse);
	if (!opt->infer_only) {
		modes[n++] = planned(fwd, MODE_TRAIN, !opt->no_fuse);
		modes[n++] = planned(fwd, MODE_GRAD, !opt->no_fuse);
	}
	emit(h, c, modes, n, opt);
}

START_TEST(api)
{
	Options opt = {0};
	Buf h = {0}, c = {0};
	emit_model(mlp, &opt, &h, &c);
	const char *want_h[] = {
		"#define mlp_BATCH 4", "#define mlp_X_SIZE 6", "#define mlp_O_SIZE 3",
		"#define mlp_N_CLASSES 3", "#define mlp_ARENA_BYTES", "#define mlp_INFER_ARENA_BYTES",
		"#define mlp_PARAMS_BYTES 180", "#define mlp_STATE_BYTES 8",
		"typedef float mlp_real;", "mlp_real W1[5 * 6];", "mlp_real lr;", "int32_t step;",
		"mlp_real objective;", "mlp_real L;", "mlp_real s;",
		"void mlp_init(mlp_params *p, mlp_state *s, uint32_t seed);",
		"int mlp_infer(const mlp_params *p, const mlp_real *x, mlp_real *o, void *arena);",
		"int mlp_train_step(mlp_params *p, mlp_state *s, const mlp_real *x, const int32_t *y, "
		"mlp_stats *st, void *arena);",
		"int mlp_grad(const mlp_params *p, const mlp_real *x, const int32_t *y, mlp_params *grad, "
		"mlp_stats *st, void *arena);",
		"extern const mlp_param_info mlp_param_table[];", "size_t mlp_save(", "int mlp_load(",
		"extern unsigned char mlp_arena[];",
	};
	for (size_t i = 0; i < sizeof want_h / sizeof *want_h; i++)
		ck_assert_msg(strstr(h.s, want_h[i]), "header lacks '%s'", want_h[i]);
	const char *want_c[] = {
		"return GRADC_EBADLABEL;", "return GRADC_ENONFINITE;", "dJ/dW2 = ",
		"(test.nn:9: h = relu(z))", "/* Buffer plan, training step", "s->step++;",
		"{\"W1\", 2, {5, 6, 0, 0}, 30, offsetof(mlp_params, W1), 1},",
	};
	for (size_t i = 0; i < sizeof want_c / sizeof *want_c; i++)
		ck_assert_msg(strstr(c.s, want_c[i]), "source lacks '%s'", want_c[i]);
	/* the label check comes first, the objective's check before any update */
	const char *ts = strstr(c.s, "int mlp_train_step(");
	ck_assert_ptr_nonnull(ts);
	const char *bad = strstr(ts, "GRADC_EBADLABEL"), *nf = strstr(ts, "GRADC_ENONFINITE");
	const char *upd = strstr(ts, "lr * g");  /* W -= lr * g, or the decay form */
	ck_assert(bad && nf && upd && bad < nf && nf < upd);
}
END_TEST

START_TEST(variants)
{
	Options opt = {.infer_only = true};
	Buf h = {0}, c = {0};
	emit_model(mlp, &opt, &h, &c);
	ck_assert_ptr_null(strstr(h.s, "train_step"));
	ck_assert_ptr_null(strstr(h.s, "mlp_state"));
	ck_assert_ptr_nonnull(strstr(h.s, "void mlp_init(mlp_params *p, uint32_t seed);"));
	Options o64 = {.f64 = true, .name = "m64"};
	Buf h2 = {0}, c2 = {0};
	emit_model(mlp, &o64, &h2, &c2);
	ck_assert_ptr_nonnull(strstr(h2.s, "typedef double m64_real;"));
	ck_assert_ptr_nonnull(strstr(c2.s, "GRADC_EXP("));
	ck_assert_ptr_null(strstr(c2.s, "GRADC_EXPF("));
	ck_assert_ptr_null(strstr(c2.s, " mlp_"));
}
END_TEST

START_TEST(deterministic)
{
	Options opt = {0};
	Buf h1 = {0}, c1 = {0}, h2 = {0}, c2 = {0};
	emit_model(mlp, &opt, &h1, &c1);
	emit_model(mlp, &opt, &h2, &c2);
	ck_assert_str_eq(h1.s, h2.s);
	ck_assert_str_eq(c1.s, c2.s);
}
END_TEST

static Suite *emit_suite(void)
{
	Suite *s = suite_create("emit");
	TCase *tc = tcase_create("lua");
	tcase_add_test(tc, lua_cfmt);
	tcase_add_test(tc, lua_emitter);
	suite_add_tcase(s, tc);
	tc = tcase_create("optimize");
	add_arena_fixture(tc);
	tcase_add_test(tc, fuse_mlp);
	tcase_add_test(tc, no_fuse);
	tcase_add_test(tc, dead_code);
	suite_add_tcase(s, tc);
	tc = tcase_create("pipeline");
	add_arena_fixture(tc);
	tcase_add_test(tc, api);
	tcase_add_test(tc, variants);
	tcase_add_test(tc, deterministic);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(emit_suite)
