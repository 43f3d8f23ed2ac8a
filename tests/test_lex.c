/* test_lex.c: the tokenizer (lex.c): tokens and their places, numbers,
 * CRLF and tabs, comments, and every lexical error.  */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static Source src;
static Token *tok;
static int n_tok;

/* Tokenize 'len' bytes of 'text' (may hold NUL); NULL on success, else
 * the error's first line without the path ("1:3: error: ...").  */
static const char *lex_n(const char *text, size_t len)
{
	static char msg[512];
	jmp_buf jb;
	err_jmp = &jb;
	src = (Source){"t.nn", str_ndup(text, len), len};
	if (setjmp(jb)) {
		const char *e = err_msg + strlen("t.nn:");
		e += *e == ' '; /* an error without a place: "t.nn: error: ..." */
		snprintf(msg, sizeof msg, "%.*s", (int)strcspn(e, "\n"), e);
		return msg;
	}
	tok = tokenize(&src, &n_tok);
	return NULL;
}

static const char *lex(const char *text)
{
	return lex_n(text, strlen(text));
}

static bool tok_is(int i, TokKind k, const char *text)
{
	return i < n_tok && tok[i].kind == k && (size_t)tok[i].len == strlen(text)
	       && !memcmp(tok[i].s, text, strlen(text));
}

START_TEST(test_statement)
{
	ck_assert_ptr_null(lex("z = W1 @ x   # comment\n"));
	ck_assert_int_eq(n_tok, 7);
	ck_assert(tok_is(0, TOK_IDENT, "z"));
	ck_assert(tok_is(1, TOK_PUNCT, "="));
	ck_assert(tok_is(2, TOK_IDENT, "W1"));
	ck_assert(tok_is(3, TOK_PUNCT, "@"));
	ck_assert(tok_is(4, TOK_IDENT, "x"));
	ck_assert_int_eq(tok[5].kind, TOK_NEWLINE);
	ck_assert_int_eq(tok[4].loc.line, 1);
	ck_assert_int_eq(tok[4].loc.col, 10);
	ck_assert_int_eq(tok[5].loc.col, 23);
	ck_assert_int_eq(tok[n_tok - 1].kind, TOK_EOF);
}
END_TEST

START_TEST(test_punct)
{
	ck_assert_ptr_null(lex("()[],=~+-*/@"));
	ck_assert_int_eq(n_tok, 14);
	for (int i = 0; i < 12; i++) {
		ck_assert_int_eq(tok[i].kind, TOK_PUNCT);
		ck_assert_int_eq(tok[i].loc.col, i + 1);
	}
	ck_assert_int_eq(tok[12].kind, TOK_NEWLINE); /* added at the end */
	ck_assert_int_eq(tok[13].kind, TOK_EOF);
}
END_TEST

START_TEST(test_numbers)
{
	static const struct {
		const char *s;
		double v;
	} ok[] = {
		{"1", 1},      {"0.5", 0.5},  {"1e-4", 1e-4}, {".5", 0.5},
		{"1.", 1},     {"1E+3", 1e3}, {"007", 7},     {"2.5e2", 250},
		{"1.e2", 100}, {"0", 0},      {"1e-400", 0},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		ck_assert_ptr_null(lex(ok[i].s));
		ck_assert_int_eq(tok[0].kind, TOK_NUM);
		ck_assert_int_eq(tok[0].len, (int)strlen(ok[i].s));
		ck_assert_double_eq(tok[0].num, ok[i].v);
		ck_assert_int_eq(tok[1].kind, TOK_NEWLINE);
	}
	/* a sign is a separate token */
	ck_assert_ptr_null(lex("-0.5"));
	ck_assert(tok_is(0, TOK_PUNCT, "-"));
	ck_assert(tok_is(1, TOK_NUM, "0.5"));
	/* 2-1 is three tokens, 1e-1 is one */
	ck_assert_ptr_null(lex("2-1 1e-1"));
	ck_assert_int_eq(n_tok, 6);
	ck_assert(tok_is(3, TOK_NUM, "1e-1"));
}
END_TEST

START_TEST(test_malformed_numbers)
{
	ck_assert_str_eq(lex("x = 1e"), "1:5: error: malformed number '1e'");
	ck_assert_str_eq(lex("x = 1e+"), "1:5: error: malformed number '1e+'");
	ck_assert_str_eq(lex("x = 1.2.3"), "1:5: error: malformed number '1.2.3'");
	ck_assert_str_eq(lex("x = 12abc + 1"), "1:5: error: malformed number '12abc'");
	ck_assert_str_eq(lex("x = 0x1F"), "1:5: error: malformed number '0x1F'");
	ck_assert_str_eq(lex("x = 1..2"), "1:5: error: malformed number '1..2'");
	ck_assert_str_eq(lex("x = 2e5q"), "1:5: error: malformed number '2e5q'");
	ck_assert_str_eq(lex("x = 1e999"), "1:5: error: number '1e999' is out of range");
}
END_TEST

START_TEST(test_crlf_tabs)
{
	ck_assert_ptr_null(lex("model m\r\n\tinput x[2]\r\n"));
	ck_assert(tok_is(0, TOK_IDENT, "model"));
	ck_assert(tok_is(1, TOK_IDENT, "m"));
	ck_assert_int_eq(tok[2].kind, TOK_NEWLINE);
	ck_assert(tok_is(3, TOK_IDENT, "input"));
	ck_assert_int_eq(tok[3].loc.line, 2);
	ck_assert_int_eq(tok[3].loc.col, 2); /* a tab counts one column */
	ck_assert_int_eq(tok[n_tok - 2].kind, TOK_NEWLINE);
	ck_assert_int_eq(tok[n_tok - 3].kind, TOK_PUNCT); /* ']' */
	ck_assert_str_eq(lex("a\rb"), "1:2: error: invalid character '\\r' "
				      "(a carriage return not followed by a line feed)");
}
END_TEST

START_TEST(test_comments)
{
	ck_assert_ptr_null(lex("# only a comment\n\n# another\xff\x01 (any byte)\nx"));
	ck_assert_int_eq(n_tok, 3); /* x NL EOF: blank lines give no NEWLINE */
	ck_assert(tok_is(0, TOK_IDENT, "x"));
	ck_assert_int_eq(tok[0].loc.line, 4);
	ck_assert_ptr_null(lex("a\n\n\n# c\nb\n\n"));
	ck_assert_int_eq(n_tok, 5); /* a NL b NL EOF */
	ck_assert_int_eq(tok[2].loc.line, 5);
	ck_assert_ptr_null(lex("a#b\n"));
	ck_assert_int_eq(n_tok, 3);
	ck_assert_ptr_null(lex(""));
	ck_assert_int_eq(n_tok, 2);
	ck_assert_ptr_null(lex("\xef\xbb\xbfmodel m")); /* a byte order mark */
	ck_assert(tok_is(0, TOK_IDENT, "model"));
	ck_assert_int_eq(tok[0].loc.col, 4);
}
END_TEST

START_TEST(test_bad_chars)
{
	ck_assert_str_eq(lex("x = a $ b"), "1:7: error: invalid character '$'");
	ck_assert_str_eq(lex("x = \x01"), "1:5: error: invalid character '\\x01'");
	ck_assert_str_eq(lex("\n\xc3\xa9"), "2:1: error: invalid character '\\xc3' "
					    "(only ASCII is allowed outside comments)");
	ck_assert_str_eq(lex("x;"), "1:2: error: invalid character ';'");
	ck_assert_str_eq(lex_n("ab\0c", 4), "1:3: error: NUL byte in the source "
					    "(is this a binary file?)");
	ck_assert_str_eq(lex_n("a # \0", 5), "1:5: error: NUL byte in a comment");
}
END_TEST

START_TEST(test_limits)
{
	char name[MAX_NAME + 2];
	memset(name, 'a', sizeof name);
	name[MAX_NAME] = 0;
	ck_assert_ptr_null(lex(name));
	ck_assert_int_eq(tok[0].len, MAX_NAME);
	name[MAX_NAME] = 'a';
	name[MAX_NAME + 1] = 0;
	ck_assert_str_eq(lex(name), "1:1: error: name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' "
				    "is longer than 63 characters");

	char *line = malloc(MAX_LINE + 8);
	memset(line, ' ', MAX_LINE + 8);
	line[0] = '\n';
	line[MAX_LINE + 1] = 'x';
	line[MAX_LINE + 2] = 0; /* line 2 holds MAX_LINE + 1 bytes */
	ck_assert_str_eq(lex(line), "2:4097: error: line is longer than 4096 bytes");
	line[MAX_LINE + 1] = '\r';
	line[MAX_LINE + 2] = '\n'; /* MAX_LINE bytes and a CRLF: fine */
	line[MAX_LINE + 3] = 0;
	ck_assert_ptr_null(lex(line));
	free(line);
	char *big = malloc(8 << 20);
	memset(big, '\n', 8 << 20);
	ck_assert_str_eq(lex_n(big, 8 << 20), "error: file is too large (8 MiB or more)");
	ck_assert_ptr_null(lex_n(big, (8 << 20) - 1)); /* blank lines cost nothing */
	ck_assert_int_eq(n_tok, 2);
	free(big);
}
END_TEST

static Suite *lex_suite(void)
{
	Suite *s = suite_create("lex");
	TCase *tc = tcase_create("tokens");
	add_arena_fixture(tc);
	tcase_add_test(tc, test_statement);
	tcase_add_test(tc, test_punct);
	tcase_add_test(tc, test_crlf_tabs);
	tcase_add_test(tc, test_comments);
	suite_add_tcase(s, tc);
	tc = tcase_create("numbers");
	add_arena_fixture(tc);
	tcase_add_test(tc, test_numbers);
	tcase_add_test(tc, test_malformed_numbers);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	add_arena_fixture(tc);
	tcase_add_test(tc, test_bad_chars);
	tcase_add_test(tc, test_limits);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(lex_suite)
