/* test_diag.c: diagnostics of the front end, exactly as the user sees
 * them (err_msg): "FILE:LINE:COL: error: MESSAGE", the source line and a
 * caret; then the message alone for a selection of mistakes of each kind.
 * (tests/bad/ holds the same kinds as files, run through build/gradc.)  */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static Source src;

/* The whole diagnostic for 'text' with 'o' (NULL: none), "" if none. */
static const char *diag_opt(const char *text, const Options *o)
{
	jmp_buf jb;
	err_jmp = &jb;
	src = (Source){"bad.nn", text, strlen(text)};
	if (setjmp(jb))
		return err_msg;
	Graph *g = parse(&src, o);
	lower(g);
	return "";
}

static const char *diag(const char *text)
{
	return diag_opt(text, NULL);
}

/* The message alone: the first line without "bad.nn:LINE:COL: error: ". */
static const char *msg(const char *text)
{
	static char m[512];
	const char *d = diag(text), *e = strstr(d, "error: ");
	if (!e)
		return "(no error)";
	e += strlen("error: ");
	snprintf(m, sizeof m, "%.*s", (int)strcspn(e, "\n"), e);
	return m;
}

#define M "model m\ninput x[4]\ninput y int\nparam W[3, 4] ~ he\n"
#define MIN "L = sum(W @ x)\nminimize L with "

START_TEST(test_format)
{
	ck_assert_str_eq(diag("model mlp\ninput x[64]\nparam W2[10, 32] ~ he\n"
			      "o = W2 @ x\n"),
			 "bad.nn:4:8: error: shape mismatch in '@': [10, 32] @ [64]\n"
			 "  o = W2 @ x\n"
			 "         ^\n");
	/* tabs are kept on the caret line so the caret lines up */
	ck_assert_str_eq(diag("model m\n\tz =\tq\n"), "bad.nn:2:6: error: unknown name 'q'\n"
						      "  \tz =\tq\n"
						      "  \t   \t^\n");
	/* CRLF: the CR is not shown */
	ck_assert_str_eq(diag("model m\r\ninput x[0]\r\n"),
			 "bad.nn:2:9: error: a dimension must be at least 1, got 0\n"
			 "  input x[0]\n"
			 "          ^\n");
	ck_assert_str_eq(diag(""), "bad.nn:1:1: error: empty model file (expected 'model NAME')\n"
				   "  \n  ^\n");
	Options o = {.name = "9lives"};
	ck_assert_str_eq(diag_opt("model m\n", &o),
			 "gradc: error: --name '9lives' is not a C identifier of at most 63 "
			 "characters\n");
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(msg(M "z = W @ q\n"), "unknown name 'q'");
	ck_assert_str_eq(msg(M "z = W @ x\nz = W @ x\n"), "'z' is already defined at line 5");
	ck_assert_str_eq(msg(M "input W[2]\n"), "'W' is already defined at line 4");
	ck_assert_str_eq(msg(M "h = relu(z)\nz = W @ x\n"),
			 "'z' is used before its definition at line 6");
	ck_assert_str_eq(msg(M "output z\nz = W @ x\n"),
			 "'z' is used before its definition at line 6");
	ck_assert_str_eq(msg(M "z = z + 1\n"), "'z' is used in its own definition");
	ck_assert_str_eq(msg(M "param track[2] ~ ones\n"),
			 "'track' is a keyword and cannot be a name");
	ck_assert_str_eq(msg(M "with = x\n"), "'with' is a keyword and cannot be a name");
	ck_assert_str_eq(msg(M "exp = x\n"), "'exp' is a function and cannot be a name");
	/* C keywords and reserved C names are fine: the emitter mangles them */
	ck_assert_str_eq(msg(M "while = -x\n_W = -x\n__z = -x\nNULL = -x\n"), "(no error)");
	ck_assert_str_eq(msg(M "z = x + frozen\n"), "'frozen' is a keyword, not a value");
	ck_assert_str_eq(msg(M "z = tanh + x\n"), "'tanh' is a function: call it as 'tanh(...)'");
}
END_TEST

START_TEST(test_types_shapes)
{
	ck_assert_str_eq(msg(M "z = x * y\n"),
			 "'y' is an int (a class label) and cannot be used as a float");
	ck_assert_str_eq(msg(M "L = cross_entropy(y, y)\n"),
			 "'y' is an int (a class label) and cannot be used as a float");
	ck_assert_str_eq(msg(M "L = cross_entropy(W @ x, x)\n"),
			 "the label of 'cross_entropy' must be an int input, got float 'x'");
	ck_assert_str_eq(
		msg(M "L = cross_entropy(W @ x, 2 * sum(x))\n"),
		"the label of 'cross_entropy' must be an int input, got a float expression");
	ck_assert_str_eq(msg(M "L = cross_entropy(W @ x, y\n"), "unbalanced '(': missing ')'");
	ck_assert_str_eq(msg(M "L = cross_entropy(W @ x, (y))\n"), /* a bare name only */
			 "'y' is an int (a class label) and cannot be used as a float");
	ck_assert_str_eq(msg(M "z = W @ W\n"), "shape mismatch in '@': [3, 4] @ [3, 4]");
	ck_assert_str_eq(msg(M "z = W @ x + x\n"), "shape mismatch in '+': [3] and [4]");
	ck_assert_str_eq(msg(M "o = W @ x\nminimize o\n"),
			 "objective 'o' must be a scalar, got [3]");
	ck_assert_str_eq(msg(M "track x\n"), "tracked value 'x' must be a scalar, got [4]");
	ck_assert_str_eq(msg(M "h = -x\noutput h, h\n"), "'h' is listed twice in 'output'");
	/* one value under two names (an alias) is two outputs */
	ck_assert_str_eq(msg(M "z = -x\nh = z\noutput z, h\n"), "(no error)");
	ck_assert_str_eq(msg(M "h = -x\noutput h\noutput h\n"), "more than one 'output' statement");
}
END_TEST

START_TEST(test_calls)
{
	ck_assert_str_eq(msg(M "z = relu()\n"), "'relu' takes 1 argument (x), got 0");
	ck_assert_str_eq(msg(M "z = mse(x)\n"), "'mse' takes 2 arguments (a, b), got 1");
	ck_assert_str_eq(msg(M "z = mse(x, x, x, x)\n"), "'mse' takes 2 arguments (a, b), got 4");
	ck_assert_str_eq(msg(M "z = relu(x, (1, 2))\n"), "'relu' takes 1 argument (x), got 2");
	ck_assert_str_eq(msg(M "z = relu(y = x)\n"), "unknown named argument 'y' of 'relu' (x)");
	ck_assert_str_eq(msg(M "z = leaky_relu(x, alpha = 1, alpha = 2)\n"),
			 "argument 'alpha' of 'leaky_relu' is given twice");
	ck_assert_str_eq(msg(M "z = leaky_relu(x, -a)\n"),
			 "expected a number for 'alpha' of 'leaky_relu', got 'a'");
	ck_assert_str_eq(msg(M "z = gelu(x)\n"), "unknown function 'gelu'");
	ck_assert_str_eq(msg(M "z = he(x)\n"), "'he' is an initializer, not a function");
	ck_assert_str_eq(msg(M "z = adam(x)\n"), "'adam' is an optimizer, not a function");
	ck_assert_str_eq(msg(M "z = relu(x x)\n"),
			 "expected ',' or ')' in the arguments of 'relu', got 'x'");
	ck_assert_str_eq(msg(M "z = relu(x\n"), "unbalanced '(': missing ')'");
	ck_assert_str_eq(msg(M "z = (x\n"), "unbalanced '(': missing ')'");
	ck_assert_str_eq(msg(M "z = x)\n"), "unbalanced ')'");
	ck_assert_str_eq(msg(M "z = )\n"), "unbalanced ')': expected an expression");
	ck_assert_str_eq(msg(M "z = x +\n"), "expected an expression, got end of line");
}
END_TEST

START_TEST(test_init_optim)
{
	ck_assert_str_eq(msg("model m\nparam a[2] ~ normal(0)\n"),
			 "'normal' takes 2 arguments (mean, std), got 1");
	ck_assert_str_eq(msg("model m\nparam a[2] ~ normal(std = 1)\n"),
			 "missing argument 'mean' of 'normal' (mean, std)");
	ck_assert_str_eq(msg("model m\nparam a[2] ~ constant\n"),
			 "'constant' takes 1 argument (v), got 0");
	ck_assert_str_eq(msg("model m\nparam a[2] ~ zeros(1)\n"),
			 "'zeros' takes no arguments, got 1");
	ck_assert_str_eq(msg("model m\nparam a[2] ~ normal(0, -1)\n"),
			 "'std' of 'normal' must not be negative, got -1");
	ck_assert_str_eq(msg("model m\nparam a[2] ~ kaiming\n"),
			 "unknown initializer 'kaiming' (expected zeros, ones, constant, normal, "
			 "uniform, xavier or he)");
	ck_assert_str_eq(
		msg("model m\nparam a[2] ~ xavier\n"),
		"'xavier' needs a parameter of at least 2 dimensions [out, in, ...], got [2]");
	ck_assert_str_eq(msg("model m\nparam a[2] ~ ones frozen frozen\n"),
			 "expected end of line after the statement, got 'frozen'");
	ck_assert_str_eq(msg(M MIN "sgd\n"),
			 "'sgd' takes 1 to 3 arguments (lr, momentum, weight_decay), got 0");
	ck_assert_str_eq(msg(M MIN "sgd(0.1, 0.9, 0, 1)\n"),
			 "'sgd' takes 1 to 3 arguments (lr, momentum, weight_decay), got 4");
	ck_assert_str_eq(msg(M MIN "adam(0.1, beta1 = 1)\n"),
			 "'beta1' of 'adam' must be in [0, 1), got 1");
	ck_assert_str_eq(msg(M MIN "adam(0.1, eps = 0)\n"),
			 "'eps' of 'adam' must be positive, got 0");
	ck_assert_str_eq(msg(M MIN "sgd(0.1, momentum = -1)\n"),
			 "'momentum' of 'sgd' must not be negative, got -1");
	ck_assert_str_eq(msg(M MIN "sgd(0.1, weight_decay = -1)\n"),
			 "'weight_decay' of 'sgd' must not be negative, got -1");
	ck_assert_str_eq(msg(M MIN "sgd(0)\n"), "'lr' of 'sgd' must be positive, got 0");
	ck_assert_str_eq(msg(M MIN "lbfgs(1)\n"),
			 "unknown optimizer 'lbfgs' (expected sgd or adam)");
	ck_assert_str_eq(msg(M "L = sum(W @ x)\nminimize L using sgd(1)\n"),
			 "expected end of line after the statement, got 'using'");
}
END_TEST

START_TEST(test_statements)
{
	ck_assert_str_eq(msg("# c\n\n"), "empty model file (expected 'model NAME')");
	ck_assert_str_eq(msg("input x[2]\n"),
			 "missing 'model NAME' statement (it must come first)");
	ck_assert_str_eq(msg("batch 2\nmodel m\n"), "'model' must be the first statement");
	ck_assert_str_eq(msg("model m\nmodel m\n"),
			 "more than one 'model' statement (the first is at line 1)");
	ck_assert_str_eq(msg("model\n"), "expected a model name after 'model', got end of line");
	ck_assert_str_eq(msg("model 3\n"), "expected a model name after 'model', got '3'");
	ck_assert_str_eq(msg("model _m\n"), "model name '_m' starts with '_' (such names are "
					    "reserved at file scope in C)");
	ck_assert_str_eq(msg("model gradc_rt\n"),
			 "model name 'gradc_rt' starts with 'gradc' (the prefix of gradc's runtime: "
			 "gradc_rt.h, gradc_*, GRADC_*)");
	ck_assert_str_eq(msg("model GRADC_RT\n"),
			 "model name 'GRADC_RT' starts with 'gradc' (the prefix of gradc's runtime: "
			 "gradc_rt.h, gradc_*, GRADC_*)");
	ck_assert_str_eq(msg("model math\n"),
			 "model name 'math' is a C library header: math.h would hide <math.h>");
	ck_assert_str_eq(msg("model m\nbatch 0\n"), "batch size must be at least 1, got 0");
	ck_assert_str_eq(msg("model m\nbatch -3\n"), "batch size must be at least 1, got -3");
	ck_assert_str_eq(msg("model m\nbatch 1e10\n"),
			 "size overflow: batch size is too large: 1e10 > 2147483647");
	ck_assert_str_eq(msg("model m\nbatch n\n"), "expected a number for batch size, got 'n'");
	ck_assert_str_eq(msg("model m\ninput x[]\n"), "expected a number for a dimension, got ']'");
	ck_assert_str_eq(msg("model m\ninput x[n]\n"), "a dimension must be a number, got 'n'");
	ck_assert_str_eq(msg("model m\ninput x[2 3]\n"),
			 "expected ',' or ']' in the dimensions, got '3'");
	ck_assert_str_eq(msg("model m\ninput x float\n"),
			 "expected '[' or 'int' after 'input x', got 'float'");
	ck_assert_str_eq(msg("model m\nparam p ~ he\n"),
			 "expected '[' and the shape of 'p', got '~'");
	ck_assert_str_eq(msg("model m\nconst c 3\n"), "expected '=' after 'const c', got '3'");
	ck_assert_str_eq(msg("model m\nconst c = x\n"), "expected a number for 'const c', got 'x'");
	ck_assert_str_eq(msg("model m\nz 3\n"), "expected '=' after 'z', got '3'");
	ck_assert_str_eq(msg("model m\nz\n"), "unknown statement 'z'");
	ck_assert_str_eq(msg("model m\n= 3\n"), "expected a statement, got '='");
	ck_assert_str_eq(msg(M "output\n"), "expected a name in 'output', got end of line");
	ck_assert_str_eq(msg(M "L = sum(x)\ntrack L,\n"),
			 "expected a name in 'track', got end of line");
	ck_assert_str_eq(msg(M "output q\n"), "unknown name 'q' in 'output'");
	ck_assert_str_eq(msg(M "track q\n"), "unknown name 'q' in 'track'");
	ck_assert_str_eq(msg(M "minimize q\n"), "unknown name 'q' in 'minimize'");
	ck_assert_str_eq(msg(M "minimize\n"),
			 "expected the name of the objective after 'minimize', got end of line");
}
END_TEST

START_TEST(test_sizes)
{
	ck_assert_str_eq(msg("model m\nparam W[65536, 65536] ~ zeros\n"),
			 "size overflow: 'W' [65536, 65536] has more than 2147483647 bytes");
	ck_assert_str_eq(msg("model m\ninput x[3000000000]\n"),
			 "size overflow: a dimension is too large: 3000000000 > 2147483647");
	ck_assert_str_eq(msg("model m\ninput a[60000]\nz = a @ a\n"),
			 "shape mismatch in '@': [60000] @ [60000]");
	ck_assert_str_eq(msg("model m\ninput a[60000, 1]\nz = a @ transpose(a)\n"),
			 "size overflow: the result [60000, 60000] has more than 2147483647 bytes");
	ck_assert_str_eq(msg("model m\ninput a[60000, 1]\nz = a + transpose(a)\n"),
			 "size overflow: the result [60000, 60000] has more than 2147483647 bytes");
	ck_assert_str_eq(msg("model m\ninput x[2, 2, 2, 2, 2]\n"),
			 "too many dimensions (at most 4)");
}
END_TEST

static Suite *diag_suite(void)
{
	Suite *s = suite_create("diag");
	TCase *tc = tcase_create("format");
	add_arena_fixture(tc);
	tcase_add_test(tc, test_format);
	suite_add_tcase(s, tc);
	tc = tcase_create("messages");
	add_arena_fixture(tc);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_types_shapes);
	tcase_add_test(tc, test_calls);
	tcase_add_test(tc, test_init_optim);
	tcase_add_test(tc, test_statements);
	tcase_add_test(tc, test_sizes);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(diag_suite)
