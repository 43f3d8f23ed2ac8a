/* parse.c: the model language (SPEC 1) -> the forward graph (MODE_FWD):
 * the statements, names and numbers; expressions, calls and their arguments
 * are expr.c's, the shared state parser.h's.
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
#include "parser.h"

#include <math.h>
#include <strings.h>

/* ---- tables */

static const char *const stmt_words[] = {
	"model", "batch",    "input", "param",  "const", "output",
	"track", "minimize", "with",  "frozen", "int",
};

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

Sym *lookup(Parser *p, const Token *t)
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
	if (find_callee(t, funcs, n_funcs))
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
int resolve(Parser *p, const Token *t)
{
	Sym *e = lookup(p, t);
	if (!e || e->id < 0) {
		if (find_callee(t, funcs, n_funcs))
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
int resolve_float(Parser *p, const Token *t)
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
void check_real(Parser *p, const Token *t)
{
	if (!p->opt->f64 && fabs(t->num) >= 0x1.ffffffp127)
		error_at(t->loc,
			 "number '%.*s' is out of range for f32 (at most 3.4028235e38; "
			 "--dtype f64 takes it)",
			 t->len > 40 ? 32 : t->len, t->s);
}

/* signed_number = ['-' | '+'] NUMBER.  Its text (with the sign) in *text. */
double parse_signed(Parser *p, const char *what, const char **text, bool real)
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
	const Callee *c = find_callee(t, inits, n_inits);
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
		if (!lookup(p, t) && !find_callee(t, funcs, n_funcs))
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
	if (!lookup(p, t) && !find_callee(t, funcs, n_funcs))
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
		const Callee *c = find_callee(o, optims, n_optims);
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
