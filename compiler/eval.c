/* eval.c: the reference evaluator, in double precision.
 *
 * Runs the nodes in array order.  Each kernel is the plainest loop over the
 * node's full index space (batch first), with broadcast inputs addressed
 * through bcast_strides(); nothing is fused, nothing is shared.  It checks
 * the labels before anything runs and the loss before the first update, so
 * a failed step leaves the parameters as they were, like the generated code.
 *
 * Limits: slow (index arithmetic per element); meant for small tests.
 */
#include "gradc.h"

#include <math.h>
#include <string.h>

Eval *new_eval(const Graph *g)
{
	Eval *e = alloc(sizeof *e);
	e->g = g;
	e->lr = g->opt.lr;
	e->val = alloc(sizeof(double *) * (size_t)g->n_node);
	for (int k = 0; k < 2; k++)
		e->state[k] = alloc(sizeof(double *) * (size_t)g->n_node);
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		size_t numel = (size_t)node_numel(g, n);
		e->val[i] = alloc(sizeof(double) * numel);
		if (n->op == OP_PARAM)
			for (int k = 0; k < 2; k++)
				e->state[k][i] = alloc(sizeof(double) * numel);
	}
	return e;
}

void eval_copy_params(Eval *dst, const Eval *src)
{
	const Graph *d = dst->g, *s = src->g;
	for (int i = 0; i < d->n_node; i++) {
		if (d->node[i].op != OP_PARAM)
			continue;
		int j = find_name(s, d->node[i].name);
		if (j < 0 || s->node[j].op != OP_PARAM)
			die("eval_copy_params: no '%s'", d->node[i].name);
		size_t bytes = sizeof(double) * (size_t)node_numel(d, &d->node[i]);
		memcpy(dst->val[i], src->val[j], bytes);
		for (int k = 0; k < 2; k++)
			memcpy(dst->state[k][i], src->state[k][j], bytes);
	}
	dst->step = src->step;
}

/* Offset of flat index i (of a tensor with full dims 'dim') in a tensor
 * addressed by 'stride' over the same index space. */
static int64_t map_index(int64_t i, int r, const int64_t *dim, const int64_t *stride)
{
	int64_t off = 0;
	for (int d = r - 1; d >= 0; d--) {
		off += (i % dim[d]) * stride[d];
		i /= dim[d];
	}
	return off;
}

static void binary(Eval *e, int id)
{
	const Graph *g = e->g;
	const Node *n = &g->node[id];
	int64_t dim[MAX_RANK + 1], sa[MAX_RANK + 1], sb[MAX_RANK + 1];
	int r = full_dims(g, n, dim);
	bcast_strides(g, n, &g->node[n->in[0]], sa);
	bcast_strides(g, n, &g->node[n->in[1]], sb);
	const double *a = e->val[n->in[0]], *b = e->val[n->in[1]];
	double *y = e->val[id];
	for (int64_t i = 0, N = node_numel(g, n); i < N; i++)
		y[i] = apply_ew(n->op, a[map_index(i, r, dim, sa)], b[map_index(i, r, dim, sb)], n->attr);
}

/* softmax, log_softmax and their gradients, one row of length m at a time */
static void rows(Eval *e, int id)
{
	const Graph *g = e->g;
	const Node *n = &g->node[id];
	int64_t m = n->shape.dim[n->shape.rank - 1], N = node_numel(g, n);
	double *y = e->val[id];
	const double *x = e->val[n->in[0]], *s = n->n_in > 1 ? e->val[n->in[1]] : NULL;
	for (int64_t r = 0; r < N; r += m) {
		double mx = -INFINITY, sum = 0;
		switch (n->op) {
		case OP_SOFTMAX: case OP_LOG_SOFTMAX:
			for (int64_t j = 0; j < m; j++)
				mx = fmax(mx, x[r + j]);
			for (int64_t j = 0; j < m; j++)
				sum += exp(x[r + j] - mx);
			for (int64_t j = 0; j < m; j++)
				y[r + j] = n->op == OP_SOFTMAX ? exp(x[r + j] - mx) / sum
				                               : x[r + j] - mx - log(sum);
			break;
		case OP_SOFTMAX_GRAD:  /* y * (dy - sum(dy * y)), x = dy, s = y */
			for (int64_t j = 0; j < m; j++)
				sum += x[r + j] * s[r + j];
			for (int64_t j = 0; j < m; j++)
				y[r + j] = s[r + j] * (x[r + j] - sum);
			break;
		case OP_LOG_SOFTMAX_GRAD:  /* dy - exp(y) * sum(dy) */
			for (int64_t j = 0; j < m; j++)
				sum += x[r + j];
			for (int64_t j = 0; j < m; j++)
				y[r + j] = x[r + j] - exp(s[r + j]) * sum;
			break;
		default:
			die("rows: %s", op_name[n->op]);
		}
	}
}

static void reduce(Eval *e, int id)
{
	const Graph *g = e->g;
	const Node *n = &g->node[id];
	const Node *xn = &g->node[n->in[0]];
	int64_t m = shape_numel(xn->shape), rows_n = node_numel(g, n);
	const double *x = e->val[n->in[0]];
	for (int64_t r = 0; r < rows_n; r++) {
		double s = 0;
		for (int64_t j = 0; j < m; j++)
			s += n->op == OP_SUMSQ ? x[r * m + j] * x[r * m + j] : x[r * m + j];
		e->val[id][r] = n->op == OP_MEAN ? s / (double)m : s;
	}
}

static void matmul(Eval *e, int id)
{
	const Node *n = &e->g->node[id];
	Matmul mm = n->mm;
	const double *L = e->val[n->in[0]], *R = e->val[n->in[1]];
	double *C = e->val[id];
	if (mm.acc)
		memset(C, 0, sizeof(double) * (size_t)(mm.m * mm.n));
	for (int64_t t = 0; t < mm.nb; t++) {
		const double *l = L + t * mm.sl, *r = R + t * mm.sr;
		double *c = C + t * mm.sc;
		for (int64_t i = 0; i < mm.m; i++)
			for (int64_t j = 0; j < mm.n; j++) {
				double s = 0;
				for (int64_t k = 0; k < mm.k; k++)
					s += (mm.ta ? l[k * mm.m + i] : l[i * mm.k + k]) *
					     (mm.tb ? r[j * mm.k + k] : r[k * mm.n + j]);
				c[i * mm.n + j] = mm.acc ? c[i * mm.n + j] + s : s;
			}
	}
}

static void transpose(Eval *e, int id)
{
	const Graph *g = e->g;
	const Node *n = &g->node[id];
	int64_t r = n->shape.dim[1], c = n->shape.dim[0], nb = n->batched ? g->batch : 1;
	const double *x = e->val[n->in[0]];
	double *y = e->val[id];
	for (int64_t b = 0; b < nb; b++)
		for (int64_t i = 0; i < r; i++)
			for (int64_t j = 0; j < c; j++)
				y[b * r * c + j * r + i] = x[b * r * c + i * c + j];
}

/* expand (out bigger than in) and reduce_to (out smaller): one index map */
static void broadcast(Eval *e, int id)
{
	const Graph *g = e->g;
	const Node *n = &g->node[id], *x = &g->node[n->in[0]];
	const double *xv = e->val[n->in[0]];
	double *y = e->val[id];
	int64_t dim[MAX_RANK + 1], st[MAX_RANK + 1];
	if (n->op == OP_EXPAND) {
		int r = full_dims(g, n, dim);
		bcast_strides(g, n, x, st);
		for (int64_t i = 0, N = node_numel(g, n); i < N; i++)
			y[i] = xv[map_index(i, r, dim, st)];
		return;
	}
	int r = full_dims(g, x, dim);
	bcast_strides(g, x, n, st);
	memset(y, 0, sizeof(double) * (size_t)node_numel(g, n));
	for (int64_t i = 0, N = node_numel(g, x); i < N; i++)
		y[map_index(i, r, dim, st)] += xv[i];
}

/* Value of a per-sample scalar input at sample b (broadcast if unbatched). */
static double at(const Eval *e, int id, int64_t b)
{
	return e->val[id][e->g->node[id].batched ? b : 0];
}

static void loss_kernels(Eval *e, int id)
{
	const Graph *g = e->g;
	const Node *n = &g->node[id];
	int64_t nb = n->batched ? g->batch : 1;
	double *y = e->val[id];
	if (n->op == OP_CROSS_ENTROPY || n->op == OP_CE_GRAD) {
		int lo = n->op == OP_CE_GRAD ? n->in[1] : n->in[0];
		int lab = n->op == OP_CE_GRAD ? n->in[2] : n->in[1];
		const Node *o = &g->node[lo];
		int64_t m = o->shape.dim[0];
		for (int64_t b = 0; b < nb; b++) {
			const double *x = e->val[lo] + (o->batched ? b * m : 0);
			int64_t c = (int64_t)at(e, lab, b);
			double mx = -INFINITY, sum = 0;
			for (int64_t j = 0; j < m; j++)
				mx = fmax(mx, x[j]);
			for (int64_t j = 0; j < m; j++)
				sum += exp(x[j] - mx);
			if (n->op == OP_CROSS_ENTROPY) {
				y[b] = mx + log(sum) - x[c];
				continue;
			}
			double dl = at(e, n->in[0], b);
			for (int64_t j = 0; j < m; j++)
				y[b * m + j] = dl * (exp(x[j] - mx) / sum - (j == c));
		}
		return;
	}
	/* mse and its gradient: a, b of one per-sample shape */
	int ia = n->in[n->op == OP_MSE ? 0 : 1], ib = n->in[n->op == OP_MSE ? 1 : 2];
	const Node *an = &g->node[ia], *bn = &g->node[ib];
	int64_t m = shape_numel(an->shape);
	for (int64_t b = 0; b < nb; b++) {
		const double *av = e->val[ia] + (an->batched ? b * m : 0);
		const double *bv = e->val[ib] + (bn->batched ? b * m : 0);
		if (n->op == OP_MSE) {
			double s = 0;
			for (int64_t j = 0; j < m; j++)
				s += (av[j] - bv[j]) * (av[j] - bv[j]);
			y[b] = s / (double)m;
		} else {
			double dl = at(e, n->in[0], b);
			for (int64_t j = 0; j < m; j++)
				y[b * m + j] = dl * 2 * (av[j] - bv[j]) / (double)m;
		}
	}
}

/* PyTorch's SGD and Adam, weight_decay added to the gradient. */
static void update(Eval *e, int id)
{
	const Graph *g = e->g;
	const Node *n = &g->node[id];
	const Optim *o = &g->opt;
	int p = n->in[0];
	double *w = e->val[p], *gr = e->val[n->in[1]];
	double *s0 = e->state[0][p], *s1 = e->state[1][p];
	double bc1 = 1 - pow(o->beta1, (double)e->step), bc2 = 1 - pow(o->beta2, (double)e->step);
	for (int64_t i = 0, N = node_numel(g, n); i < N; i++) {
		double d = gr[i] + (n->attr[0] + o->weight_decay) * w[i];  /* attr[0]: folded L2 */
		if (n->op == OP_SGD_STEP) {
			if (o->momentum != 0) {
				s0[i] = o->momentum * s0[i] + d;  /* buffer starts at 0 */
				d = s0[i];
			}
			w[i] -= e->lr * d;
		} else {
			s0[i] += (1 - o->beta1) * (d - s0[i]);  /* torch's lerp */
			s1[i] = o->beta2 * s1[i] + (1 - o->beta2) * d * d;
			double denom = sqrt(s1[i]) / sqrt(bc2) + o->eps;
			w[i] -= e->lr / bc1 * s0[i] / denom;
		}
	}
}

static int check_labels(Eval *e)
{
	const Graph *g = e->g;
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (n->op != OP_CROSS_ENTROPY && n->op != OP_CE_GRAD)
			continue;
		int lab = n->in[n->op == OP_CE_GRAD ? 2 : 1];
		double classes = (double)g->node[n->in[n->op == OP_CE_GRAD ? 1 : 0]].shape.dim[0];
		for (int64_t b = 0, N = node_numel(g, &g->node[lab]); b < N; b++) {
			double c = e->val[lab][b];
			if (!(c >= 0 && c < classes) || c != floor(c))
				return 1;
		}
	}
	return 0;
}

/* One node; exhaustive over ops.def (-Wswitch lists a new op). */
static void run_node(Eval *e, int id)
{
	const Graph *g = e->g;
	const Node *n = &g->node[id];
	double *y = e->val[id];
	int64_t N = node_numel(g, n);
	switch (n->op) {
	case OP_INPUT: case OP_PARAM:
		break;  /* filled by the caller */
	case OP_CONST: case OP_FILL:
		for (int64_t i = 0; i < N; i++)
			y[i] = n->attr[0];
		break;
	case OP_NEG: case OP_SCALE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID:
	case OP_TANH: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_ABS: case OP_CLIP:
		for (int64_t i = 0; i < N; i++)
			y[i] = apply_ew(n->op, e->val[n->in[0]][i], 0, n->attr);
		break;
	case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
		binary(e, id);
		break;
	case OP_RELU_GRAD: case OP_LEAKY_RELU_GRAD: case OP_SIGMOID_GRAD: case OP_TANH_GRAD:
	case OP_SQRT_GRAD: case OP_ABS_GRAD: case OP_CLIP_GRAD:
		for (int64_t i = 0; i < N; i++)
			y[i] = apply_ew(n->op, e->val[n->in[0]][i], e->val[n->in[1]][i], n->attr);
		break;
	case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_SOFTMAX_GRAD: case OP_LOG_SOFTMAX_GRAD:
		rows(e, id);
		break;
	case OP_SUM: case OP_MEAN: case OP_SUMSQ:
		reduce(e, id);
		break;
	case OP_MATMUL: matmul(e, id); break;
	case OP_TRANSPOSE: transpose(e, id); break;
	case OP_EXPAND: case OP_REDUCE_TO: broadcast(e, id); break;
	case OP_CROSS_ENTROPY: case OP_CE_GRAD: case OP_MSE: case OP_MSE_GRAD:
		loss_kernels(e, id);
		break;
	case OP_BATCH_MEAN: {
		double s = 0;
		for (int64_t b = 0; b < g->batch; b++)
			s += e->val[n->in[0]][b];
		y[0] = s / g->batch;
		break;
	}
	case OP_SGD_STEP: case OP_ADAM_STEP: update(e, id); break;
	case OP_CONV2D: case OP_MAXPOOL2D: case OP_AVGPOOL2D: case OP_RESHAPE: case OP_CONCAT:
	case OP_SLICE: case OP_CONV2D_DX: case OP_CONV2D_DW: case OP_MAXPOOL2D_GRAD:
	case OP_AVGPOOL2D_GRAD: {
		const double *x[MAX_IN];
		for (int k = 0; k < n->n_in; k++)
			x[k] = e->val[n->in[k]];
		eval_spatial(g, n, x, y);
		break;
	}
	case N_OP: die("eval: op %d", (int)n->op);
	}
}

int eval_run(Eval *e)
{
	const Graph *g = e->g;
	e->status = check_labels(e);
	if (e->status)
		return e->status;
	bool stepped = false;
	for (int id = 0; id < g->n_node; id++) {
		Op op = g->node[id].op;
		if (op_is(op, F_UPDATE) && !stepped) {
			if (g->loss < 0 || g->loss > id)
				die("update before the loss");
			if (!isfinite(e->val[g->loss][0]))
				return e->status = 2;
			stepped = true;
			e->step++;
		}
		run_node(e, id);
	}
	if (g->loss >= 0 && !isfinite(e->val[g->loss][0]))
		return e->status = 2;
	return 0;
}
