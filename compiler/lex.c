/* lex.c: the tokenizer of the model language (SPEC 1).
 *
 * Algorithm: one pass over the bytes of the source, line by line.
 *   1. At the start of each line, measure it: a line longer than MAX_LINE
 *      bytes is an error (so every later column fits an int and no
 *      diagnostic has to print an absurd line).
 *   2. Skip blanks (space, tab, and the CR of a CRLF) and `#` comments.
 *   3. Read one token: an identifier [A-Za-z_][A-Za-z0-9_]* (at most
 *      MAX_NAME bytes), a number, one punctuation byte of `()[],=~+-*@/`,
 *      or a NEWLINE at the end of a line that had tokens (blank and
 *      comment-only lines give none).
 *   4. After the last byte, a NEWLINE (if the file does not end with one)
 *      and an EOF token, so the parser never looks past the array.
 *
 * Numbers: digits ['.' digits] or '.' digits, then an optional exponent
 * [eE][+-]digits ("1", "0.5", "1e-4", ".5", "1.").  A number glued to
 * letters, digits, '_' or '.' ("1e", "1.2.3", "12abc") is malformed and is
 * reported as the whole glued run.  Signs are separate '-' tokens; the
 * parser folds them into signed literals where SPEC allows those.
 *
 * Columns are 1-based byte columns (a tab counts 1).  Errors go to
 * error_at: an invalid byte is shown escaped ('\x01'), a NUL byte, a line
 * or a name too long, a malformed or out-of-range number.
 * A UTF-8 byte order mark at the start is skipped (columns still count it).
 * Limits: the file must be smaller than MAX_FILE (8 MiB; lines and token
 * counts are ints); a comment may hold any byte except NUL.
 */
#include "gradc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_FILE = 8 << 20 }; /* bytes: keeps line and token counts far from INT_MAX */

typedef struct Lexer {
	const Source *src;
	const char *p, *end; /* current byte, end of text */
	const char *line_at; /* first byte of the current line */
	int line;
	Token *tok;
	int n_tok, cap;
} Lexer;

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

static Loc loc_of(const Lexer *lx, const char *p)
{
	return (Loc){lx->line, (int)(p - lx->line_at) + 1};
}

static Token *push(Lexer *lx, TokKind kind, const char *s, int len)
{
	if (lx->n_tok == lx->cap) {
		int cap = lx->cap ? 2 * lx->cap : 256;
		lx->tok = alloc_grow(lx->tok, (size_t)lx->n_tok * sizeof(Token),
				     (size_t)cap * sizeof(Token));
		lx->cap = cap;
	}
	Token *t = &lx->tok[lx->n_tok++];
	*t = (Token){.kind = kind, .s = s, .len = len, .loc = loc_of(lx, s)};
	return t;
}

/* Check the length of the line starting at lx->p (without its CR LF). */
static void check_line(Lexer *lx)
{
	const char *e = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));
	if (!e)
		e = lx->end;
	if (e > lx->p && e[-1] == '\r')
		e--;
	if (e - lx->p > MAX_LINE)
		error_at((Loc){lx->line, MAX_LINE + 1}, "line is longer than %d bytes", MAX_LINE);
}

/* A byte that may not appear outside a comment, quoted for a message. */
static const char *show_byte(unsigned char c)
{
	if (c >= 33 && c < 127)
		return str_fmt("'%c'", c);
	switch (c) {
	case ' ':
		return "' '";
	case '\r':
		return "'\\r' (a carriage return not followed by a line feed)";
	case '\v':
		return "'\\v'";
	case '\f':
		return "'\\f'";
	}
	if (c >= 128)
		return str_fmt("'\\x%02x' (only ASCII is allowed outside comments)", c);
	return str_fmt("'\\x%02x'", c);
}

/* The end of the run of bytes glued to a malformed number at 's', for the
 * message: letters, digits, '_', '.', and a sign right after an 'e'.  */
static const char *glued_end(const char *s, const char *end)
{
	const char *q = s;
	while (q < end) {
		if (is_alnum(*q) || *q == '.')
			q++;
		else if ((*q == '+' || *q == '-') && q > s && (q[-1] == 'e' || q[-1] == 'E')
			 && is_digit(*s))
			q++;
		else
			break;
	}
	return q;
}

/* Scan the longest valid number at 's'; returns its end, or NULL if what
 * is there starts like a number but is not one ("1e", "1e+").  */
static const char *scan_number(const char *s, const char *end)
{
	const char *q = s;
	bool digits = false;
	while (q < end && is_digit(*q))
		q++, digits = true;
	if (q < end && *q == '.') {
		q++;
		while (q < end && is_digit(*q))
			q++, digits = true;
	}
	if (!digits)
		return NULL;
	if (q < end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < end && (*q == '+' || *q == '-'))
			q++;
		if (q == end || !is_digit(*q))
			return NULL;
		while (q < end && is_digit(*q))
			q++;
	}
	return q;
}

/* Quote a piece of source for a message, shortened if it is long. */
static const char *quote_text(const char *s, size_t n)
{
	if (n > 40)
		return str_fmt("'%.*s...'", 32, s);
	return str_fmt("'%.*s'", (int)n, s);
}

static void lex_number(Lexer *lx)
{
	const char *s = lx->p;
	const char *q = scan_number(s, lx->end);
	if (!q || (q < lx->end && (is_alnum(*q) || *q == '.'))) {
		const char *e = glued_end(s, lx->end);
		error_at(loc_of(lx, s), "malformed number %s", quote_text(s, (size_t)(e - s)));
	}
	/* the number is well formed and at most MAX_LINE bytes */
	char *text = str_ndup(s, (size_t)(q - s));
	double v = strtod(text, NULL);
	if (!isfinite(v))
		error_at(loc_of(lx, s), "number %s is out of range",
			 quote_text(s, (size_t)(q - s)));
	Token *t = push(lx, TOK_NUM, s, (int)(q - s));
	t->num = v;
	lx->p = q;
}

static void lex_ident(Lexer *lx)
{
	const char *s = lx->p, *q = s;
	while (q < lx->end && is_alnum(*q))
		q++;
	if (q - s > MAX_NAME)
		error_at(loc_of(lx, s), "name %s is longer than %d characters",
			 quote_text(s, (size_t)(q - s)), MAX_NAME);
	push(lx, TOK_IDENT, s, (int)(q - s));
	lx->p = q;
}

static void new_line(Lexer *lx)
{
	if (lx->n_tok && lx->tok[lx->n_tok - 1].kind != TOK_NEWLINE) /* no blank lines */
		push(lx, TOK_NEWLINE, lx->p, 1);
	lx->p++;
	lx->line++;
	lx->line_at = lx->p;
	check_line(lx);
}

/* Tokenize the whole of 'src' (see the file comment); '*n_tok' gets the
 * number of tokens, the last being TOK_EOF.  Sets err_src to 'src'.  */
Token *tokenize(const Source *src, int *n_tok)
{
	Lexer lx = {.src = src,
		    .p = src->text,
		    .end = src->text + src->len,
		    .line_at = src->text,
		    .line = 1};
	err_src = src;
	if (src->len >= (size_t)MAX_FILE)
		error_at((Loc){0, 0}, "file is too large (%d MiB or more)", MAX_FILE >> 20);
	if (src->len >= 3 && !memcmp(src->text, "\xef\xbb\xbf", 3))
		lx.p += 3; /* a UTF-8 byte order mark, as some editors write */
	check_line(&lx);
	while (lx.p < lx.end) {
		unsigned char c = (unsigned char)*lx.p;
		if (c == ' ' || c == '\t' || (c == '\r' && lx.p + 1 < lx.end && lx.p[1] == '\n')) {
			lx.p++;
		} else if (c == '#') {
			while (lx.p < lx.end && *lx.p != '\n') {
				if (*lx.p == 0)
					error_at(loc_of(&lx, lx.p), "NUL byte in a comment");
				lx.p++;
			}
		} else if (c == '\n') {
			new_line(&lx);
		} else if (is_alpha(c)) {
			lex_ident(&lx);
		} else if (is_digit(c) || (c == '.' && lx.p + 1 < lx.end && is_digit(lx.p[1]))) {
			lex_number(&lx);
		} else if (c && strchr("()[],=~+-*/@", c)) {
			push(&lx, TOK_PUNCT, lx.p, 1);
			lx.p++;
		} else if (c == 0) {
			error_at(loc_of(&lx, lx.p),
				 "NUL byte in the source (is this a binary file?)");
		} else {
			error_at(loc_of(&lx, lx.p), "invalid character %s", show_byte(c));
		}
	}
	if (lx.n_tok == 0 || lx.tok[lx.n_tok - 1].kind != TOK_NEWLINE)
		push(&lx, TOK_NEWLINE, lx.p, 0);
	push(&lx, TOK_EOF, lx.p, 0);
	*n_tok = lx.n_tok;
	return lx.tok;
}
