/* parser.h: the parser's state and token helpers, shared by parse.c (the
 * statements, names and numbers) and expr.c (expressions, calls and their
 * arguments).  Private to those two files.
 */
#ifndef PARSER_H
#define PARSER_H

#include "gradc.h"

#include <string.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A_LIT a signed number; A_INT a signed integer; A_SPATIAL an integer or
 * (h, w); A_PAD also (top, left, bottom, right). */
typedef enum ArgKind { A_TENSOR, A_LABEL, A_LIT, A_INT, A_SPATIAL, A_PAD } ArgKind;

typedef struct Param {
	const char *name;
	ArgKind kind;
	bool has_def; /* optional, with default 'def' */
	double def;
} Param;

enum { MAX_ARGS = 6, MAX_VARARGS = 64 };

/* A function, initializer or optimizer and its signature. */
typedef struct Callee {
	const char *name;
	int code; /* Op, Init or OptKind */
	int n_param;
	Param param[MAX_ARGS];
} Callee;

/* One argument as parsed. */
typedef struct Arg {
	int node;    /* A_TENSOR, A_LABEL */
	double v[4]; /* A_LIT, A_INT: v[0]; A_SPATIAL: (h, w); A_PAD: (top, left, bottom, right) */
	Loc loc;
} Arg;

/* ---- parser state */

typedef struct Sym {
	const char *name; /* NULL: empty slot */
	int id;           /* node, or -1 while only the prepass has seen it */
	Loc loc;          /* the (first) definition */
} Sym;

typedef struct Parser {
	const Source *src;
	const Options *opt;
	Token *tok;
	int n_tok, pos;
	Graph *g;
	Sym *sym;
	int n_sym, cap_sym; /* hash table, open addressing, cap a power of 2 */
	int depth;          /* expression nesting */
	Loc model_loc;      /* first `model` statement seen by the prepass */
	Loc batch_loc;      /* the `batch` statement, line 0 if none */
	int batch;
	Loc stmt_loc; /* the current statement */
	const char *stmt_text;
} Parser;

/* ---- tokens */

static inline Token *peek(Parser *p)
{
	return &p->tok[p->pos];
}

static inline Token *peek_at(Parser *p, int k)
{
	int i = p->pos + k;
	return &p->tok[i < p->n_tok ? i : p->n_tok - 1];
}

static inline Token *next(Parser *p)
{
	Token *t = &p->tok[p->pos];
	if (t->kind != TOK_EOF)
		p->pos++;
	return t;
}

static inline bool is_punct(const Token *t, char c)
{
	return t->kind == TOK_PUNCT && t->s[0] == c;
}

static inline bool is_word(const Token *t, const char *w)
{
	return t->kind == TOK_IDENT && (size_t)t->len == strlen(w)
	       && !memcmp(t->s, w, (size_t)t->len);
}

static inline bool is_eol(const Token *t)
{
	return t->kind == TOK_NEWLINE || t->kind == TOK_EOF;
}

static inline const char *tok_name(const Token *t)
{
	return str_ndup(t->s, (size_t)t->len);
}

/* A token quoted for a message. */
static inline const char *tok_str(const Token *t)
{
	if (t->kind == TOK_NEWLINE)
		return "end of line";
	if (t->kind == TOK_EOF)
		return "end of file";
	if (t->len > 40)
		return str_fmt("'%.32s...'", t->s);
	return str_fmt("'%.*s'", t->len, t->s);
}

static inline void expect_punct(Parser *p, char c, const char *after)
{
	Token *t = peek(p);
	if (!is_punct(t, c))
		error_at(t->loc, "expected '%c' %s, got %s", c, after, tok_str(t));
	next(p);
}

static inline bool in_list(const Token *t, const char *const *list, int n)
{
	for (int i = 0; i < n; i++)
		if (is_word(t, list[i]))
			return true;
	return false;
}

static inline const Callee *find_callee(const Token *t, const Callee *list, int n)
{
	for (int i = 0; i < n; i++)
		if (is_word(t, list[i].name))
			return &list[i];
	return NULL;
}

/* ---- shared between parse.c and expr.c */

/* the callees (expr.c): functions, initializers, optimizers */
extern const Callee funcs[], inits[], optims[];
extern const int n_funcs, n_inits, n_optims;

/* names (parse.c) */
Sym *lookup(Parser *p, const Token *t);
int resolve(Parser *p, const Token *t);       /* a name used as a value */
int resolve_float(Parser *p, const Token *t); /* ... that must be a float */
/* numbers (parse.c) */
void check_real(Parser *p, const Token *t);
double parse_signed(Parser *p, const char *what, const char **text, bool real);
/* expressions and arguments (expr.c) */
int parse_expr(Parser *p);
int parse_args(Parser *p, const Callee *c, const Token *at, Arg *arg, int max);

#endif
