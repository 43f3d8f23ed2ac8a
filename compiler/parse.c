/* parse.c: the model language (SPEC 1) -> the forward graph (MODE_FWD).
 *
 * Recursive descent over the token array of lex.c, one statement a line:
 *   1. A prepass records, for every name, the line of its first definition
 *      statement (`NAME = ...`, `input NAME`, `param NAME`, `const NAME`) and
 *      the first `model` statement, so that a name used too early is told
 *      apart from an unknown one, and a misplaced `model` from a missing one.
 *   2. Statements are parsed in order; each definition builds its nodes
 *      with ir.c's constructors (which infer shapes, check types and fold
 *      constants) and enters its name in a hash table.
 *   3. `output`, `track` and `minimize` record node ids in the Graph; the
 *      options (--batch, --name, --dtype) are applied at the end.
 *
 * Names: a definition names the node its expression produced.  If that
 * node already has a name (`h = z`, or folding returned an existing node,
 * `a = x * 1`), the new name is an alias: the table maps it to the same
 * node and the node keeps its first name.
 * Locations: a leaf's is its name; an operator's its token (the caret goes
 * under the `@` of a shape mismatch); a call's the function name.  Every
 * node made by a statement gets the statement's text (Node.text).
 * Arguments: calls, initializers and optimizers share one argument parser
 * with positional and named arguments.  An argument whose SPEC signature
 * shows no default is required: `sgd(lr)`, `normal(mean, std)`,
 * `uniform(lo, hi)`, `constant(v)`, `leaky_relu(x, alpha)`.  Only a
 * `minimize` without `with` gets the default optimizer, sgd(lr = 0.01).
 * Checks beyond SPEC's wording: an output must depend on an input (outputs
 * are per sample, [B, ...]); a tracked value must be a scalar; the
 * objective a scalar that depends on a trainable parameter; `xavier` and
 * `he` need a parameter of rank >= 2 (fan-in, as PyTorch); optimizer
 * hyperparameters in their ranges (lr > 0, betas in [0, 1), eps > 0, ...).
 * Limits: expressions nest at most MAX_DEPTH deep (parentheses and calls;
 * chains of unary minus are folded in a loop and need no depth); at most
 * MAX_LIST outputs and tracks; names may not be keywords of the language or
 * function names.  A name that is a C keyword or otherwise clashes with C
 * is accepted and mangled by the emitter (cfmt.lua's cname); a model name,
 * which names the files, may not start with '_' or 'gradc'
 * (model_name_problem).
 */
#include "gradc.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* ---- tables */

static const char *const stmt_words[] = {
	"model", "batch",    "input", "param",  "const", "output",
	"track", "minimize", "with",  "frozen", "int",
};

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

/* SPEC 1's spatial signatures: stride, padding, dilation default to 1, 0,
 * 1; a pool's stride to its kernel (-1 here). */
#define SP_X {"x", A_TENSOR, false, 0}
#define SP_STRIDE(d) {"stride", A_SPATIAL, true, d}
#define SP_PAD {"padding", A_PAD, true, 0}

static const Callee funcs[] = {
	{"relu", OP_RELU, 1, {{"x", A_TENSOR, false, 0}}},
	{"sigmoid", OP_SIGMOID, 1, {{"x", A_TENSOR, false, 0}}},
	{"tanh", OP_TANH, 1, {{"x", A_TENSOR, false, 0}}},
	{"exp", OP_EXP, 1, {{"x", A_TENSOR, false, 0}}},
	{"log", OP_LOG, 1, {{"x", A_TENSOR, false, 0}}},
	{"sqrt", OP_SQRT, 1, {{"x", A_TENSOR, false, 0}}},
	{"abs", OP_ABS, 1, {{"x", A_TENSOR, false, 0}}},
	{"leaky_relu", OP_LEAKY_RELU, 2, {{"x", A_TENSOR, false, 0}, {"alpha", A_LIT, false, 0}}},
	{"softmax", OP_SOFTMAX, 1, {{"x", A_TENSOR, false, 0}}},
	{"log_softmax", OP_LOG_SOFTMAX, 1, {{"x", A_TENSOR, false, 0}}},
	{"sum", OP_SUM, 1, {{"x", A_TENSOR, false, 0}}},
	{"mean", OP_MEAN, 1, {{"x", A_TENSOR, false, 0}}},
	{"sumsq", OP_SUMSQ, 1, {{"x", A_TENSOR, false, 0}}},
	{"transpose", OP_TRANSPOSE, 1, {{"x", A_TENSOR, false, 0}}},
	{"cross_entropy",
	 OP_CROSS_ENTROPY,
	 2,
	 {{"logits", A_TENSOR, false, 0}, {"y", A_LABEL, false, 0}}},
	{"mse", OP_MSE, 2, {{"a", A_TENSOR, false, 0}, {"b", A_TENSOR, false, 0}}},
	{"clip", OP_CLIP, 3, {SP_X, {"lo", A_LIT, false, 0}, {"hi", A_LIT, false, 0}}},
	{"conv2d",
	 OP_CONV2D,
	 6,
	 {SP_X,
	  {"W", A_TENSOR, false, 0},
	  SP_STRIDE(1),
	  SP_PAD,
	  {"dilation", A_SPATIAL, true, 1},
	  {"groups", A_INT, true, 1}}},
	{"maxpool2d", OP_MAXPOOL2D, 4, {SP_X, {"kernel", A_SPATIAL, false, 0}, SP_STRIDE(-1), SP_PAD}},
	{"avgpool2d",
	 OP_AVGPOOL2D,
	 5,
	 {SP_X,
	  {"kernel", A_SPATIAL, false, 0},
	  SP_STRIDE(-1),
	  SP_PAD,
	  {"count_include_pad", A_INT, true, 1}}},
	{"global_avgpool", OP_AVGPOOL2D, 1, {SP_X}},
	{"flatten", OP_RESHAPE, 1, {SP_X}},
	{"reshape", OP_RESHAPE, 2, {SP_X, {"d1", A_INT, false, 0}}},
	{"concat", OP_CONCAT, 1, {{"a", A_TENSOR, false, 0}}},
};

/* Does the last parameter repeat: concat(a, ...), reshape(x, d1, ...)? */
static bool variadic(const Callee *c)
{
	return !strcmp(c->name, "concat") || !strcmp(c->name, "reshape");
}

static const Callee inits[] = {
	{"zeros", INIT_ZEROS, 0, {{0}}},
	{"ones", INIT_ONES, 0, {{0}}},
	{"constant", INIT_CONSTANT, 1, {{"v", A_LIT, false, 0}}},
	{"normal", INIT_NORMAL, 2, {{"mean", A_LIT, false, 0}, {"std", A_LIT, false, 0}}},
	{"uniform", INIT_UNIFORM, 2, {{"lo", A_LIT, false, 0}, {"hi", A_LIT, false, 0}}},
	{"xavier", INIT_XAVIER, 0, {{0}}},
	{"he", INIT_HE, 0, {{0}}},
};

static const Callee optims[] = {
	{"sgd",
	 OPT_SGD,
	 3,
	 {{"lr", A_LIT, false, 0}, {"momentum", A_LIT, true, 0}, {"weight_decay", A_LIT, true, 0}}},
	{"adam",
	 OPT_ADAM,
	 5,
	 {{"lr", A_LIT, false, 0},
	  {"beta1", A_LIT, true, 0.9},
	  {"beta2", A_LIT, true, 0.999},
	  {"eps", A_LIT, true, 1e-8},
	  {"weight_decay", A_LIT, true, 0}}},
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

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

static Token *peek(Parser *p)
{
	return &p->tok[p->pos];
}

static Token *peek_at(Parser *p, int k)
{
	int i = p->pos + k;
	return &p->tok[i < p->n_tok ? i : p->n_tok - 1];
}

static Token *next(Parser *p)
{
	Token *t = &p->tok[p->pos];
	if (t->kind != TOK_EOF)
		p->pos++;
	return t;
}

static bool is_punct(const Token *t, char c)
{
	return t->kind == TOK_PUNCT && t->s[0] == c;
}

static bool is_word(const Token *t, const char *w)
{
	return t->kind == TOK_IDENT && (size_t)t->len == strlen(w)
	       && !memcmp(t->s, w, (size_t)t->len);
}

static bool is_eol(const Token *t)
{
	return t->kind == TOK_NEWLINE || t->kind == TOK_EOF;
}

static const char *tok_name(const Token *t)
{
	return str_ndup(t->s, (size_t)t->len);
}

/* A token quoted for a message. */
static const char *tok_str(const Token *t)
{
	if (t->kind == TOK_NEWLINE)
		return "end of line";
	if (t->kind == TOK_EOF)
		return "end of file";
	if (t->len > 40)
		return str_fmt("'%.32s...'", t->s);
	return str_fmt("'%.*s'", t->len, t->s);
}

static void expect_punct(Parser *p, char c, const char *after)
{
	Token *t = peek(p);
	if (!is_punct(t, c))
		error_at(t->loc, "expected '%c' %s, got %s", c, after, tok_str(t));
	next(p);
}

static bool in_list(const Token *t, const char *const *list, int n)
{
	for (int i = 0; i < n; i++)
		if (is_word(t, list[i]))
			return true;
	return false;
}

static const Callee *find_callee(const Token *t, const Callee *list, int n)
{
	for (int i = 0; i < n; i++)
		if (is_word(t, list[i].name))
			return &list[i];
	return NULL;
}

/* ---- symbols */

static unsigned hash_name(const char *s, int len)
{
	unsigned h = 2166136261u;
	for (int i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* The slot of name 's' (len bytes): its entry, or the empty slot for it. */
static Sym *slot(Parser *p, const char *s, int len)
{
	unsigned mask = (unsigned)p->cap_sym - 1;
	for (unsigned i = hash_name(s, len) & mask;; i = (i + 1) & mask) {
		Sym *e = &p->sym[i];
		if (!e->name || ((int)strlen(e->name) == len && !memcmp(e->name, s, (size_t)len)))
			return e;
	}
}

static Sym *lookup(Parser *p, const Token *t)
{
	if (!p->cap_sym)
		return NULL;
	Sym *e = slot(p, t->s, t->len);
	return e->name ? e : NULL;
}

/* The entry of token 't', made (id -1, at 't') if it is new. */
static Sym *intern(Parser *p, const Token *t)
{
	if (2 * (p->n_sym + 1) > p->cap_sym) {
		Sym *old = p->sym;
		int old_cap = p->cap_sym;
		p->cap_sym = old_cap ? 2 * old_cap : 64;
		p->sym = alloc(sizeof(Sym) * (size_t)p->cap_sym);
		for (int i = 0; i < old_cap; i++)
			if (old[i].name)
				*slot(p, old[i].name, (int)strlen(old[i].name)) = old[i];
	}
	Sym *e = slot(p, t->s, t->len);
	if (!e->name) {
		*e = (Sym){tok_name(t), -1, t->loc};
		p->n_sym++;
	}
	return e;
}

/* Prepass: the first definition of every name and the first `model`. */
static void prepass(Parser *p)
{
	bool start = true;
	for (int i = 0; i + 1 < p->n_tok; i++) {
		Token *t = &p->tok[i], *u = &p->tok[i + 1];
		if (t->kind == TOK_NEWLINE) {
			start = true;
			continue;
		}
		if (!start)
			continue;
		start = false;
		if (t->kind != TOK_IDENT)
			continue;
		if (is_word(t, "model") && !p->model_loc.line)
			p->model_loc = t->loc;
		if ((is_word(t, "input") || is_word(t, "param") || is_word(t, "const"))
		    && u->kind == TOK_IDENT)
			intern(p, u);
		else if (is_punct(u, '=') && !in_list(t, stmt_words, COUNT(stmt_words)))
			intern(p, t);
	}
}

/* A name for a new definition: not a keyword of the language or a
 * function.  Any other identifier is fine, C keywords and names that start
 * with '_' included: the emitter mangles what would clash in C
 * (compiler/emit/cfmt.lua, cname).  */
static void check_new_name(const Token *t)
{
	if (in_list(t, stmt_words, COUNT(stmt_words)))
		error_at(t->loc, "'%.*s' is a keyword and cannot be a name", t->len, t->s);
	if (find_callee(t, funcs, COUNT(funcs)))
		error_at(t->loc, "'%.*s' is a function and cannot be a name", t->len, t->s);
}

/* Enter name 't' for node 'id'; the second definition of a name is an error. */
static void define(Parser *p, const Token *t, int id)
{
	Sym *e = intern(p, t);
	if (e->id >= 0)
		error_at(t->loc, "'%.*s' is already defined at line %d", t->len, t->s, e->loc.line);
	e->id = id;
	e->loc = t->loc;
}

/* The node of name 't', used as a value. */
static int resolve(Parser *p, const Token *t)
{
	Sym *e = lookup(p, t);
	if (!e || e->id < 0) {
		if (find_callee(t, funcs, COUNT(funcs)))
			error_at(t->loc, "'%.*s' is a function: call it as '%.*s(...)'", t->len,
				 t->s, t->len, t->s);
		if (in_list(t, stmt_words, COUNT(stmt_words)))
			error_at(t->loc, "'%.*s' is a keyword, not a value", t->len, t->s);
		if (!e)
			error_at(t->loc, "unknown name '%.*s'", t->len, t->s);
		if (e->loc.line == p->stmt_loc.line)
			error_at(t->loc, "'%.*s' is used in its own definition", t->len, t->s);
		error_at(t->loc, "'%.*s' is used before its definition at line %d", t->len, t->s,
			 e->loc.line);
	}
	return e->id;
}

/* As resolve(), for a value that must be a float. */
static int resolve_float(Parser *p, const Token *t)
{
	int id = resolve(p, t);
	if (dt_is_int(p->g->node[id].dtype))
		error_at(t->loc, "'%.*s' is an int (a class label) and cannot be used as a float",
			 t->len, t->s);
	return id;
}

/* ---- numbers */

/* A float literal must fit the build's dtype: in an f32 build a number
 * that rounds to infinity as a float (above FLT_MAX) is an error at it.  */
static void check_real(Parser *p, const Token *t)
{
	if (!p->opt->f64 && fabs(t->num) >= 0x1.ffffffp127)
		error_at(t->loc,
			 "number '%.*s' is out of range for f32 (at most 3.4028235e38; "
			 "--dtype f64 takes it)",
			 t->len > 40 ? 32 : t->len, t->s);
}

/* signed_number = ['-' | '+'] NUMBER.  Its text (with the sign) in *text. */
static double parse_signed(Parser *p, const char *what, const char **text, bool real)
{
	Token *t = peek(p);
	double sign = 1;
	const char *s = "";
	if (is_punct(t, '-') || is_punct(t, '+')) {
		sign = is_punct(t, '-') ? -1 : 1;
		s = is_punct(t, '-') ? "-" : "";
		next(p);
	}
	Token *n = peek(p);
	if (n->kind != TOK_NUM)
		error_at(n->loc, "expected a number for %s, got %s", what, tok_str(n));
	if (real)
		check_real(p, n);
	next(p);
	if (text)
		*text = str_fmt("%s%.*s", s, n->len, n->s);
	return sign * n->num;
}

/* An integer literal >= 1 for 'what' (a dimension, the batch size). */
static int64_t parse_count(Parser *p, const char *what, int64_t max)
{
	Token *t = peek(p);
	const char *text;
	double v = parse_signed(p, what, &text, false);
	if (v != floor(v))
		error_at(t->loc, "%s must be an integer, got %s", what, text);
	if (v < 1)
		error_at(t->loc, "%s must be at least 1, got %s", what, text);
	if (v > (double)max)
		error_at(t->loc, "size overflow: %s is too large: %s > %lld", what, text,
			 (long long)max);
	return (int64_t)v;
}

/* ---- expressions */

static int parse_expr(Parser *p);

/* The first token after the matching ')' of the '(' at p->pos - 1 (or the
 * end of the line): to count a call's arguments for a message.  */
static int count_args(Parser *p, int from)
{
	int n = 1, depth = 0;
	for (int i = from; i < p->n_tok && !is_eol(&p->tok[i]); i++) {
		Token *t = &p->tok[i];
		if (is_punct(t, '(') || is_punct(t, '['))
			depth++;
		else if (is_punct(t, ')') || is_punct(t, ']')) {
			if (depth-- == 0)
				break;
		} else if (is_punct(t, ',') && depth == 0)
			n++;
	}
	return n;
}

static const char *signature(const Callee *c)
{
	Buf b = {0};
	buf_printf(&b, "(");
	for (int i = 0; i < c->n_param; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", c->param[i].name);
	buf_printf(&b, "%s)", variadic(c) ? ", ..." : "");
	return b.s;
}

static NORETURN void arg_count_error(const Callee *c, const Token *at, int got)
{
	int req = 0;
	while (req < c->n_param && !c->param[req].has_def)
		req++;
	if (c->n_param == 0)
		error_at(at->loc, "'%s' takes no arguments, got %d", c->name, got);
	if (variadic(c))
		error_at(at->loc, "'%s' takes at least %d argument%s %s, got %d", c->name, req,
			 req == 1 ? "" : "s", signature(c), got);
	if (req == c->n_param)
		error_at(at->loc, "'%s' takes %d argument%s %s, got %d", c->name, req,
			 req == 1 ? "" : "s", signature(c), got);
	error_at(at->loc, "'%s' takes %d to %d arguments %s, got %d", c->name, req, c->n_param,
		 signature(c), got);
}

/* label = NAME of an int input (cross_entropy's second argument). */
static int parse_label(Parser *p, const Callee *c)
{
	Token *t = peek(p), *u = peek_at(p, 1);
	if (t->kind == TOK_IDENT && (is_punct(u, ',') || is_punct(u, ')') || is_eol(u))) {
		Sym *e = lookup(p, t);
		if (e && e->id >= 0 && dt_is_int(p->g->node[e->id].dtype)) {
			next(p);
			return e->id;
		}
		resolve(p, t);
		error_at(t->loc, "the label of '%s' must be an int input, got float '%.*s'",
			 c->name, t->len, t->s);
	}
	parse_expr(p);
	error_at(t->loc, "the label of '%s' must be an int input, got a float expression", c->name);
}

/* An integer literal in [min, max] for 'what'. */
static int64_t parse_int(Parser *p, const char *what, int64_t min, int64_t max)
{
	Token *t = peek(p);
	const char *text;
	double v = parse_signed(p, what, &text, false);
	if (v != floor(v))
		error_at(t->loc, "%s must be an integer, got %s", what, text);
	if (v < (double)min)
		error_at(t->loc, "%s must be at least %lld, got %s", what, (long long)min, text);
	if (v > (double)max)
		error_at(t->loc, "size overflow: %s is too large: %s > %lld", what, text,
			 (long long)max);
	return (int64_t)v;
}

/* A window size: kernels, strides, paddings and dilations stay far below
 * int overflow in the index arithmetic of the kernels. */
enum { MAX_WINDOW = 1 << 16 };

/* spatial = INTEGER | '(' INTEGER {',' INTEGER} ')': an integer for both
 * axes or (h, w); a padding also (top, left, bottom, right).  Fills v[0..1]
 * (h, w) or, for A_PAD, v[0..3] (top, left, bottom, right).  */
static void parse_spatial(Parser *p, const Param *pa, const char *what, double *v)
{
	Token *t = peek(p);
	bool pad = pa->kind == A_PAD;
	int64_t x[4], min = pad ? 0 : 1;
	int n = 0;
	if (is_punct(t, '(')) {
		next(p);
		for (;;) {
			if (n == 4)
				error_at(peek(p)->loc, "%s takes at most %d values", what, pad ? 4 : 2);
			x[n++] = parse_int(p, what, min, MAX_WINDOW);
			if (is_punct(peek(p), ',')) {
				next(p);
				continue;
			}
			if (!is_punct(peek(p), ')'))
				error_at(peek(p)->loc, "expected ',' or ')' in %s, got %s", what,
					 tok_str(peek(p)));
			next(p);
			break;
		}
	} else {
		x[n++] = parse_int(p, what, min, MAX_WINDOW);
	}
	if (n == 3 || (!pad && n > 2))
		error_at(t->loc, "%s takes an integer or (h, w)%s, got %d values", what,
			 pad ? " or (top, left, bottom, right)" : "", n);
	if (!pad) {
		v[0] = (double)x[0];
		v[1] = (double)x[n - 1];
	} else if (n == 4) {
		for (int k = 0; k < 4; k++)
			v[k] = (double)x[k];
	} else {  /* top = bottom = h, left = right = w */
		v[0] = v[2] = (double)x[0];
		v[1] = v[3] = (double)x[n - 1];
	}
}

/* args = '(' [arg {',' arg}] ')'   arg = [NAME '='] value
 * Fills arg[i] for every parameter of 'c', applying defaults; a callee
 * that is variadic() takes more values of its last parameter (up to 'max' args in
 * all).  Returns the number of arguments.  'at' is the callee's name.  */
static int parse_args(Parser *p, const Callee *c, const Token *at, Arg *arg, int max)
{
	bool set[MAX_VARARGS] = {0}, named = false;
	int n_pos = 0, n_given = 0;
	if (is_punct(peek(p), '(')) {
		Token *open = next(p);
		int from = p->pos;
		while (!is_punct(peek(p), ')')) {
			if (is_eol(peek(p)))
				error_at(open->loc, "unbalanced '(': missing ')'");
			if (n_given) {
				if (!is_punct(peek(p), ','))
					error_at(peek(p)->loc,
						 "expected ',' or ')' in the arguments of '%s', "
						 "got %s",
						 c->name, tok_str(peek(p)));
				next(p);
			}
			Token *t = peek(p);
			int i;
			if (t->kind == TOK_IDENT && is_punct(peek_at(p, 1), '=')) {
				for (i = 0; i < c->n_param && !is_word(t, c->param[i].name); i++)
					;
				if (i == c->n_param)
					error_at(t->loc, "unknown named argument '%.*s' of '%s' %s",
						 t->len, t->s, c->name, signature(c));
				if (set[i])
					error_at(t->loc, "argument '%s' of '%s' is given twice",
						 c->param[i].name, c->name);
				p->pos += 2;
				named = true;
			} else {
				if (named)
					error_at(t->loc,
						 "positional argument after a named one in '%s'",
						 c->name);
				if (n_pos == (variadic(c) ? max : c->n_param)) {
					if (variadic(c))
						error_at(t->loc, "'%s' takes at most %d arguments%s", c->name,
							 max, c->code == OP_RESHAPE ?
							 str_fmt(" (a shape of at most %d dimensions)",
								 MAX_RANK) : "");
					arg_count_error(c, t, count_args(p, from));
				}
				i = n_pos++;
			}
			const Param *pa = &c->param[i < c->n_param ? i : c->n_param - 1];
			const char *what = str_fmt("'%s' of '%s'", pa->name, c->name);
			arg[i].loc = peek(p)->loc;
			if (pa->kind == A_LIT)
				arg[i].v[0] = parse_signed(p, what, NULL, true);
			else if (pa->kind == A_INT)
				arg[i].v[0] = (double)parse_int(p, what, 0, MAX_BYTES);
			else if (pa->kind == A_SPATIAL || pa->kind == A_PAD)
				parse_spatial(p, pa, what, arg[i].v);
			else if (pa->kind == A_LABEL)
				arg[i].node = parse_label(p, c);
			else
				arg[i].node = parse_expr(p);
			set[i] = true;
			n_given++;
		}
		next(p);
	}
	for (int i = 0; i < c->n_param; i++) {
		if (set[i])
			continue;
		if (!c->param[i].has_def) {
			if (named)
				error_at(at->loc, "missing argument '%s' of '%s' %s",
					 c->param[i].name, c->name, signature(c));
			arg_count_error(c, at, n_given);
		}
		arg[i].loc = at->loc;
		for (int k = 0; k < 4; k++)
			arg[i].v[k] = c->param[i].kind == A_PAD ? 0 : c->param[i].def;
	}
	return n_given > c->n_param ? n_given : c->n_param;
}

/* The window of a conv2d or pool call from its arguments (after x). */
static Window window_of(const Callee *c, const Arg *arg)
{
	Window w = {.dh = 1, .dw = 1, .groups = 1};
	int k = 1;
	if (c->code != OP_CONV2D) {  /* the pools: kernel, stride = kernel by default */
		w.kh = (int)arg[1].v[0], w.kw = (int)arg[1].v[1];
		k = 2;
		if (arg[k].v[0] < 0)
			w.sh = w.kh, w.sw = w.kw;
		else
			w.sh = (int)arg[k].v[0], w.sw = (int)arg[k].v[1];
	} else {
		k = 2;
		w.sh = (int)arg[k].v[0], w.sw = (int)arg[k].v[1];
		w.dh = (int)arg[4].v[0], w.dw = (int)arg[4].v[1];
		w.groups = (int)arg[5].v[0];
	}
	const double *pd = arg[k + 1].v;
	w.pt = (int)pd[0], w.pl = (int)pd[1], w.pb = (int)pd[2], w.pr = (int)pd[3];
	return w;
}

/* call = FUNC args */
static int parse_call(Parser *p)
{
	Token *t = next(p);
	const Callee *c = find_callee(t, funcs, COUNT(funcs));
	if (!c) {
		Sym *e = lookup(p, t);
		if (e && e->id >= 0)
			error_at(t->loc, "'%.*s' is not a function", t->len, t->s);
		if (find_callee(t, inits, COUNT(inits)))
			error_at(t->loc, "'%.*s' is an initializer, not a function", t->len, t->s);
		if (find_callee(t, optims, COUNT(optims)))
			error_at(t->loc, "'%.*s' is an optimizer, not a function", t->len, t->s);
		error_at(t->loc, "unknown function '%.*s'", t->len, t->s);
	}
	Arg arg[MAX_VARARGS] = {0};
	int n = parse_args(p, c, t, arg, c->code == OP_RESHAPE ? 1 + MAX_RANK : MAX_VARARGS);
	Op op = (Op)c->code;
	Graph *g = p->g;
	switch (op) {
	case OP_LEAKY_RELU:
		return new_unary(g, op, arg[0].node, arg[1].v[0], t->loc);
	case OP_CLIP:
		return new_clip(g, arg[0].node, arg[1].v[0], arg[2].v[0], t->loc);
	case OP_CONV2D:
		if (arg[5].v[0] < 1)
			error_at(arg[5].loc, "'groups' of 'conv2d' must be at least 1, got %g", arg[5].v[0]);
		return new_conv2d(g, arg[0].node, arg[1].node, window_of(c, arg), t->loc);
	case OP_MAXPOOL2D:
		return new_pool(g, op, arg[0].node, window_of(c, arg), t->loc);
	case OP_AVGPOOL2D: {
		if (c->n_param == 1)
			return new_global_avgpool(g, arg[0].node, t->loc);
		if (arg[4].v[0] > 1)
			error_at(arg[4].loc, "'count_include_pad' of 'avgpool2d' must be 0 or 1, got %g",
				 arg[4].v[0]);
		Window w = window_of(c, arg);
		w.count_pad = arg[4].v[0] == 1;
		return new_pool(g, op, arg[0].node, w, t->loc);
	}
	case OP_RESHAPE: {
		Shape s = {.rank = n - 1};
		for (int k = 1; k < n; k++) {
			if (arg[k].v[0] < 1)
				error_at(arg[k].loc, "a dimension of 'reshape' must be at least 1, got %g",
					 arg[k].v[0]);
			s.dim[k - 1] = (int64_t)arg[k].v[0];
		}
		if (c->n_param == 1)  /* flatten */
			s = shape_of(1, shape_numel(g->node[arg[0].node].shape));
		return new_reshape(g, arg[0].node, s, t->loc);
	}
	case OP_CONCAT: {
		int in[MAX_VARARGS];
		for (int k = 0; k < n; k++)
			in[k] = arg[k].node;
		return new_concat(g, n, in, t->loc);
	}
	default: {
		int in[MAX_ARGS];
		for (int k = 0; k < c->n_param; k++)
			in[k] = arg[k].node;
		return new_node(g, op, c->n_param, in, t->loc);
	}
	}
}

/* primary = NUMBER | NAME | call | '(' expr ')' */
static int parse_primary(Parser *p)
{
	Token *t = peek(p);
	if (t->kind == TOK_NUM) {
		check_real(p, t);
		next(p);
		return new_const(p->g, t->num, t->loc);
	}
	if (t->kind == TOK_IDENT) {
		if (is_punct(peek_at(p, 1), '('))
			return parse_call(p);
		next(p);
		return resolve_float(p, t);
	}
	if (is_punct(t, '(')) {
		next(p);
		int id = parse_expr(p);
		Token *u = peek(p);
		if (is_eol(u))
			error_at(t->loc, "unbalanced '(': missing ')'");
		if (!is_punct(u, ')'))
			error_at(u->loc, "expected ')', got %s", tok_str(u));
		next(p);
		return id;
	}
	if (is_punct(t, ')'))
		error_at(t->loc, "unbalanced ')': expected an expression");
	error_at(t->loc, "expected an expression, got %s", tok_str(t));
}

/* unary = {'-'} primary   (a loop: no depth for long chains) */
static int parse_unary(Parser *p)
{
	Token *first = peek(p);
	int n = 0;
	while (is_punct(peek(p), '-'))
		next(p), n++;
	int id = parse_primary(p);
	if (n % 2)
		id = new_unary(p->g, OP_NEG, id, 0, first->loc);
	return id;
}

/* term = unary {('*' | '/' | '@') unary} */
static int parse_term(Parser *p)
{
	int a = parse_unary(p);
	for (;;) {
		Token *t = peek(p);
		Op op = is_punct(t, '*')   ? OP_MUL
			: is_punct(t, '/') ? OP_DIV
			: is_punct(t, '@') ? OP_MATMUL
					   : N_OP;
		if (op == N_OP)
			return a;
		next(p);
		int b = parse_unary(p);
		a = new_binary(p->g, op, a, b, t->loc);
	}
}

/* expr = term {('+' | '-') term} */
static int parse_expr(Parser *p)
{
	if (++p->depth > MAX_DEPTH)
		error_at(peek(p)->loc, "expression nested too deeply (more than %d levels)",
			 MAX_DEPTH);
	int a = parse_term(p);
	for (;;) {
		Token *t = peek(p);
		Op op = is_punct(t, '+') ? OP_ADD : is_punct(t, '-') ? OP_SUB : N_OP;
		if (op == N_OP)
			break;
		next(p);
		int b = parse_term(p);
		a = new_binary(p->g, op, a, b, t->loc);
	}
	p->depth--;
	return a;
}

/* ---- statements */

/* The end of a statement: a NEWLINE. */
static void end_stmt(Parser *p)
{
	Token *t = peek(p);
	if (t->kind == TOK_NEWLINE) {
		next(p);
		return;
	}
	if (is_punct(t, ')') || is_punct(t, ']'))
		error_at(t->loc, "unbalanced '%c'", t->s[0]);
	error_at(t->loc, "expected end of line after the statement, got %s", tok_str(t));
}

static Token *expect_name(Parser *p, const char *what)
{
	Token *t = peek(p);
	if (t->kind != TOK_IDENT)
		error_at(t->loc, "expected %s, got %s", what, tok_str(t));
	return next(p);
}

/* Why 'name' cannot be a model name (the prefix of every generated
 * symbol and the name of the two files), or NULL.  */
const char *model_name_problem(const char *name)
{
	static const char *const std_headers[] = {
		"assert", "complex", "ctype",    "errno",    "fenv",   "float",
		"inttypes", "iso646", "limits", "locale",  "math",   "setjmp",
		"signal", "stdalign", "stdarg", "stdatomic", "stdbool", "stddef",
		"stdint", "stdio",    "stdlib", "stdnoreturn", "string", "tgmath",
		"threads", "time",    "uchar",  "wchar",    "wctype",
	};
	if (name[0] == '_')
		return "starts with '_' (such names are reserved at file scope in C)";
	if (!strncasecmp(name, "gradc", 5))
		return "starts with 'gradc' (the prefix of gradc's runtime: gradc_rt.h, "
		       "gradc_*, GRADC_*)";
	for (int i = 0; i < COUNT(std_headers); i++)
		if (!strcmp(name, std_headers[i]))
			return str_fmt("is a C library header: %s.h would hide <%s.h>", name, name);
	return NULL;
}

/* model_stmt = 'model' NAME */
static void parse_model(Parser *p)
{
	next(p);
	Token *t = expect_name(p, "a model name after 'model'");
	const char *why = model_name_problem(tok_name(t));
	if (why)
		error_at(t->loc, "model name '%.*s' %s", t->len, t->s, why);
	p->g = new_graph(tok_name(t), p->src);
	p->g->f64 = p->opt->f64;  /* before any node: their float dtype */
	end_stmt(p);
}

/* batch_stmt = 'batch' INTEGER */
static void parse_batch(Parser *p)
{
	Token *kw = next(p);
	if (p->batch_loc.line)
		error_at(kw->loc, "more than one 'batch' statement (the first is at line %d)",
			 p->batch_loc.line);
	p->batch_loc = kw->loc;
	p->batch = (int)parse_count(p, "batch size", INT32_MAX);
	end_stmt(p);
}

/* dims = '[' INTEGER {',' INTEGER} ']' */
static Shape parse_dims(Parser *p)
{
	Token *open = peek(p);
	expect_punct(p, '[', "before the dimensions");
	Shape s = {0};
	for (;;) {
		if (s.rank == MAX_RANK)
			error_at(peek(p)->loc, "too many dimensions (at most %d)", MAX_RANK);
		Token *t = peek(p);
		if (t->kind == TOK_IDENT)
			error_at(t->loc, "a dimension must be a number, got %s", tok_str(t));
		/* a dimension above MAX_BYTES overflows any size; ir.c checks products */
		s.dim[s.rank++] = parse_count(p, "a dimension", MAX_BYTES);
		t = peek(p);
		if (is_punct(t, ']'))
			break;
		if (is_eol(t))
			error_at(open->loc, "unbalanced '[': missing ']'");
		if (!is_punct(t, ','))
			error_at(t->loc, "expected ',' or ']' in the dimensions, got %s",
				 tok_str(t));
		next(p);
	}
	next(p);
	return s;
}

/* input_stmt = 'input' NAME (dims | 'int') */
static void parse_input(Parser *p)
{
	next(p);
	Token *t = expect_name(p, "an input name after 'input'");
	check_new_name(t);
	Token *u = peek(p);
	int id;
	if (is_word(u, "int")) {
		next(p);
		id = new_leaf(p->g, OP_INPUT, tok_name(t), (Shape){0}, true, DT_I32, t->loc);
	} else if (is_punct(u, '[')) {
		Shape s = parse_dims(p);
		id = new_leaf(p->g, OP_INPUT, tok_name(t), s, true, float_dtype(p->g), t->loc);
	} else {
		error_at(u->loc, "expected '[' or 'int' after 'input %.*s', got %s", t->len, t->s,
			 tok_str(u));
	}
	define(p, t, id);
	end_stmt(p);
}

/* init = INIT [args] */
static void parse_init(Parser *p, Node *n)
{
	Token *t = expect_name(p, "an initializer after '~'");
	const Callee *c = find_callee(t, inits, COUNT(inits));
	if (!c)
		error_at(t->loc,
			 "unknown initializer '%.*s' (expected zeros, ones, constant, "
			 "normal, uniform, xavier or he)",
			 t->len, t->s);
	Arg arg[MAX_ARGS] = {0};
	parse_args(p, c, t, arg, MAX_ARGS);
	double val[2] = {arg[0].v[0], arg[1].v[0]};
	n->init = (Init)c->code;
	n->init_arg[0] = val[0];
	n->init_arg[1] = val[1];
	if ((n->init == INIT_XAVIER || n->init == INIT_HE) && n->shape.rank < 2)
		error_at(t->loc,
			 "'%s' needs a parameter of at least 2 dimensions [out, in, ...], "
			 "got %s",
			 c->name, shape_str(n->shape));
	if (n->init == INIT_NORMAL && val[1] < 0)
		error_at(t->loc, "'std' of 'normal' must not be negative, got %g", val[1]);
	if (n->init == INIT_UNIFORM && val[0] > val[1])
		error_at(t->loc, "'uniform' needs lo <= hi, got lo = %g, hi = %g", val[0], val[1]);
}

/* param_stmt = 'param' NAME dims '~' init ['frozen'] */
static void parse_param(Parser *p)
{
	next(p);
	Token *t = expect_name(p, "a parameter name after 'param'");
	check_new_name(t);
	if (!is_punct(peek(p), '['))
		error_at(peek(p)->loc, "expected '[' and the shape of '%.*s', got %s", t->len, t->s,
			 tok_str(peek(p)));
	Shape s = parse_dims(p);
	if (!is_punct(peek(p), '~'))
		error_at(peek(p)->loc,
			 "expected '~' and an initializer after the shape of '%.*s', "
			 "got %s",
			 t->len, t->s, tok_str(peek(p)));
	next(p);
	int id = new_leaf(p->g, OP_PARAM, tok_name(t), s, false, float_dtype(p->g), t->loc);
	parse_init(p, &p->g->node[id]);
	if (is_word(peek(p), "frozen")) {
		next(p);
		p->g->node[id].frozen = true;
	}
	define(p, t, id);
	end_stmt(p);
}

/* const_stmt = 'const' NAME '=' signed_number */
static void parse_const(Parser *p)
{
	next(p);
	Token *t = expect_name(p, "a constant name after 'const'");
	check_new_name(t);
	expect_punct(p, '=', str_fmt("after 'const %.*s'", t->len, t->s));
	double v = parse_signed(p, str_fmt("'const %.*s'", t->len, t->s), NULL, true);
	int id = new_const(p->g, v, t->loc);
	p->g->node[id].name = tok_name(t);
	define(p, t, id);
	end_stmt(p);
}

/* def_stmt = NAME '=' expr */
static void parse_def(Parser *p)
{
	Token *t = next(p);
	check_new_name(t);
	next(p); /* '=' */
	p->depth = 0;
	int id = parse_expr(p);
	Node *n = &p->g->node[id];
	if (!n->name)
		n->name = tok_name(t);
	define(p, t, id);
	end_stmt(p);
}

/* names = NAME {',' NAME}: resolved to float nodes; the names as written
 * in names[] (an alias names another name's node).  */
static int parse_names(Parser *p, const char *stmt, int *ids, const char **names, Loc *locs,
		       int max)
{
	int n = 0;
	for (;;) {
		Token *t = expect_name(p, str_fmt("a name in '%s'", stmt));
		if (!lookup(p, t) && !find_callee(t, funcs, COUNT(funcs)))
			error_at(t->loc, "unknown name '%.*s' in '%s'", t->len, t->s, stmt);
		int id = resolve_float(p, t);
		for (int i = 0; i < n; i++)
			if (!strcmp(names[i], tok_name(t)))
				error_at(t->loc, "'%.*s' is listed twice in '%s'", t->len, t->s,
					 stmt);
		if (n == max)
			error_at(t->loc, "too many names in '%s' (at most %d)", stmt, max);
		if (!strcmp(stmt, "track") && p->g->node[id].shape.rank != 0)
			error_at(t->loc, "tracked value '%.*s' must be a scalar, got %s", t->len,
				 t->s, shape_str(p->g->node[id].shape));
		if (!strcmp(stmt, "output") && !p->g->node[id].batched)
			error_at(t->loc,
				 "output '%.*s' does not depend on any input (an output is "
				 "computed per sample)",
				 t->len, t->s);
		if (!strcmp(stmt, "output") && p->g->node[id].op == OP_INPUT)
			error_at(t->loc,
				 "output '%.*s' is the input '%s' itself (an output must be "
				 "computed from the inputs)",
				 t->len, t->s, p->g->node[id].name);
		names[n] = tok_name(t);
		if (locs)
			locs[n] = t->loc;
		ids[n++] = id;
		if (!is_punct(peek(p), ','))
			return n;
		next(p);
	}
}

/* output_stmt = 'output' names;  track_stmt = 'track' names */
static void parse_list(Parser *p, bool track)
{
	Token *kw = next(p);
	Graph *g = p->g;
	int *ids = track ? g->track : g->out, *n = track ? &g->n_track : &g->n_out;
	if (*n)
		error_at(kw->loc, "more than one '%s' statement", track ? "track" : "output");
	*n = parse_names(p, track ? "track" : "output", ids, track ? g->track_name : g->out_name,
			 track ? NULL : g->out_loc, MAX_LIST);
	for (int i = 0; track && i < *n; i++)
		g->track_mean[i] = -1;
	end_stmt(p);
}

/* Does node 'id' depend on a trainable parameter? */
static bool depends_on_param(const Graph *g, int id)
{
	bool *dep = alloc((size_t)g->n_node);
	for (int i = 0; i <= id; i++) {
		const Node *n = &g->node[i];
		dep[i] = n->op == OP_PARAM && !n->frozen;
		for (int k = 0; k < n->n_in; k++)
			dep[i] = dep[i] || dep[n->in[k]];
	}
	return dep[id];
}

/* Check and store the optimizer 'c' with arguments 'v'. */
static void set_optim(Parser *p, const Callee *c, const double *v, Loc loc)
{
	Optim *o = &p->g->opt;
	*o = (Optim){.kind = (OptKind)c->code, .lr = v[0], .loc = loc};
	if (!(v[0] > 0))
		error_at(loc, "'lr' of '%s' must be positive, got %g", c->name, v[0]);
	if (o->kind == OPT_SGD) {
		o->momentum = v[1];
		o->weight_decay = v[2];
		o->beta1 = 0.9, o->beta2 = 0.999, o->eps = 1e-8;
		if (v[1] < 0)
			error_at(loc, "'momentum' of 'sgd' must not be negative, got %g", v[1]);
	} else {
		o->beta1 = v[1], o->beta2 = v[2], o->eps = v[3], o->weight_decay = v[4];
		for (int i = 1; i <= 2; i++)
			if (!(v[i] >= 0 && v[i] < 1))
				error_at(loc, "'%s' of 'adam' must be in [0, 1), got %g",
					 c->param[i].name, v[i]);
		if (!(v[3] > 0))
			error_at(loc, "'eps' of 'adam' must be positive, got %g", v[3]);
	}
	if (o->weight_decay < 0)
		error_at(loc, "'weight_decay' of '%s' must not be negative, got %g", c->name,
			 o->weight_decay);
}

/* minimize_stmt = 'minimize' NAME ['with' OPT [args]] */
static void parse_minimize(Parser *p)
{
	Token *kw = next(p);
	Graph *g = p->g;
	if (g->has_minimize)
		error_at(kw->loc, "more than one 'minimize' statement (the first is at line %d)",
			 g->min_loc.line);
	Token *t = expect_name(p, "the name of the objective after 'minimize'");
	if (!lookup(p, t) && !find_callee(t, funcs, COUNT(funcs)))
		error_at(t->loc, "unknown name '%.*s' in 'minimize'", t->len, t->s);
	int id = resolve_float(p, t);
	if (g->node[id].shape.rank != 0)
		error_at(t->loc, "objective '%.*s' must be a scalar, got %s", t->len, t->s,
			 shape_str(g->node[id].shape));
	if (!depends_on_param(g, id))
		error_at(t->loc, "objective '%.*s' does not depend on any trainable parameter",
			 t->len, t->s);
	g->objective = id;
	g->min_loc = kw->loc;
	g->has_minimize = true;
	if (is_word(peek(p), "with")) {
		next(p);
		Token *o = expect_name(p, "an optimizer after 'with'");
		const Callee *c = find_callee(o, optims, COUNT(optims));
		if (!c)
			error_at(o->loc, "unknown optimizer '%.*s' (expected sgd or adam)", o->len,
				 o->s);
		Arg arg[MAX_ARGS] = {0};
		parse_args(p, c, o, arg, MAX_ARGS);
		double v[MAX_ARGS];
		for (int k = 0; k < MAX_ARGS; k++)
			v[k] = arg[k].v[0];
		set_optim(p, c, v, o->loc);
	} else {
		double v[MAX_ARGS] = {0.01, 0, 0};
		set_optim(p, &optims[0], v, kw->loc);
	}
	end_stmt(p);
}

/* The source text of the statement starting at p->pos, for Node.text. */
static const char *stmt_text(Parser *p)
{
	int i = p->pos;
	while (!is_eol(&p->tok[i + 1]))
		i++;
	const Token *a = peek(p), *b = &p->tok[i];
	return str_ndup(a->s, (size_t)(b->s + b->len - a->s));
}

/* statement = model_stmt | batch_stmt | input_stmt | ... | def_stmt */
static void parse_stmt(Parser *p)
{
	Token *t = peek(p), *u = peek_at(p, 1);
	Graph *g = p->g;
	int first = g->n_node;
	p->stmt_loc = t->loc;
	if (t->kind != TOK_IDENT)
		error_at(t->loc, "expected a statement, got %s", tok_str(t));
	if (in_list(t, stmt_words, COUNT(stmt_words)) && is_punct(u, '='))
		error_at(t->loc, "'%.*s' is a keyword and cannot be a name", t->len, t->s);
	if (is_word(t, "model"))
		error_at(t->loc, "more than one 'model' statement (the first is at line %d)",
			 p->model_loc.line);
	if (is_word(t, "batch"))
		parse_batch(p);
	else if (is_word(t, "input"))
		parse_input(p);
	else if (is_word(t, "param"))
		parse_param(p);
	else if (is_word(t, "const"))
		parse_const(p);
	else if (is_word(t, "output"))
		parse_list(p, false);
	else if (is_word(t, "track"))
		parse_list(p, true);
	else if (is_word(t, "minimize"))
		parse_minimize(p);
	else if (is_punct(u, '='))
		parse_def(p);
	else if (u->kind == TOK_IDENT || is_eol(u))
		error_at(t->loc, "unknown statement '%.*s'", t->len, t->s);
	else
		error_at(u->loc, "expected '=' after '%.*s', got %s", t->len, t->s, tok_str(u));
	for (int i = first; i < g->n_node; i++)
		if (!g->node[i].text)
			g->node[i].text = p->stmt_text;
}

static void skip_newlines(Parser *p)
{
	while (peek(p)->kind == TOK_NEWLINE)
		next(p);
}

/* Inputs and outputs name size macros in upper case (NAME_X_SIZE): two
 * names that differ only in case would define one macro twice.  */
static void check_macro_names(const Graph *g)
{
	const char *names[2 * MAX_LIST + 64];
	Loc locs[2 * MAX_LIST + 64];
	int n = 0;
	for (int i = 0; i < g->n_node && n < 64; i++)
		if (g->node[i].op == OP_INPUT) {
			locs[n] = g->node[i].loc;
			names[n++] = g->node[i].name;
		}
	for (int k = 0; k < g->n_out; k++) {
		locs[n] = g->node[g->out[k]].loc;
		names[n++] = g->out_name[k];
	}
	for (int a = 0; a < n; a++)
		for (int b = 0; b < a; b++)
			if (strcmp(names[a], names[b]) && !strcasecmp(names[a], names[b]))
				error_at(locs[a], "'%s' and '%s' differ only in case: their size "
				                  "macros (upper case) would collide", names[b], names[a]);
}

/* Parse 'src' into its forward graph (see the file comment); 'opt' may be
 * NULL.  User errors go to error_at (err_src is set to 'src').  */
Graph *parse(const Source *src, const Options *opt)
{
	static const Options none;
	Parser p = {.src = src, .opt = opt ? opt : &none};
	err_src = src;
	p.tok = tokenize(src, &p.n_tok);
	prepass(&p);
	skip_newlines(&p);
	Token *t = peek(&p);
	if (t->kind == TOK_EOF)
		error_at((Loc){1, 1}, "empty model file (expected 'model NAME')");
	if (!is_word(t, "model")) {
		if (p.model_loc.line)
			error_at(p.model_loc, "'model' must be the first statement");
		error_at(t->loc, "missing 'model NAME' statement (it must come first)");
	}
	p.stmt_text = stmt_text(&p);
	parse_model(&p);
	for (skip_newlines(&p); peek(&p)->kind != TOK_EOF; skip_newlines(&p)) {
		p.stmt_text = stmt_text(&p);
		parse_stmt(&p);
	}
	Graph *g = p.g;
	check_macro_names(g);
	if (p.opt->name) {
		if (!valid_name(p.opt->name))
			error_plain("--name '%s' is not a C identifier of at most %d characters",
				    p.opt->name, MAX_NAME);
		if (model_name_problem(p.opt->name))
			error_plain("--name '%s' %s", p.opt->name, model_name_problem(p.opt->name));
		g->model = p.opt->name;
	}
	g->batch = p.opt->batch > 0 ? p.opt->batch : p.batch > 0 ? p.batch : 1;
	g->f64 = p.opt->f64;
	if (p.opt->target) {
		const char *known;
		if (!(g->target = find_target(p.opt->target, &known)))
			error_plain("unknown target '%s' (known: %s)", p.opt->target, known);
	}
	g->mode = MODE_FWD;
	return g;
}
