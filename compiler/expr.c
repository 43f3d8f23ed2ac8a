/* expr.c: expressions, calls and arguments of the model language (SPEC 1).
 *
 * The callee tables (functions, initializers, optimizers) with their
 * signatures, the one argument parser they share (positional and named
 * arguments, defaults, number literals, the spatial forms `3`, `(h, w)` and
 * `(top, left, bottom, right)`, variadic concat and reshape), and the
 * expression grammar, loosest first:
 *   expr = term {('+' | '-') term}
 *   term = unary {('*' | '/' | '@') unary}
 *   unary = {'-'} primary
 *   primary = NUMBER | NAME | FUNC args | '(' expr ')'
 * Each construct builds its nodes with the constructors of ir.c and
 * spatial.c, which infer shapes and report mismatches.  parse.c holds the
 * statements; parser.h the shared state.
 */
#include "parser.h"

#include <math.h>

/* ---- the callees */

/* SPEC 1's spatial signatures: stride, padding, dilation default to 1, 0,
 * 1; a pool's stride to its kernel (-1 here). */
#define SP_X {"x", A_TENSOR, false, 0}
#define SP_STRIDE(d) {"stride", A_SPATIAL, true, d}
#define SP_PAD {"padding", A_PAD, true, 0}

const Callee funcs[] = {
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

const int n_funcs = COUNT(funcs);

const Callee inits[] = {
	{"zeros", INIT_ZEROS, 0, {{0}}},
	{"ones", INIT_ONES, 0, {{0}}},
	{"constant", INIT_CONSTANT, 1, {{"v", A_LIT, false, 0}}},
	{"normal", INIT_NORMAL, 2, {{"mean", A_LIT, false, 0}, {"std", A_LIT, false, 0}}},
	{"uniform", INIT_UNIFORM, 2, {{"lo", A_LIT, false, 0}, {"hi", A_LIT, false, 0}}},
	{"xavier", INIT_XAVIER, 0, {{0}}},
	{"he", INIT_HE, 0, {{0}}},
};

const Callee optims[] = {
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

const int n_inits = COUNT(inits), n_optims = COUNT(optims);

/* ---- expressions */

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
int parse_args(Parser *p, const Callee *c, const Token *at, Arg *arg, int max)
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
	const Callee *c = find_callee(t, funcs, n_funcs);
	if (!c) {
		Sym *e = lookup(p, t);
		if (e && e->id >= 0)
			error_at(t->loc, "'%.*s' is not a function", t->len, t->s);
		if (find_callee(t, inits, n_inits))
			error_at(t->loc, "'%.*s' is an initializer, not a function", t->len, t->s);
		if (find_callee(t, optims, n_optims))
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
int parse_expr(Parser *p)
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

