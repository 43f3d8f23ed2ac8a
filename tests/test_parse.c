/* test_parse.c: the parser (parse.c) and the graph it builds: statements
 * and their defaults, precedence, named arguments, the shape of every
 * operator, batch flags, options, names, locations and statement text.  */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static Source src;
static Graph *g;

/* Parse 'text' with options 'o' (may be NULL); the test fails on an error. */
static Graph *parse_opt(const char *text, const Options *o)
{
	jmp_buf jb;
	err_jmp = &jb;
	src = (Source){"t.nn", text, strlen(text)};
	if (setjmp(jb))
		ck_abort_msg("unexpected error: %s", err_msg);
	g = parse(&src, o);
	return g;
}

static Graph *parse_ok(const char *text)
{
	return parse_opt(text, NULL);
}

/* The first line of the error for 'text', without the path. */
static const char *parse_err(const char *text)
{
	static char msg[512];
	jmp_buf jb;
	err_jmp = &jb;
	src = (Source){"t.nn", text, strlen(text)};
	if (setjmp(jb)) {
		const char *e = err_msg + strlen("t.nn:");
		snprintf(msg, sizeof msg, "%.*s", (int)strcspn(e, "\n"), e);
		return msg;
	}
	parse(&src, NULL);
	return "(no error)";
}

/* The node a name stands for (aliases resolve through their output use). */
static Node *N(const char *name)
{
	int id = find_name(g, name);
	ck_assert_msg(id >= 0, "no node named '%s'", name);
	return &g->node[id];
}

static Node *in(const Node *n, int i)
{
	return &g->node[n->in[i]];
}

#define HEAD                                                                 \
	"model m\ninput x[4]\ninput y int\ninput q[4]\nparam W[3, 4] ~ he\n" \
	"param v[4] ~ zeros\nparam M[4, 5] ~ ones\n"

START_TEST(test_seed_model)
{
	parse_ok("# mlp.nn\nmodel mlp\nbatch 32\n\ninput x[64]\ninput y int\n"
		 "param W1[32, 64] ~ he\nparam W2[10, 32] ~ xavier\nconst lambda = 1e-4\n\n"
		 "z = W1 @ x\nh = relu(z)\no = W2 @ h\nL = cross_entropy(o, y)\n"
		 "s = lambda / 2 * (sumsq(W1) + sumsq(W2))\nJ = L + s\n\n"
		 "output o\ntrack L, s\nminimize J with sgd(lr = 0.1)\n");
	ck_assert_str_eq(g->model, "mlp");
	ck_assert_int_eq(g->batch, 32);
	ck_assert_int_eq(g->mode, MODE_FWD);
	ck_assert(g->has_minimize);
	ck_assert_int_eq(g->objective, find_name(g, "J"));
	ck_assert_int_eq(g->min_loc.line, 20);
	ck_assert_int_eq(g->n_out, 1);
	ck_assert_int_eq(g->out[0], find_name(g, "o"));
	ck_assert_int_eq(g->n_track, 2);
	ck_assert_int_eq(g->track[0], find_name(g, "L"));
	ck_assert_int_eq(g->track[1], find_name(g, "s"));
	ck_assert_int_eq(g->track_mean[0], -1);
	ck_assert_int_eq(g->opt.kind, OPT_SGD);
	ck_assert_double_eq(g->opt.lr, 0.1);
	ck_assert_double_eq(g->opt.momentum, 0);
	ck_assert_int_eq(N("x")->op, OP_INPUT);
	ck_assert(N("x")->batched);
	ck_assert_int_eq(N("y")->dtype, DT_I32);
	ck_assert_int_eq(N("W1")->op, OP_PARAM);
	ck_assert(!N("W1")->batched);
	ck_assert_int_eq(N("W1")->init, INIT_HE);
	ck_assert_int_eq(N("W2")->init, INIT_XAVIER);
	ck_assert_int_eq(N("lambda")->op, OP_CONST);
	ck_assert_double_eq(N("lambda")->attr[0], 1e-4);
	ck_assert(shape_eq(N("o")->shape, shape_of(1, (int64_t)10)));
	ck_assert_int_eq(N("L")->shape.rank, 0);
	ck_assert(N("L")->batched);
	ck_assert(!N("s")->batched); /* parameters only */
	ck_assert(N("J")->batched);
}
END_TEST

START_TEST(test_defaults)
{
	parse_ok("model m\ninput x[2]\nparam W[2, 2] ~ he\no = W @ x\nJ = sum(o)\nminimize J\n");
	ck_assert_int_eq(g->batch, 1);
	ck_assert_int_eq(g->opt.kind, OPT_SGD);
	ck_assert_double_eq(g->opt.lr, 0.01);
	ck_assert_int_eq(g->n_out, 0);
	ck_assert_int_eq(g->n_track, 0);
	parse_ok("model m\ninput x[2]\no = x * 2\noutput o\n");
	ck_assert(!g->has_minimize);
	ck_assert_int_eq(g->objective, -1);
}
END_TEST

START_TEST(test_options)
{
	const char *text = "model m\nbatch 8\ninput x[2]\no = x * 2\noutput o\n";
	Options o = {.batch = 5, .name = "other", .f64 = true};
	parse_opt(text, &o);
	ck_assert_int_eq(g->batch, 5);
	ck_assert_str_eq(g->model, "other");
	ck_assert(g->f64);
	Options none = {0};
	parse_opt(text, &none);
	ck_assert_int_eq(g->batch, 8);
	ck_assert_str_eq(g->model, "m");
	ck_assert(!g->f64);
}
END_TEST

START_TEST(test_optimizers)
{
	const char *base = "model m\ninput x[2]\nparam W[2, 2] ~ he\nJ = sum(W @ x)\n";
	parse_ok(str_fmt("%sminimize J with sgd(0.5, 0.9, 0.01)\n", base));
	ck_assert_double_eq(g->opt.lr, 0.5);
	ck_assert_double_eq(g->opt.momentum, 0.9);
	ck_assert_double_eq(g->opt.weight_decay, 0.01);
	parse_ok(str_fmt("%sminimize J with sgd(lr = 0.2, weight_decay = 1e-3)\n", base));
	ck_assert_double_eq(g->opt.momentum, 0);
	ck_assert_double_eq(g->opt.weight_decay, 1e-3);
	parse_ok(str_fmt("%sminimize J with sgd(weight_decay = 1e-3, lr = 0.3)\n", base));
	ck_assert_double_eq(g->opt.lr, 0.3);
	parse_ok(str_fmt("%sminimize J with adam(1e-3)\n", base));
	ck_assert_int_eq(g->opt.kind, OPT_ADAM);
	ck_assert_double_eq(g->opt.lr, 1e-3);
	ck_assert_double_eq(g->opt.beta1, 0.9);
	ck_assert_double_eq(g->opt.beta2, 0.999);
	ck_assert_double_eq(g->opt.eps, 1e-8);
	ck_assert_double_eq(g->opt.weight_decay, 0);
	parse_ok(str_fmt("%sminimize J with adam(0.01, 0.8, eps = 1e-6, weight_decay = 0.1)\n",
			 base));
	ck_assert_double_eq(g->opt.beta1, 0.8);
	ck_assert_double_eq(g->opt.beta2, 0.999);
	ck_assert_double_eq(g->opt.eps, 1e-6);
	ck_assert_double_eq(g->opt.weight_decay, 0.1);
	ck_assert_int_eq(g->opt.loc.line, 5);
	ck_assert_int_eq(g->opt.loc.col, 17);
}
END_TEST

START_TEST(test_initializers)
{
	parse_ok(
		"model m\nparam a[2] ~ zeros\nparam b[2] ~ ones frozen\n"
		"param c[2] ~ constant(-1.5)\nparam d[2] ~ normal(0, 0.1)\n"
		"param e[2] ~ uniform(-0.5, 0.5)\nparam f[3, 2] ~ xavier\nparam h[3, 2, 2] ~ he()\n"
		"param k[2] ~ normal(std = 2, mean = 1)\nparam l[2] ~ constant(v = 3)\n");
	ck_assert_int_eq(N("a")->init, INIT_ZEROS);
	ck_assert_int_eq(N("b")->init, INIT_ONES);
	ck_assert(N("b")->frozen);
	ck_assert(!N("a")->frozen);
	ck_assert_int_eq(N("c")->init, INIT_CONSTANT);
	ck_assert_double_eq(N("c")->init_arg[0], -1.5);
	ck_assert_int_eq(N("d")->init, INIT_NORMAL);
	ck_assert_double_eq(N("d")->init_arg[1], 0.1);
	ck_assert_int_eq(N("e")->init, INIT_UNIFORM);
	ck_assert_double_eq(N("e")->init_arg[0], -0.5);
	ck_assert_double_eq(N("e")->init_arg[1], 0.5);
	ck_assert_int_eq(N("f")->init, INIT_XAVIER);
	ck_assert_int_eq(N("h")->init, INIT_HE);
	ck_assert_int_eq(N("h")->shape.rank, 3);
	ck_assert_double_eq(N("k")->init_arg[0], 1);
	ck_assert_double_eq(N("k")->init_arg[1], 2);
	ck_assert_double_eq(N("l")->init_arg[0], 3);
}
END_TEST

START_TEST(test_precedence)
{
	parse_ok(HEAD "a = x - v - q\n");
	Node *a = N("a");
	ck_assert_int_eq(a->op, OP_SUB);
	ck_assert_int_eq(in(a, 0)->op, OP_SUB); /* (x - v) - q */
	ck_assert_ptr_eq(in(a, 1), N("q"));
	parse_ok(HEAD "b = x + v * q\n");
	ck_assert_int_eq(N("b")->op, OP_ADD);
	ck_assert_int_eq(in(N("b"), 1)->op, OP_MUL);
	parse_ok(HEAD "c = -W @ x\n");
	ck_assert_int_eq(N("c")->op, OP_MATMUL);
	ck_assert_int_eq(in(N("c"), 0)->op, OP_NEG); /* (-W) @ x */
	parse_ok(HEAD "d = x / v * q\n");
	ck_assert_int_eq(N("d")->op, OP_MUL);
	ck_assert_int_eq(in(N("d"), 0)->op, OP_DIV); /* (x / v) * q, left to right */
	parse_ok(HEAD "e = x * (v + q)\n");
	ck_assert_int_eq(N("e")->op, OP_MUL);
	ck_assert_int_eq(in(N("e"), 1)->op, OP_ADD);
	parse_ok(HEAD "f = W @ x * 2 - -x @ transpose(W)\n");
	ck_assert_int_eq(N("f")->op, OP_SUB);
	parse_ok(HEAD "h = x - - - v\n"); /* x - (-(-v)) */
	ck_assert_int_eq(N("h")->op, OP_SUB);
	ck_assert_ptr_eq(in(N("h"), 1), N("v"));
	parse_ok(HEAD "k = x @ M @ transpose(M)\n"); /* ([4]@[4,5]) @ [5,4] */
	ck_assert(shape_eq(N("k")->shape, shape_of(1, (int64_t)4)));
}
END_TEST

/* The shape and batch flag of 'expr' (as the definition of 'r'). */
static void check_shape(const char *expr, Shape s, bool batched)
{
	parse_ok(str_fmt(HEAD "input m[2, 4]\nparam P[2, 4] ~ ones\nr = %s\n", expr));
	Node *r = N("r");
	ck_assert_msg(shape_eq(r->shape, s), "%s: shape %s, expected %s", expr, shape_str(r->shape),
		      shape_str(s));
	ck_assert_msg(r->batched == batched, "%s: batched %d", expr, r->batched);
	ck_assert_int_eq(r->dtype, DT_F32);
}

START_TEST(test_shapes)
{
	Shape sc = {0}, s3 = shape_of(1, (int64_t)3), s4 = shape_of(1, (int64_t)4);
	Shape s24 = shape_of(2, (int64_t)2, (int64_t)4), s42 = shape_of(2, (int64_t)4, (int64_t)2);
	static const char *const unary[] = {"relu", "sigmoid", "tanh",    "exp",        "log",
					    "sqrt", "abs",     "softmax", "log_softmax"};
	for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++) {
		check_shape(str_fmt("%s(m)", unary[i]), s24, true);
		check_shape(str_fmt("%s(v)", unary[i]), s4, false);
	}
	check_shape("leaky_relu(x, 0.01)", s4, true);
	ck_assert_double_eq(N("r")->attr[0], 0.01);
	check_shape("leaky_relu(x, alpha = -2)", s4, true);
	ck_assert_double_eq(N("r")->attr[0], -2);
	check_shape("sum(m)", sc, true);
	check_shape("mean(P)", sc, false);
	check_shape("sumsq(x)", sc, true);
	check_shape("transpose(m)", s42, true);
	check_shape("transpose(P)", s42, false);
	check_shape("cross_entropy(W @ x, y)", sc, true);
	ck_assert_int_eq(N("r")->op, OP_CROSS_ENTROPY);
	check_shape("mse(x, q)", sc, true);
	check_shape("mse(v, v * 2)", sc, false);
	check_shape("W @ x", s3, true); /* [m,k]@[k] */
	check_shape("W @ v", s3, false);
	check_shape("x @ transpose(W)", s3, true); /* [k]@[k,n] */
	check_shape("m @ transpose(P)", shape_of(2, (int64_t)2, (int64_t)2),
		    true); /* [m,k]@[k,n] */
	check_shape("P @ M", shape_of(2, (int64_t)2, (int64_t)5), false);
	check_shape("m + x", s24, true); /* broadcasting [2,4] + [4] */
	check_shape("v * P", s24, false);
	check_shape("m - 1", s24, true);
	check_shape("2 / x", s4, true);
	check_shape("-m", s24, true);
	check_shape("W @ x + 3", s3, true);
	check_shape("x + v @ M @ transpose(M)", s4, true);
	check_shape("transpose(transpose(P)) @ v", shape_of(1, (int64_t)2), false);
}
END_TEST

START_TEST(test_names_and_aliases)
{
	parse_ok(HEAD "z = W @ x\nh = z\nk = h * 1\noutput k\n");
	/* an alias names no new node: the node keeps its first name */
	ck_assert_int_eq(find_name(g, "h"), -1);
	ck_assert_int_eq(g->out[0], find_name(g, "z"));
	parse_ok("model m\nconst c = -2.5\nconst d = +3\ninput x[1]\nr = x * c\noutput r\n");
	ck_assert_double_eq(N("c")->attr[0], -2.5);
	ck_assert_double_eq(N("d")->attr[0], 3);
	/* a number alone defines a named constant */
	parse_ok("model m\ninput x[1]\nk = 3\nr = x * k\noutput r\n");
	ck_assert_double_eq(N("k")->attr[0], 3);
	/* names may reuse initializer and optimizer words */
	parse_ok("model m\ninput x[1]\nhe = x * 2\nsgd = he + 1\noutput sgd\n");
}
END_TEST

START_TEST(test_locations_text)
{
	parse_ok("model m\ninput x[4]\nparam W[3, 4] ~ he\n\n  o  =  W  @  x   # the product\n"
		 "p = relu(o)\noutput p\n");
	Node *o = N("o"), *x = N("x");
	ck_assert_int_eq(o->loc.line, 5);
	ck_assert_int_eq(o->loc.col, 12); /* the '@' */
	ck_assert_str_eq(o->text, "o  =  W  @  x");
	ck_assert_int_eq(x->loc.line, 2);
	ck_assert_int_eq(x->loc.col, 7); /* the name */
	ck_assert_str_eq(x->text, "input x[4]");
	ck_assert_int_eq(N("p")->loc.col, 5); /* the function name */
}
END_TEST

START_TEST(test_crlf_tabs_comments)
{
	parse_ok(
		"# a model\r\nmodel m\t# comment\r\n\r\n\tinput\tx[2]\r\nparam W[2,2]~he frozen\r\n"
		"o=W@x#no spaces\r\noutput o");
	ck_assert(N("W")->frozen);
	ck_assert_int_eq(N("o")->loc.line, 6);
	ck_assert_str_eq(N("o")->text, "o=W@x");
}
END_TEST

START_TEST(test_nesting)
{
	Buf b = {0};
	buf_printf(&b, "model m\ninput x[1]\nr = ");
	for (int i = 0; i < MAX_DEPTH - 1; i++)
		buf_printf(&b, "(");
	buf_printf(&b, "x");
	for (int i = 0; i < MAX_DEPTH - 1; i++)
		buf_printf(&b, ")");
	buf_printf(&b, " * 2\noutput r\n");
	parse_ok(b.s);
	ck_assert_int_eq(g->node[g->out[0]].op, OP_SCALE);
	ck_assert_int_eq(g->node[g->out[0]].in[0], find_name(g, "x"));
	b = (Buf){0};
	buf_printf(&b, "model m\ninput x[1]\nr = ");
	for (int i = 0; i < MAX_DEPTH; i++)
		buf_printf(&b, "relu(");
	buf_printf(&b, "x");
	for (int i = 0; i < MAX_DEPTH; i++)
		buf_printf(&b, ")");
	ck_assert_str_eq(parse_err(b.s), "3:1005: error: expression nested too deeply "
					 "(more than 200 levels)");
	/* a long chain of unary minus is folded in a loop */
	b = (Buf){0};
	buf_printf(&b, "model m\ninput x[1]\nr = ");
	for (int i = 0; i < 3001; i++)
		buf_printf(&b, "-");
	buf_printf(&b, "x\noutput r\n");
	parse_ok(b.s);
	ck_assert_int_eq(N("r")->op, OP_NEG);
}
END_TEST

START_TEST(test_many_names)
{
	Buf b = {0};
	buf_printf(&b, "model m\ninput x[1]\nv0 = x\n");
	for (int i = 1; i < 3000; i++)
		buf_printf(&b, "v%d = v%d + x\n", i, i - 1);
	buf_printf(&b, "output v2999\n");
	parse_ok(b.s);
	ck_assert_int_eq(g->out[0], find_name(g, "v2999"));
}
END_TEST

static Suite *parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *tc = tcase_create("statements");
	add_arena_fixture(tc);
	tcase_add_test(tc, test_seed_model);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_options);
	tcase_add_test(tc, test_optimizers);
	tcase_add_test(tc, test_initializers);
	tcase_add_test(tc, test_crlf_tabs_comments);
	suite_add_tcase(s, tc);
	tc = tcase_create("expressions");
	add_arena_fixture(tc);
	tcase_add_test(tc, test_precedence);
	tcase_add_test(tc, test_shapes);
	tcase_add_test(tc, test_nesting);
	suite_add_tcase(s, tc);
	tc = tcase_create("names");
	add_arena_fixture(tc);
	tcase_add_test(tc, test_names_and_aliases);
	tcase_add_test(tc, test_locations_text);
	tcase_add_test(tc, test_many_names);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(parse_suite)
