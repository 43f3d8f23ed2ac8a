/* testutil.h: helpers shared by the check suites (tests/test_*.c).
 *
 * A suite file defines 'static Suite *NAME_suite(void)' and ends with
 * TEST_MAIN(NAME_suite).  Models are written inline as strings and parsed
 * with parse_model(); any other pass that may report a user error is run
 * under CATCH_ERROR.  The compiler's arena is dropped with free_all() in a
 * teardown (add_arena_fixture).
 *
 * Everything here is static inline so a suite that uses only part of it
 * neither warns nor needs the compiler files it does not call.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <check.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "host.h" /* gradc.h and the host commands */

/* Run every test of 's' (forking, as check does by default) and return the
 * process exit status: 0 if all passed.  */
static inline int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#define TEST_MAIN(make_suite)                 \
	int main(void)                        \
	{                                     \
		return run_suite(make_suite()); \
	}

/* Teardown that drops the compiler's arena after each test of a TCase. */
static inline void free_arena_teardown(void)
{
	free_all();
}

static inline void add_arena_fixture(TCase *tc)
{
	tcase_add_checked_fixture(tc, NULL, free_arena_teardown);
}

/* Run the statement 'stmt' with the error channel set.  'msg' (a const char
 * * lvalue) becomes NULL if 'stmt' returned normally, or err_msg if it
 * reported a user error (error_at / error_plain).  Values assigned inside
 * 'stmt' are not to be used after an error.  */
#define CATCH_ERROR(msg, stmt)                          \
	do {                                            \
		jmp_buf catch_jb_;                      \
		jmp_buf *catch_prev_ = err_jmp;         \
		err_jmp = &catch_jb_;                   \
		if (setjmp(catch_jb_) == 0) {           \
			stmt;                           \
			(msg) = NULL;                   \
		} else {                                \
			(msg) = err_msg;                \
		}                                       \
		err_jmp = catch_prev_;                  \
	} while (0)

/* A Source for 'text' under the file name 'path' (both copied into the
 * arena), set as err_src so diagnostics show its lines.  */
static inline const Source *new_source(const char *path, const char *text)
{
	Source *src = alloc(sizeof *src);
	src->path = str_ndup(path, strlen(path));
	src->len = strlen(text);
	src->text = str_ndup(text, src->len);
	err_src = src;
	return src;
}

/* Parse the model 'text' (as the file "test.nn") with options 'opt' (NULL:
 * defaults).  Returns NULL and sets *g on success, or returns the
 * diagnostic ("test.nn:LINE:COL: error: ...\n  line\n  ^\n").  */
static inline const char *parse_model_opt(const char *text, const Options *opt, Graph **g)
{
	static Options none;
	const Source *src = new_source("test.nn", text);
	const char *msg;
	Graph *volatile result = NULL;
	CATCH_ERROR(msg, result = parse(src, opt ? opt : &none));
	*g = msg ? NULL : result;
	return msg;
}

static inline const char *parse_model(const char *text, Graph **g)
{
	return parse_model_opt(text, NULL, g);
}

/* The lowered forward graph of a model that must be valid (any diagnostic
 * fails the test): what the passes after lower() start from.  */
static inline Graph *lowered_model(const char *text, const Options *opt)
{
	Graph *g;
	const char *msg = parse_model_opt(text, opt, &g);
	ck_assert_msg(!msg, "unexpected error: %s", msg ? msg : "");
	lower(g);
	return g;
}

/* An evaluator of 'fwd' in 'mode' with the inputs and parameters of v. */
static inline Eval *evaluator(const Graph *fwd, Mode mode, double **v)
{
	Graph *g = autodiff(fwd, mode);
	Eval *e = new_eval(g);
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (n->op != OP_INPUT && n->op != OP_PARAM)
			continue;
		int k = find_name(fwd, n->name);
		ck_assert(k >= 0 && v[k]);
		int64_t count = node_numel(g, n);
		memcpy(e->val[i], v[k], sizeof(double) * (size_t)count);
	}
	return e;
}

/* The first line of diagnostic 'msg' without its "PATH:" prefix, as the
 * tests/bad/ *.err files hold it: "3:7: error: ..." (a static buffer).  */
static inline const char *diag_line(const char *msg)
{
	static char line[1024];
	if (!msg)
		return "(no error)";
	const char *p = strstr(msg, ".nn:");
	p = p ? p + 4 : msg;
	while (*p == ' ')
		p++;
	size_t n = strcspn(p, "\n");
	if (n >= sizeof line)
		n = sizeof line - 1;
	memcpy(line, p, n);
	line[n] = 0;
	return line;
}

#endif
