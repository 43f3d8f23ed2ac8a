/* ir.c: the graph, its shapes, and the node constructors.
 *
 * Every node is made by one of the new_* constructors, which
 *   1. check the operand types (an int label is only a cross_entropy label),
 *   2. infer the per-sample shape (NumPy broadcasting for + - * /, the three
 *      forms of @, reductions to a scalar) and the batch flag (a node is
 *      batched if any input is),
 *   3. fold constants, so that neither the parser's `lambda / 2` nor the
 *      backward pass's seeds leave a multiplication by one or an addition of
 *      zero in the graph: a constructor may return an existing node.
 * User errors (shape mismatch, int used as float) go to error_at() at the
 * caller's location; everything else is a compiler bug.
 */
#include "gradc.h"

#include <math.h>
#include <string.h>

Graph *new_graph(const char *model, const Source *src)
{
	Graph *g = alloc(sizeof *g);
	g->model = g->model_name = model;
	g->src = src;
	g->batch = 1;
	g->target = find_target("portable", NULL);
	g->objective = g->loss = -1;
	g->opt = (Optim){.kind = OPT_SGD, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
	return g;
}

Graph *copy_graph(const Graph *g)
{
	Graph *c = alloc(sizeof *c);
	*c = *g;
	c->cap = g->n_node + 16;
	c->node = alloc(sizeof(Node) * (size_t)c->cap);
	if (g->n_node)  /* a model without a node has no array (memcpy of NULL) */
		memcpy(c->node, g->node, sizeof(Node) * (size_t)g->n_node);
	return c;
}

/* The inputs of new node 'id', their count checked against ops.def. */
static void set_inputs(Graph *g, int id, int n_in, const int *in)
{
	Node *n = &g->node[id];
	if ((op_nin[n->op] >= 0 ? n_in != op_nin[n->op] : n_in < 1) || n_in > MAX_IN)
		die("%s with %d inputs (ops.def: %d)", op_name[n->op], n_in, op_nin[n->op]);
	n->n_in = n_in;
	for (int i = 0; i < n_in; i++) {
		if (in[i] < 0 || in[i] >= id)
			die("%s reads node %d", op_name[n->op], in[i]);
		n->in[i] = in[i];
	}
}

static int push(Graph *g, Op op, Shape s, bool batched, Loc loc)
{
	if (g->n_node == g->cap) {
		int cap = g->cap ? 2 * g->cap : 64;
		g->node = alloc_grow(g->node, sizeof(Node) * (size_t)g->n_node,
		                     sizeof(Node) * (size_t)cap);
		g->cap = cap;
	}
	/* every shape is checked here; each factor fits, so the product can't wrap */
	int64_t numel = 1;
	for (int i = 0; i < s.rank; i++) {
		if (numel > MAX_BYTES / 8 / s.dim[i])
			error_at(loc, "size overflow: the result %s has more than %lld bytes",
			         shape_str(s), (long long)MAX_BYTES);
		numel *= s.dim[i];
	}
	Node *n = &g->node[g->n_node];
	memset(n, 0, sizeof *n);
	n->op = op;
	n->shape = s;
	n->batched = batched;
	n->dtype = float_dtype(g);
	n->loc = loc;
	n->fwd = n->fuse = n->alias = n->grad = n->side = -1;
	return g->n_node++;
}

/* ---- shapes */

Shape shape_of(int rank, ...)
{
	Shape s = {.rank = rank};
	va_list ap;
	va_start(ap, rank);
	for (int i = 0; i < rank; i++)
		s.dim[i] = va_arg(ap, int64_t);
	va_end(ap);
	return s;
}

bool shape_eq(Shape a, Shape b)
{
	if (a.rank != b.rank)
		return false;
	for (int i = 0; i < a.rank; i++)
		if (a.dim[i] != b.dim[i])
			return false;
	return true;
}

int64_t shape_numel(Shape s)
{
	int64_t n = 1;
	for (int i = 0; i < s.rank; i++)
		n *= s.dim[i];
	return n;
}

int64_t node_numel(const Graph *g, const Node *n)
{
	return shape_numel(n->shape) * (n->batched ? g->batch : 1);
}

int64_t node_bytes(const Graph *g, const Node *n)
{
	return node_numel(g, n) * dt_bytes(n->dtype);
}

const char *shape_str(Shape s)
{
	Buf b = {0};
	buf_printf(&b, "[");
	for (int i = 0; i < s.rank; i++)
		buf_printf(&b, "%s%lld", i ? ", " : "", (long long)s.dim[i]);
	buf_printf(&b, "]");
	return b.s;
}

bool broadcast_shape(Shape a, Shape b, Shape *out)
{
	Shape r = a.rank >= b.rank ? a : b;
	for (int i = 1; i <= a.rank && i <= b.rank; i++) {
		int64_t x = a.dim[a.rank - i], y = b.dim[b.rank - i];
		if (x != y && x != 1 && y != 1)
			return false;
		r.dim[r.rank - i] = x == 1 ? y : x;
	}
	*out = r;
	return true;
}

int full_dims(const Graph *g, const Node *n, int64_t dim[MAX_RANK + 1])
{
	int r = 0;
	if (n->batched)
		dim[r++] = g->batch;
	for (int i = 0; i < n->shape.rank; i++)
		dim[r++] = n->shape.dim[i];
	return r;
}

int bcast_strides(const Graph *g, const Node *out, const Node *in,
                  int64_t stride[MAX_RANK + 1])
{
	int r = 0;
	if (out->batched)
		stride[r++] = in->batched ? shape_numel(in->shape) : 0;
	int off = out->shape.rank - in->shape.rank;
	for (int i = 0; i < out->shape.rank; i++) {
		int j = i - off;
		int64_t s = 0;
		if (j >= 0 && in->shape.dim[j] != 1) {
			s = 1;
			for (int k = j + 1; k < in->shape.rank; k++)
				s *= in->shape.dim[k];
		}
		stride[r++] = s;
	}
	(void)g;
	return r;
}

const char *node_label(const Graph *g, int id)
{
	const Node *n = &g->node[id];
	if (n->name)
		return n->name;
	if (n->op == OP_CONST || n->op == OP_FILL)
		return str_fmt("%g", n->attr[0]);
	return str_fmt("%s#%d", op_name[n->op], id);
}

int find_name(const Graph *g, const char *name)
{
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].name && !strcmp(g->node[i].name, name))
			return i;
	return -1;
}

/* ---- literals */

/* Is node 'id' a literal (every element one value)?  Its value in *v. */
static bool literal(const Graph *g, int id, double *v)
{
	const Node *n = &g->node[id];
	if (n->op != OP_CONST && n->op != OP_FILL)
		return false;
	*v = n->attr[0];
	return true;
}

int new_leaf(Graph *g, Op op, const char *name, Shape s, bool batched, DType t, Loc loc)
{
	int64_t n = 1;
	for (int i = 0; i < s.rank; i++) {
		if (s.dim[i] < 1)
			die("dimension %lld of '%s'", (long long)s.dim[i], name);
		if (n > MAX_BYTES / 8 / s.dim[i])
			error_at(loc, "size overflow: '%s' %s has more than %lld bytes", name,
			         shape_str(s), (long long)MAX_BYTES);
		n *= s.dim[i];
	}
	int id = push(g, op, s, batched, loc);
	g->node[id].name = name;
	g->node[id].dtype = t;
	return id;
}

int new_const(Graph *g, double v, Loc loc)
{
	int id = push(g, OP_CONST, (Shape){0}, false, loc);
	g->node[id].attr[0] = v;
	return id;
}

int new_fill(Graph *g, double v, Shape s, bool batched)
{
	if (s.rank == 0 && !batched)
		return new_const(g, v, (Loc){0});
	int id = push(g, OP_FILL, s, batched, (Loc){0});
	g->node[id].attr[0] = v;
	return id;
}

/* A literal of the shape of node 'like' with value v. */
static int fill_like(Graph *g, int like, double v)
{
	Node *n = &g->node[like];
	return new_fill(g, v, n->shape, n->batched);
}

/* ---- operators */

/* (gradc.h) */
void check_float(const Graph *g, int a, Loc loc)
{
	const Node *n = &g->node[a];
	if (dt_is_int(n->dtype))
		error_at(loc, "'%s' is an int (a class label) and cannot be used as a float",
		         node_label(g, a));
}

/* The formula of an elementwise op on one element, in double (folding and
 * the evaluator) and in float (quant_eval.c's float fallback): one text,
 * ew_formula.h, included twice.  */
#define EW_T double
#define EW_NAME apply_ew
#define EW_EXP exp
#define EW_TANH tanh
#define EW_LOG log
#define EW_SQRT sqrt
#include "ew_formula.h"
#undef EW_T
#undef EW_NAME
#undef EW_EXP
#undef EW_TANH
#undef EW_LOG
#undef EW_SQRT
#define EW_T float
#define EW_NAME apply_ew_f
#define EW_EXP expf
#define EW_TANH tanhf
#define EW_LOG logf
#define EW_SQRT sqrtf
#include "ew_formula.h"

static const char *op_symbol(Op op)
{
	switch (op) {
	case OP_ADD: return "+";
	case OP_SUB: return "-";
	case OP_MUL: return "*";
	case OP_DIV: return "/";
	case OP_MATMUL: return "@";
	default: return op_name[op];
	}
}

int new_unary(Graph *g, Op op, int a, double attr, Loc loc)
{
	check_float(g, a, loc);
	Node *x = &g->node[a];
	Shape s = x->shape;
	bool batched = x->batched;
	double v;
	switch (op_kind[op]) {
	case K_UNARY:
		if (op == OP_SCALE && attr == 1)
			return a;
		if (literal(g, a, &v))
			return fill_like(g, a, apply_ew(op, v, 0, (double[2]){attr, 0}));
		if (op == OP_SCALE && x->op == OP_SCALE)
			return new_unary(g, OP_SCALE, x->in[0], attr * x->attr[0], loc);
		if (op == OP_NEG && x->op == OP_NEG)
			return x->in[0];
		if (op == OP_SCALE && attr == -1)
			op = OP_NEG;
		break;
	case K_ROW:
		if (s.rank == 0)
			error_at(loc, "'%s' needs at least one axis, got a scalar", op_name[op]);
		break;
	case K_REDUCE:
		s = (Shape){0};
		break;
	case K_OTHER:
		if (op != OP_TRANSPOSE)
			die("new_unary: %s", op_name[op]);
		if (s.rank != 2)
			error_at(loc, "'transpose' needs a 2-D tensor, got %s", shape_str(s));
		s = shape_of(2, x->shape.dim[1], x->shape.dim[0]);
		break;
	case K_LEAF: case K_BINARY: case K_GRAD:
		die("new_unary: %s", op_name[op]);
	}
	int id = push(g, op, s, batched, loc);
	set_inputs(g, id, 1, &a);
	g->node[id].attr[0] = attr;
	return id;
}

/* [m,k]@[k] -> [m], [k]@[k,n] -> [n], [m,k]@[k,n] -> [m,n]; false otherwise. */
static bool matmul_shape(Shape a, Shape b, Shape *out)
{
	if (a.rank == 2 && b.rank == 1 && a.dim[1] == b.dim[0])
		*out = shape_of(1, a.dim[0]);
	else if (a.rank == 1 && b.rank == 2 && a.dim[0] == b.dim[0])
		*out = shape_of(1, b.dim[1]);
	else if (a.rank == 2 && b.rank == 2 && a.dim[1] == b.dim[0])
		*out = shape_of(2, a.dim[0], b.dim[1]);
	else
		return false;
	return true;
}

/* Fold x op literal when the result is x's own shape.  Returns -1 if not. */
static int fold_identity(Graph *g, Op op, int a, int b, Shape s, bool batched, Loc loc)
{
	double va = 0, vb = 0;
	bool la = literal(g, a, &va), lb = literal(g, b, &vb);
	Node *x = &g->node[a], *y = &g->node[b];
	bool a_full = shape_eq(x->shape, s) && x->batched == batched;
	bool b_full = shape_eq(y->shape, s) && y->batched == batched;
	if (lb && a_full) {
		if ((op == OP_ADD || op == OP_SUB) && vb == 0)
			return a;
		if (op == OP_MUL)
			return new_unary(g, OP_SCALE, a, vb, loc);
		if (op == OP_DIV)
			return new_unary(g, OP_SCALE, a, 1 / vb, loc);
	}
	if (la && b_full) {
		if (op == OP_ADD && va == 0)
			return b;
		if (op == OP_SUB && va == 0)
			return new_unary(g, OP_NEG, b, 0, loc);
		if (op == OP_MUL)
			return new_unary(g, OP_SCALE, b, va, loc);
	}
	return -1;
}

/* For a [C] operand of a [C, H, W] one (a bias of a convolution): how to
 * shape it so that it broadcasts per channel; else "". */
static const char *channel_hint(Shape a, Shape b)
{
	if (a.rank == 1 && b.rank == 3)
		return channel_hint(b, a);
	if (a.rank != 3 || b.rank != 1 || b.dim[0] != a.dim[0])
		return "";
	return str_fmt(" (a per-channel value for [C, H, W] is shaped [%lld, 1, 1])",
	               (long long)b.dim[0]);
}

int new_binary(Graph *g, Op op, int a, int b, Loc loc)
{
	Node *x = &g->node[a], *y = &g->node[b];
	Shape s;
	bool batched = x->batched || y->batched;
	double va = 0, vb = 0;
	int id;
	switch (op) {
	case OP_CROSS_ENTROPY:
		check_float(g, a, loc);
		if (!dt_is_int(y->dtype))
			error_at(loc, "'cross_entropy' expects an int class label, got float '%s'",
			         node_label(g, b));
		if (x->shape.rank != 1)
			error_at(loc, "'cross_entropy' expects 1-D logits, got %s", shape_str(x->shape));
		if (y->shape.rank != 0)
			die("int input of rank %d", y->shape.rank);
		s = (Shape){0};
		break;
	case OP_MSE:
		check_float(g, a, loc);
		check_float(g, b, loc);
		if (!shape_eq(x->shape, y->shape))
			error_at(loc, "shape mismatch in 'mse': %s and %s", shape_str(x->shape),
			         shape_str(y->shape));
		s = (Shape){0};
		break;
	case OP_MATMUL:
		check_float(g, a, loc);
		check_float(g, b, loc);
		if (!matmul_shape(x->shape, y->shape, &s))
			error_at(loc, "shape mismatch in '@': %s @ %s", shape_str(x->shape),
			         shape_str(y->shape));
		break;
	case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
		check_float(g, a, loc);
		check_float(g, b, loc);
		if (!broadcast_shape(x->shape, y->shape, &s))
			error_at(loc, "shape mismatch in '%s': %s and %s%s", op_symbol(op),
			         shape_str(x->shape), shape_str(y->shape),
			         channel_hint(x->shape, y->shape));
		if (literal(g, a, &va) && literal(g, b, &vb))
			return new_fill(g, apply_ew(op, va, vb, (double[2]){0}), s, batched);
		if ((id = fold_identity(g, op, a, b, s, batched, loc)) >= 0)
			return id;
		break;
	case OP_INPUT: case OP_PARAM: case OP_CONST: case OP_FILL: case OP_NEG: case OP_SCALE:
	case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH: case OP_EXP: case OP_LOG:
	case OP_SQRT: case OP_ABS: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_SUM: case OP_MEAN:
	case OP_SUMSQ: case OP_TRANSPOSE: case OP_EXPAND: case OP_REDUCE_TO: case OP_BATCH_MEAN:
	case OP_RELU_GRAD: case OP_LEAKY_RELU_GRAD: case OP_SIGMOID_GRAD: case OP_TANH_GRAD:
	case OP_SQRT_GRAD: case OP_ABS_GRAD: case OP_SOFTMAX_GRAD: case OP_LOG_SOFTMAX_GRAD:
	case OP_CE_GRAD: case OP_MSE_GRAD: case OP_SGD_STEP: case OP_ADAM_STEP: case OP_CLIP:
	case OP_CONV2D: case OP_MAXPOOL2D: case OP_AVGPOOL2D: case OP_RESHAPE: case OP_CONCAT:
	case OP_SLICE: case OP_CLIP_GRAD: case OP_CONV2D_DX: case OP_CONV2D_DW:
	case OP_MAXPOOL2D_GRAD: case OP_AVGPOOL2D_GRAD: case N_OP:
		die("new_binary: %s", op < N_OP ? op_name[op] : "?");
	}
	id = push(g, op, s, batched, loc);
	set_inputs(g, id, 2, (int[2]){a, b});
	if (op == OP_CROSS_ENTROPY)
		g->node[id].attr[0] = (double)x->shape.dim[0];
	return id;
}

int new_node(Graph *g, Op op, int n_in, const int *in, Loc loc)
{
	if (n_in == 1)
		return new_unary(g, op, in[0], 0, loc);
	if (n_in == 2)
		return new_binary(g, op, in[0], in[1], loc);
	die("new_node: %s with %d inputs", op_name[op], n_in);
}

int new_shaped(Graph *g, Op op, int n_in, const int *in, Shape s, bool batched, Loc loc)
{
	int id = push(g, op, s, batched, loc);
	set_inputs(g, id, n_in, in);
	return id;
}

int new_grad(Graph *g, Op op, int n_in, const int *in, Shape s, bool batched)
{
	return new_shaped(g, op, n_in, in, s, batched, (Loc){0});
}

int new_matmul(Graph *g, int l, int r, Matmul mm, Shape s, bool batched)
{
	int in[2] = {l, r};
	int id = new_grad(g, OP_MATMUL, 2, in, s, batched);
	g->node[id].mm = mm;
	return id;
}

bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MAX_NAME || !(s[0] == '_' || ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= '0' && s[i] <= '9') ||
		      ((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z')))
			return false;
	return true;
}

/* Multiply-adds of one call of node n's kernel (the whole batch): the
 * contractions (F_CONTRACT); 0 for every other op. */
int64_t node_macs(const Graph *g, const Node *n)
{
	if (n->op == OP_MATMUL)
		return n->mm.m * n->mm.n * n->mm.k * n->mm.nb;
	if (op_is(n->op, F_CONTRACT))
		return conv_macs(g, n);
	return 0;
}

int64_t graph_macs(const Graph *g)
{
	int64_t s = 0;
	for (int i = 0; i < g->n_node; i++)
		s += node_macs(g, &g->node[i]);
	return s;
}

int param_grad(const Graph *g, int p)
{
	return g->node[p].grad;
}

static int moved(const int *new_id, int id)
{
	return id < 0 ? -1 : new_id[id];
}

void remap_ids(Graph *g, const int *new_id)
{
	int n = 0;
	for (int i = 0; i < g->n_node; i++)
		n += new_id[i] >= 0;
	int cap = g->cap > n ? g->cap : n;
	Node *nodes = alloc(sizeof(Node) * (size_t)(cap ? cap : 1));
	for (int i = 0; i < g->n_node; i++) {
		int j = new_id[i];
		if (j < 0)
			continue;
		if (j >= n)
			die("remap_ids: node %d to %d of %d", i, j, n);
		Node nd = g->node[i];
		for (int k = 0; k < nd.n_in; k++)
			if ((nd.in[k] = new_id[nd.in[k]]) < 0)
				die("node %d (%s) reads a dropped node", i, node_label(g, i));
		nd.fuse = nd.fuse >= 0 ? moved(new_id, fused_into(g, i)) : -1;
		nd.fwd = moved(new_id, nd.fwd);
		nd.grad = moved(new_id, nd.grad);
		nd.side = moved(new_id, nd.side);
		nd.alias = -1;
		nodes[j] = nd;
	}
	g->node = nodes;
	g->n_node = n;
	g->cap = cap;
	g->objective = moved(new_id, g->objective);
	g->loss = moved(new_id, g->loss);
	for (int k = 0; k < g->n_out; k++)
		g->out[k] = moved(new_id, g->out[k]);
	for (int k = 0; k < g->n_track; k++) {
		g->track[k] = moved(new_id, g->track[k]);
		g->track_mean[k] = moved(new_id, g->track_mean[k]);
	}
}

void caller_reads(const Graph *g, bool *reads)
{
	for (int k = 0; k < g->n_out; k++)
		reads[g->out[k]] = true;
	for (int k = 0; k < g->n_track; k++)
		if (g->track_mean[k] >= 0)
			reads[g->track_mean[k]] = true;
	if (g->loss >= 0)
		reads[g->loss] = true;
	if (g->mode == MODE_GRAD)
		for (int i = 0; i < g->n_node; i++)
			if (g->node[i].op == OP_PARAM && !g->node[i].frozen && g->node[i].grad >= 0)
				reads[g->node[i].grad] = true;
}

int *declared_nodes(const Graph *g, Op op, int *n)
{
	int *ids = alloc(sizeof(int) * (size_t)(g->n_node + 1));
	*n = 0;
	for (int i = 0; i < g->n_node; i++) {
		if (g->node[i].op != op)
			continue;
		int k = (*n)++;
		Loc l = g->node[i].loc;
		for (; k > 0; k--) {  /* insertion by source position */
			Loc m = g->node[ids[k - 1]].loc;
			if (m.line < l.line || (m.line == l.line && m.col <= l.col))
				break;
			ids[k] = ids[k - 1];
		}
		ids[k] = i;
	}
	return ids;
}
