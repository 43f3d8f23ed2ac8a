/* import.c: ONNX in (SPEC 4): an ONNX model becomes .nn text and its
 * initializers a safetensors file, for `gradc import` and, in memory, for
 * every command given a .onnx file.
 *
 *   1. onnx.c decodes the file (protobuf.c reads the wire format).
 *   2. Every ONNX value gets a Val: an initializer's values are known at
 *      import time; each graph input becomes an `input` (its first
 *      dimension, symbolic or a number, the implicit batch).
 *   3. fold_batchnorms (import_ops.c) folds BatchNormalization into the
 *      Conv or Gemm before it; then each node, in the file's order (ONNX
 *      requires a topological one), is translated by its rule
 *      (import_ops.c, import_shape.c): one statement `NAME = EXPR   # node 'N' (OP)` where
 *      possible, nothing where the node computes on known values only
 *      (the shape arithmetic around a Reshape: Shape, Gather, Unsqueeze,
 *      Concat, Cast, ... are folded), an alias where it computes nothing
 *      (Identity, Dropout, Cast to float).
 *   4. A known tensor used as an operand becomes a literal (one element) or
 *      a `param`, declared at its first use, `frozen` unless --train names
 *      it, its values into the safetensors list.
 *   5. The graph outputs become `output`; --loss adds the label input, the
 *      loss and `minimize`.  The text is parsed and lowered before it is
 *      returned: what import writes is a valid model.
 *
 * Names (SPEC 4): each character outside [A-Za-z0-9_] becomes '_', a
 * leading digit gets a '_' in front, a name longer than MAX_NAME - 4 is
 * cut, and a name that then clashes with another or with a word of the
 * language gets _2, _3, ...  --loss takes `y` / `t` and `loss` first.
 * Errors are "FILE.onnx: error: ..." (node errors name the node and its
 * operator); nothing is written before everything succeeded.
 * Limits: one graph (no subgraphs, no functions), the default operator
 * domain, opsets 11 to 18 (SPEC names 11-17; 18 changes none of the
 * operators read here), files up to MAX_READ.
 */
#include "onnx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "gradc_safetensors.h"

/* words the model language keeps for itself (parse.c's statements,
 * functions, initializers and optimizers) */
static const char *const words[] = {
	"model", "batch", "input", "param", "const", "output", "track", "minimize", "with",
	"frozen", "int", "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "abs", "leaky_relu",
	"softmax", "log_softmax", "sum", "mean", "sumsq", "transpose", "cross_entropy", "mse",
	"conv2d", "maxpool2d", "avgpool2d", "global_avgpool", "flatten", "reshape", "clip",
	"concat", "zeros", "ones", "constant", "normal", "uniform", "xavier", "he", "sgd", "adam",
};

#define GROW(arr, n, cap)                                                                  \
	do {                                                                               \
		if ((n) == (cap)) {                                                        \
			int64_t nc_ = (cap) ? 2 * (cap) : 16;                              \
			(arr) = alloc_grow((arr), sizeof *(arr) * (size_t)(cap),           \
					   sizeof *(arr) * (size_t)nc_);                   \
			(cap) = nc_;                                                       \
		}                                                                          \
	} while (0)

/* ---- names */

static bool name_taken(const Imp *I, const char *s)
{
	for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
		if (!strcmp(s, words[k]))
			return true;
	for (int64_t k = 0; k < I->n_taken; k++)
		if (!strcmp(s, I->taken[k]))
			return true;
	return false;
}

/* A new .nn name made from ONNX name 'onnx' (SPEC 4's rules). */
static const char *new_name(Imp *I, const char *onnx)
{
	size_t n = strlen(onnx), max = MAX_NAME - 4;
	char *s = alloc(n + 2);
	size_t k = 0;
	if (!n || (onnx[0] >= '0' && onnx[0] <= '9'))
		s[k++] = '_';
	for (size_t i = 0; i < n && k < max; i++) {
		char c = onnx[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		s[k++] = ok ? c : '_';
	}
	s[k] = 0;
	const char *name = s;
	for (int i = 2; name_taken(I, name); i++)
		name = str_fmt("%s_%d", s, i);
	GROW(I->taken, I->n_taken, I->cap_taken);
	I->taken[I->n_taken++] = name;
	return name;
}

/* ---- values */

Val *find_val(Imp *I, const char *onnx)
{
	for (int64_t k = I->n_v; k-- > 0;)
		if (!strcmp(I->v[k]->onnx, onnx))
			return I->v[k];
	return NULL;
}

Val *new_val(Imp *I, const char *onnx)
{
	Val *v = alloc(sizeof *v);
	v->onnx = v->hint = onnx;
	GROW(I->v, I->n_v, I->cap_v);
	I->v[I->n_v++] = v;
	return v;
}

NORETURN void node_fail(Imp *I, const char *fmt, ...)
{
	char m[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	const ONode *n = I->node;
	const char *name = *n->name ? n->name : n->n_out ? n->out[0] : "";
	error_at((Loc){0}, "node '%s' (%s): %s", name, n->op, m);
}

Val *in_val(Imp *I, int k)
{
	if (k >= I->node->n_in || !*I->node->in[k])
		return NULL;
	Val *v = find_val(I, I->node->in[k]);
	if (!v)
		node_fail(I, "input '%s' is not defined before the node (the graph is not in "
			     "topological order, or the value is missing)",
			  I->node->in[k]);
	if (v->c && !v->c->f && !v->c->i)
		node_fail(I, "'%s' is a tensor of %s (gradc imports FLOAT and DOUBLE tensors, and "
			     "INT32 and INT64 shapes)",
			  v->onnx, onnx_dtype_name(v->c->dtype));
	return v;
}

Val *need_in(Imp *I, int k)
{
	Val *v = in_val(I, k);
	if (!v)
		node_fail(I, "input %d is missing", k + 1);
	return v;
}

Val *out_val(Imp *I, int k)
{
	if (k >= I->node->n_out || !*I->node->out[k])
		node_fail(I, "output %d is missing", k + 1);
	if (find_val(I, I->node->out[k]))
		node_fail(I, "output '%s' is defined twice", I->node->out[k]);
	return new_val(I, I->node->out[k]);
}

OTensor *new_tensor(int dtype, int rank, const int64_t *dim)
{
	OTensor *t = alloc(sizeof *t);
	t->dtype = dtype;
	t->rank = rank;
	t->n = 1;
	for (int k = 0; k < rank; k++)
		t->n *= (t->dim[k] = dim[k]);
	if (dtype == ONNX_FLOAT || dtype == ONNX_DOUBLE)
		t->f = alloc(sizeof(double) * (size_t)(t->n ? t->n : 1));
	else
		t->i = alloc(sizeof(int64_t) * (size_t)(t->n ? t->n : 1));
	return t;
}

void set_known(Val *out, OTensor *t)
{
	out->c = t;
	out->f64 = t->dtype == ONNX_DOUBLE;
}

Shape val_shape(const Val *v)
{
	Shape s = {.rank = v->rank};
	for (int k = 0; k < v->rank; k++)
		s.dim[k] = v->dim[k];
	return s;
}

const char *fnum_text(double x)
{
	for (int p = 1; p < 9; p++) {
		char *t = str_fmt("%.*g", p, x);
		if ((float)strtod(t, NULL) == (float)x)
			return t;
	}
	return str_fmt("%.9g", x);
}

const char *num_text(double x)
{
	char *s = str_fmt("%.17g", x);
	/* the shortest text that reads back to the same double */
	for (int p = 1; p < 17; p++) {
		char *t = str_fmt("%.*g", p, x);
		if (strtod(t, NULL) == x)
			return t;
	}
	return s;
}

static const char *shape_list(Shape s)
{
	Buf b = {0};
	for (int k = 0; k < s.rank; k++)
		buf_printf(&b, "%s%lld", k ? ", " : "", (long long)s.dim[k]);
	return b.s ? b.s : "";
}

/* ---- the text */

/* The comment naming the current node. */
static const char *node_note(const Imp *I)
{
	const ONode *n = I->node;
	return str_fmt("node '%s' (%s)", *n->name ? n->name : n->out[0], n->op);
}

/* Is the initializer 'origin' trainable (--train)? */
static bool trainable(const Imp *I, const char *origin, const char *nn)
{
	const char *t = I->o->train;
	if (!t || !strcmp(t, "none") || !origin)
		return false;
	if (!strcmp(t, "all"))
		return true;
	for (const char *p = t; *p;) {
		size_t n = strcspn(p, ",");
		if ((strlen(origin) == n && !strncmp(p, origin, n))
		    || (strlen(nn) == n && !strncmp(p, nn, n)))
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

/* Declare known 'v' as a param of shape 's' under a new name. */
static const char *declare_param(Imp *I, Val *v, Shape s)
{
	const char *nm = new_name(I, v->hint);
	bool train = trainable(I, v->origin, nm);
	for (int k = 0; k < s.rank; k++)
		if (s.dim[k] < 1)
			node_fail(I, "initializer '%s' has an empty dimension", v->onnx);
	if (s.rank > MAX_RANK)
		node_fail(I, "'%s' has %d dimensions; gradc's tensors have at most %d", v->onnx,
			  s.rank, MAX_RANK);
	if (!v->c->f)
		node_fail(I, "'%s' is a tensor of %s, used as a float tensor (non-float tensors "
			     "are not supported)",
			  v->onnx, onnx_dtype_name(v->c->dtype));
	/* the initializer when trained from scratch: he for weights, zeros for
	 * biases (a conv bias is [C, 1, 1]) */
	bool weight = s.rank >= 2 && shape_numel(s) > s.dim[0];
	buf_printf(&I->decl, "param %s[%s] ~ %s%s   # %s '%s'\n", nm, shape_list(s),
		   weight ? "he" : "zeros", train ? "" : " frozen",
		   v->origin && !strcmp(v->origin, v->onnx) ? "initializer" : "from",
		   v->origin ? v->origin : v->onnx);
	GROW(I->st, I->n_st, I->cap_st);
	gradc_st_tensor *t = &I->st[I->n_st++];
	t->name = nm;
	t->rank = s.rank;
	for (int k = 0; k < s.rank; k++)
		t->shape[k] = s.dim[k];
	size_t n = (size_t)v->c->n;
	t->dtype = v->f64 ? GRADC_ST_F64 : GRADC_ST_F32;
	t->nbytes = n * (v->f64 ? 8 : 4);
	t->data = alloc(t->nbytes ? t->nbytes : 1);
	for (size_t k = 0; k < n; k++)
		if (v->f64)
			((double *)t->data)[k] = v->c->f[k];
		else
			((float *)t->data)[k] = (float)v->c->f[k];
	I->any_f64 |= v->f64;
	return nm;
}

const char *param_shaped(Imp *I, Val *v, Shape s)
{
	if (shape_numel(s) != v->c->n)
		node_fail(I, "'%s' has %lld elements; expected %lld", v->onnx, (long long)v->c->n,
			  (long long)shape_numel(s));
	if (v->nn && shape_eq(v->nns, s))
		return v->nn;
	const char *nm = declare_param(I, v, s);
	if (!v->nn) {
		v->nn = nm;
		v->nns = s;
	}
	return nm;
}

const char *operand(Imp *I, Val *v, bool lit, int rank)
{
	if (v->pad)
		node_fail(I, "reads '%s', the output of Pad '%s', which gradc folds only into a "
			     "following Conv or AveragePool",
			  v->onnx, v->pad->name);
	if (!v->c) {
		if (!v->nn)
			node_fail(I, "'%s' has no value", v->onnx);
		return v->nn;
	}
	if (lit && v->c->n == 1) {
		if (!v->c->f && v->c->i[0] == BATCH_DIM)
			node_fail(I, "computes with the batch size (not supported)");
		double x = v->c->f ? v->c->f[0] : (double)v->c->i[0];
		if (x != x || x - x != 0)
			node_fail(I, "a constant %g (not finite)", x);
		const char *t = v->c->dtype == ONNX_FLOAT ? fnum_text(x) : num_text(x);
		return x < 0 ? str_fmt("(%s)", t) : t;
	}
	Shape s = {.rank = v->c->rank};
	int off = 0;
	while (rank >= 0 && v->c->rank - off > rank && v->c->dim[off] == 1)
		off++;
	s.rank = v->c->rank - off;
	if (s.rank > MAX_RANK)
		node_fail(I, "'%s' has %d dimensions; gradc's tensors have at most %d", v->onnx,
			  v->c->rank, MAX_RANK);
	for (int k = 0; k < s.rank; k++)
		s.dim[k] = v->c->dim[off + k];
	return param_shaped(I, v, s);
}

const char *value_of(Imp *I, Val *v)
{
	const char *nm = operand(I, v, false, -1);
	if (v->c || !v->batched || shape_eq(v->nns, val_shape(v)))
		return nm;
	/* the .nn value has another shape than ONNX's ([C] for [C, 1, 1]): a
	 * reshape, once */
	Val *r = new_val(I, str_fmt("%s.reshaped", v->onnx));
	r->hint = v->hint;
	r->batched = true;
	r->rank = v->rank;
	memcpy(r->dim, v->dim, sizeof v->dim);
	define(I, r, str_fmt("reshape(%s, %s)", nm, shape_list(val_shape(v))), val_shape(v));
	v->nn = r->nn;
	v->nns = r->nns;
	return v->nn;
}

void define(Imp *I, Val *out, const char *expr, Shape s)
{
	out->nn = new_name(I, out->hint);
	out->nns = s;
	out->batched = true;
	buf_printf(&I->body, "%s = %s   # %s\n", out->nn, expr, node_note(I));
}

void alias(Imp *I, Val *out, Val *in, const char *why)
{
	if (in->c) {
		set_known(out, in->c);
		out->origin = in->origin;
		return;
	}
	if (in->pad)
		node_fail(I, "reads the output of Pad '%s', which gradc folds only into a following "
			     "Conv or AveragePool",
			  in->pad->name);
	out->batched = in->batched;
	out->rank = in->rank;
	memcpy(out->dim, in->dim, sizeof in->dim);
	out->nn = new_name(I, out->hint);
	out->nns = in->nns;
	buf_printf(&I->body, "%s = %s   # %s: %s\n", out->nn, in->nn, node_note(I), why);
}

/* ---- the graph */

/* An error about a graph input: in the words of the node reading it. */
static NORETURN PRINTF(2, 3) void input_fail(Imp *I, const char *fmt, ...)
{
	char m[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	if (I->node)
		node_fail(I, "%s", m);
	error_at((Loc){0}, "%s", m);
}

/* Graph inputs: one `input` each (initializers listed as inputs, as old
 * exporters do, are skipped). */
static void read_inputs(Imp *I, Buf *head)
{
	const OModel *m = I->m;
	int n = 0;
	for (int64_t k = 0; k < m->n_input; k++) {
		const OValue *in = &m->input[k];
		if (find_val(I, in->name))
			continue;
		const char *what = str_fmt("input '%s'", in->name);
		/* SPEC 4: the node reading it names the error, if one does */
		for (int64_t j = 0; j < m->n_node && !I->node; j++)
			for (int64_t i = 0; i < m->node[j].n_in; i++)
				if (!strcmp(m->node[j].in[i], in->name))
					I->node = &m->node[j];
		if (in->dtype != ONNX_FLOAT && in->dtype != ONNX_DOUBLE)
			input_fail(I, "%s has element type %s; gradc imports float inputs", what,
				   onnx_dtype_name(in->dtype));
		if (in->rank < 1)
			input_fail(I, "%s has %s; gradc needs a shape with the batch first", what,
				   in->rank < 0 ? "no shape" : "no dimensions");
		if (in->rank - 1 > MAX_RANK)
			input_fail(I, "%s has %d dimensions; at most %d besides the batch", what,
				   in->rank, MAX_RANK);
		int64_t numel = 1;
		for (int d = 1; d < in->rank; d++)
			if (in->dim[d] > MAX_BYTES || (numel *= in->dim[d] > 0 ? in->dim[d] : 1) > MAX_BYTES)
				input_fail(I, "%s is too large (%lld elements per sample or more)", what,
					   (long long)numel);
		for (int d = 1; d < in->rank; d++)
			if (in->dim[d] < 1)
				input_fail(I, "%s: dimension %d%s is dynamic; only the first (the batch) "
					      "may be",
					   what, d, in->param[d] ? str_fmt(" ('%s')", in->param[d]) : "");
		if (in->dim[0] > 0 && I->batch && in->dim[0] != I->batch)
			error_at((Loc){0}, "%s has batch %lld, another input %lld", what,
				 (long long)in->dim[0], (long long)I->batch);
		if (in->dim[0] > 0)
			I->batch = in->dim[0];
		I->node = NULL;
		Val *v = new_val(I, in->name);
		v->batched = true;
		v->rank = in->rank - 1;
		for (int d = 1; d < in->rank; d++)
			v->dim[d - 1] = in->dim[d];
		v->nns = val_shape(v);
		v->f64 = in->dtype == ONNX_DOUBLE;
		v->nn = new_name(I, in->name);
		buf_printf(head, "input %s[%s]   # ONNX input '%s' [%s%s%s]\n", v->nn,
			   shape_list(v->nns), in->name,
			   in->dim[0] > 0 ? str_fmt("%lld", (long long)in->dim[0])
					  : in->param[0] ? in->param[0] : "?",
			   v->rank ? ", " : "", shape_list(v->nns));
		n++;
	}
	if (!n)
		error_at((Loc){0}, "the graph has no inputs besides its initializers");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every name read by a node or listed as a graph output, sorted (uses_of). */
static void count_uses(Imp *I)
{
	const OModel *m = I->m;
	int64_t n = m->n_output;
	for (int64_t k = 0; k < m->n_node; k++)
		n += m->node[k].n_in;
	I->use_names = alloc(sizeof(char *) * (size_t)(n + 1));
	for (int64_t k = 0; k < m->n_output; k++)
		I->use_names[I->n_use_names++] = m->output[k].name;
	for (int64_t k = 0; k < m->n_node; k++)
		for (int64_t i = 0; i < m->node[k].n_in; i++)
			I->use_names[I->n_use_names++] = m->node[k].in[i];
	qsort(I->use_names, (size_t)I->n_use_names, sizeof(char *), cmp_str);
}

int64_t uses_of(const Imp *I, const char *onnx)
{
	int64_t lo = 0, hi = I->n_use_names;
	while (lo < hi) { /* the first name >= onnx */
		int64_t mid = (lo + hi) / 2;
		if (strcmp(I->use_names[mid], onnx) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	int64_t k = lo;
	while (k < I->n_use_names && !strcmp(I->use_names[k], onnx))
		k++;
	return k - lo;
}

/* Is 'w' one of the space-separated words of 'list'? */
static bool in_words(const char *list, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = list; n && *p;) {
		size_t k = strcspn(p, " ");
		if (k == n && !strncmp(p, w, n))
			return true;
		p += k + (p[k] == ' ');
	}
	return false;
}

/* Translate every node (step 3). */
static void translate(Imp *I)
{
	const OModel *m = I->m;
	for (int64_t k = 0; k < m->n_node; k++) {
		const ONode *n = &m->node[k];
		I->node = n;
		if (*n->domain && strcmp(n->domain, "ai.onnx"))
			node_fail(I, "operator domain '%s' is not supported (only the default one)",
				  n->domain);
		const OpRule *r = find_rule(n->op);
		if (!r)
			node_fail(I, "operator '%s' is not supported (gradc imports %s)", n->op,
				  supported_ops());
		for (int64_t a = 0; a < n->n_attr; a++)
			if (!in_words(r->attrs, n->attr[a].name))
				node_fail(I, "attribute '%s' is not supported (%s takes %s)",
					  n->attr[a].name, n->op, *r->attrs ? r->attrs : "none");
		r->fn(I, n);
		for (int64_t o = 0; o < n->n_out; o++)
			if (*n->out[o] && !find_val(I, n->out[o]) && uses_of(I, n->out[o]))
				node_fail(I, "output %lld ('%s') is not supported", (long long)o + 1,
					  n->out[o]);
	}
}

/* Outputs, and with --loss the label, the loss and minimize (step 5). */
static void finish(Imp *I, Buf *ins, Buf *tail, const char *label, const char *loss)
{
	const OModel *m = I->m;
	if (m->n_output < 1)
		error_at((Loc){0}, "the graph has no outputs");
	Buf outs = {0};
	Val *first = NULL;
	for (int64_t k = 0; k < m->n_output; k++) {
		Val *v = find_val(I, m->output[k].name);
		if (!v)
			error_at((Loc){0}, "output '%s' is computed by no node", m->output[k].name);
		if (!v->batched || v->c)
			error_at((Loc){0}, "output '%s' does not depend on the inputs (gradc's "
					   "outputs are per sample)",
				 m->output[k].name);
		const char *nm = value_of(I, v);
		buf_printf(&outs, "%s%s", k ? ", " : "", nm);
		first = first ? first : v;
	}
	buf_printf(tail, "\noutput %s\n", outs.s);
	if (!I->o->loss)
		return;
	bool ce = !strcmp(I->o->loss, "cross_entropy");
	if (ce && first->nns.rank != 1)
		error_at((Loc){0}, "--loss cross_entropy needs an output of one dimension (the "
				   "classes); '%s' has [%s]",
			 first->onnx, shape_list(first->nns));
	buf_printf(tail, "%s = %s(%s, %s)   # --loss %s\n", loss, ce ? "cross_entropy" : "mse",
		   first->nn, label, I->o->loss);
	buf_printf(tail, "minimize %s with %s\n", loss,
		   I->o->optimizer ? I->o->optimizer : "sgd(lr = 0.01)");
	/* the label's declaration goes with the inputs */
	if (ce)
		buf_printf(ins, "input %s int   # --loss cross_entropy: the class index\n", label);
	else
		buf_printf(ins, "input %s[%s]   # --loss mse: the target\n", label,
			   shape_list(first->nns));
}

/* The model's name: --name, else the file's, sanitized. */
static const char *model_name(const Imp *I)
{
	if (I->o->name)
		return I->o->name;
	const char *b = strrchr(I->path, '/');
	b = b ? b + 1 : I->path;
	size_t n = strlen(b);
	if (n > 5 && !strcmp(b + n - 5, ".onnx"))
		n -= 5;
	Imp tmp = {0};
	const char *nm = new_name(&tmp, str_ndup(b, n));
	if (!model_name_problem(nm) && valid_name(nm))
		return nm;
	nm = str_fmt("onnx%s%s", nm[0] == '_' ? "" : "_", nm);
	return valid_name(nm) && !model_name_problem(nm) ? nm : "model";
}

Imported import_onnx(const char *path, const void *buf, size_t n, const ImportOptions *o)
{
	Source *file = alloc(sizeof *file);
	file->path = path;
	file->text = "";
	err_src = file;
	Imp *I = alloc(sizeof *I);
	I->path = path;
	I->o = o;
	I->m = onnx_decode(buf, n);
	const OModel *m = I->m;
	if (m->opset < 11 || m->opset > 18)
		error_at((Loc){0}, "opset %lld of the default domain; gradc imports opsets 11 to 18",
			 (long long)m->opset);
	bool ce = o->loss && !strcmp(o->loss, "cross_entropy");
	const char *label = NULL, *loss = NULL;
	if (o->loss) {
		label = new_name(I, ce ? "y" : "t");
		loss = new_name(I, "loss");
	}
	for (int64_t k = 0; k < m->n_init; k++) {
		OTensor *t = &m->init[k];
		if (find_val(I, t->name))
			error_at((Loc){0}, "initializer '%s' is defined twice", t->name);
		Val *v = new_val(I, t->name);
		set_known(v, t);
		v->origin = t->name;
	}
	Buf head = {0}, tail = {0};
	const char *mname = model_name(I);
	buf_printf(&head, "# imported from %s by gradc import (ONNX IR %lld, opset %lld, made by %s%s%s)\n",
		   path, (long long)m->ir_version, (long long)m->opset,
		   *m->producer ? m->producer : "an unknown producer", *m->producer_version ? " " : "",
		   m->producer_version);
	if (o->params_path)
		buf_printf(&head, "# parameters: %s (compile and run take it with --params, train "
				  "with --init)\n",
			   o->params_path);
	buf_printf(&head, "model %s\n", mname);
	Buf ins = {0};
	read_inputs(I, &ins);
	if (I->batch > 1)
		buf_printf(&head, "batch %lld   # the ONNX inputs' first dimension\n",
			   (long long)I->batch);
	count_uses(I);
	fold_batchnorms(I);
	translate(I);
	finish(I, &ins, &tail, label, loss);
	if (o->train && strcmp(o->train, "all") && strcmp(o->train, "none"))
		for (const char *p = o->train; *p;) {
			size_t len = strcspn(p, ",");
			bool found = false;
			for (int64_t k = 0; k < I->n_st && !found; k++)
				found = strlen(I->st[k].name) == len && !strncmp(I->st[k].name, p, len);
			for (int64_t k = 0; k < m->n_init && !found; k++)
				found = strlen(m->init[k].name) == len && !strncmp(m->init[k].name, p, len);
			if (!found)
				error_at((Loc){0}, "--train names '%.*s', which is no initializer of the model",
					 (int)len, p);
			p += len + (p[len] == ',');
		}
	Source *src = alloc(sizeof *src);
	src->path = path;
	src->text = str_fmt("%s%s\n%s\n%s%s", head.s, ins.s, I->decl.s ? I->decl.s : "",
			    I->body.s ? I->body.s : "", tail.s);
	src->len = strlen(src->text);
	/* check it: a valid model, or an error about the generated text */
	Options po = {.f64 = I->any_f64};
	(void)front_end(src, &po);
	err_src = file;
	Imported r = {.src = src};
	unsigned char *st = NULL;
	size_t st_len = 0;
	const char *msg = gradc_st_encode(I->st, (int)I->n_st, &st, &st_len);
	if (msg)
		die("encoding the initializers: %s", msg);
	r.params = str_ndup((const char *)st, st_len);
	r.params_len = st_len;
	free(st);
	return r;
}

/* ---- every command's hook */

static const char *mem_path;   /* the .onnx load_model imported */
static const void *mem_params; /* its initializers (safetensors) */
static size_t mem_len;

bool is_onnx(const char *path)
{
	size_t n = strlen(path);
	return n >= 5 && !strcmp(path + n - 5, ".onnx");
}

static char *read_or_fail(const char *path, size_t *n)
{
	char *s = read_file(path, n);
	if (!s && errno == EFBIG)
		error_plain("cannot read '%s': larger than %d MiB", path, (int)(MAX_READ >> 20));
	if (!s)
		error_plain("cannot read '%s': %s", path, strerror(errno));
	return s;
}

Source *load_model(const char *path)
{
	size_t n;
	char *text = read_or_fail(path, &n);
	if (!is_onnx(path)) {
		Source *s = alloc(sizeof *s);
		s->path = path;
		s->text = text;
		s->len = n;
		return s;
	}
	Imported im = import_onnx(path, text, n, &(ImportOptions){0});
	mem_path = path;
	mem_params = im.params;
	mem_len = im.params_len;
	return im.src;
}

const char *read_tensors(const char *path, struct gradc_st_file *f)
{
	if (mem_path && !strcmp(path, mem_path))
		return gradc_st_decode(mem_params, mem_len, f);
	return gradc_st_read(path, f);
}

/* ---- gradc import */

static const char import_usage[] =
	"usage: gradc import MODEL.onnx [-o OUT.nn] [--name NAME] [--train all|none|P,...]\n"
	"                    [--loss cross_entropy|mse] [--optimizer 'sgd(lr = 0.01)']\n"
	"writes OUT.nn (default: MODEL.nn) and, beside it, OUT.safetensors (the initializers)\n";

static NORETURN void import_usage_exit(const char *fmt, const char *arg)
{
	usage_exit(import_usage, fmt, arg);
}

/* 'path' with its extension (if any) replaced by 'ext'. */
static const char *with_ext(const char *path, const char *ext)
{
	const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
	size_t n = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
	return str_fmt("%.*s%s", (int)n, path, ext);
}

/* What `gradc import` reads and writes. */
typedef struct ImportJob {
	const char *model, *out, *stp; /* MODEL.onnx, OUT.nn, its parameters */
	const ImportOptions *o;
} ImportJob;

/* Import j->model and write OUT.nn and its parameters (run_command's
 * body, 'arg' an ImportJob).  */
static int write_import(void *arg)
{
	const ImportJob *j = arg;
	size_t n;
	char *bytes = read_or_fail(j->model, &n);
	Imported im = import_onnx(j->model, bytes, n, j->o);
	/* the parameters first: a model is never left without its values */
	if (write_file_atomic(j->stp, im.params, im.params_len) != 0)
		error_plain("cannot write '%s': %s", j->stp, strerror(errno));
	if (write_file_atomic(j->out, im.src->text, im.src->len) != 0) {
		int e = errno;
		remove(j->stp);
		error_plain("cannot write '%s': %s", j->out, strerror(e));
	}
	return 0;
}

int import_main(int argc, char **argv)
{
	ImportOptions o = {0};
	const char *model = NULL, *out = NULL;
	for (int i = 2; i < argc; i++) {
		const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = !strcmp(s, "-o") || !strcmp(s, "--name") || !strcmp(s, "--train")
			     || !strcmp(s, "--loss") || !strcmp(s, "--optimizer");
		if (takes && !v)
			import_usage_exit("option '%s' needs a value", s);
		if (!strcmp(s, "-o"))
			out = argv[++i];
		else if (!strcmp(s, "--name"))
			o.name = argv[++i];
		else if (!strcmp(s, "--train"))
			o.train = argv[++i];
		else if (!strcmp(s, "--loss"))
			o.loss = argv[++i];
		else if (!strcmp(s, "--optimizer"))
			o.optimizer = argv[++i];
		else if (s[0] == '-' && s[1])
			import_usage_exit("unknown option '%s'", s);
		else if (!model)
			model = s;
		else
			import_usage_exit("unexpected argument '%s'", s);
	}
	if (!model)
		import_usage_exit("%s", "missing MODEL.onnx");
	if (o.loss && strcmp(o.loss, "cross_entropy") && strcmp(o.loss, "mse"))
		import_usage_exit("bad --loss '%s' (cross_entropy or mse)", o.loss);
	if (o.loss && (!o.train || !strcmp(o.train, "none")))
		import_usage_exit("%s", "--loss needs --train (all, or the initializers to train): "
					"without it every parameter is frozen");
	if (o.optimizer && !o.loss)
		import_usage_exit("%s", "--optimizer needs --loss (nothing to minimize without it)");
	if (o.name && (!valid_name(o.name) || model_name_problem(o.name)))
		import_usage_exit("--name '%s' cannot be a model name", o.name);
	if (o.train && !*o.train)
		import_usage_exit("%s", "--train needs all, none or a list of initializers");
	if (!out)
		out = with_ext(model, ".nn");
	const char *stp = with_ext(out, ".safetensors");
	o.params_path = stp;
	if (!strcmp(stp, out) || !strcmp(stp, model) || !strcmp(out, model))
		import_usage_exit("-o '%s' would overwrite an input or its own parameters", out);
	ImportJob j = {model, out, stp, &o};
	return run_command(write_import, &j);
}
