/* select.c: choose how each kernel is computed, for the target.
 *
 * Requires: an optimized graph (Node.fuse, Matmul.pack), its Target.
 * Fills:    Matmul.form (and the packed form's panel, Matmul.mb/kc) of
 *           every product; Node.side of a product that also sums the
 *           squares of the weights it loads, with the note on that sumsq.
 *           The emitter prints what is chosen here and decides nothing.
 *
 * 1. Product forms (emit/gemm.lua prints each; V = the target's vector
 *    in elements):
 *      simple  one scalar dot or one row of V accumulators per row: small
 *              or repeated products, and every product of an unfused
 *              build (the naive baseline);
 *      xt      C = X W^T with Matmul.pack (optimize.c): packed X^T blocks;
 *      packed  C = L R^T with a short k (<= 128), 16+ rows, 8+ columns and
 *              a panel of KC x V plus MB x V elements within the target's
 *              stack (not with --no-pack);
 *      lane    C = L R^T otherwise with k >= V (batch 1 and small batches);
 *      tile    C = L R or L^T R with k == 1 or 512+ multiply-adds.
 * 0. Pointwise convolutions (a 1x1 kernel, stride 1, no padding, one
 *    group) are matrix products per sample: W [Co, Ci] times x [Ci, H W].
 *    Such a conv2d and its two gradients become OP_MATMUL nodes here, so
 *    the product forms below compute them (issue 15: "pointwise forms of
 *    their own").
 * 2. Side sums.  A lane product with one row (batch 1) loads every weight
 *    of a parameter R exactly once; a later sumsq(R) (the L2 penalty) is
 *    then summed in its registers (Node.side = that sumsq), and the sumsq
 *    kernel only stores the total.  The scheduler keeps it after the
 *    product.
 */
#include "gradc.h"

/* The largest divisor of n in [lo, hi], or 0. */
static int64_t divisor(int64_t n, int64_t lo, int64_t hi)
{
	for (int64_t d = n < hi ? n : hi; d >= (lo > 1 ? lo : 1); d--)
		if (n % d == 0)
			return d;
	return 0;
}

enum { PACK_MR = 8 };  /* rows of the packed form's register tile */

/* The packed form's panel: MB rows of C and KC values of k per block, both
 * stored in V-element vectors within the target's stack.  false: none. */
static bool pack_shape(const Graph *g, Matmul *mm, int64_t V, int64_t es)
{
	int64_t cap = g->target->stack_bytes / es / V;  /* KC + MB vectors */
	int64_t mb = mm->m <= cap / 2 ? mm->m : divisor(mm->m, cap / 4, cap / 2);
	int64_t kc = divisor(mm->k, cap / 4, cap / 2);
	if (!mb || !kc || mb % PACK_MR)
		return false;
	mm->mb = mb;
	mm->kc = kc;
	mm->mr = PACK_MR;
	return true;
}

/* es: the bytes of one element of the product */
static Form product_form(const Graph *g, Matmul *mm, int64_t es, bool fuse, bool pack)
{
	int64_t V = g->target->vec_bytes / es;
	if (!fuse || mm->nb > 1 || (mm->ta && mm->tb))
		return FORM_SIMPLE;
	if (mm->pack > 0)
		return FORM_XT;
	if (!mm->ta && mm->tb && mm->m >= 16 && mm->n >= 8 && mm->k <= 128 && pack &&
	    pack_shape(g, mm, V, es))
		return FORM_PACKED;
	if (!mm->ta && (mm->tb || mm->n == 1))
		return mm->k >= V ? FORM_LANE : FORM_SIMPLE;
	if (!mm->tb && mm->n > 1 && (mm->k == 1 || mm->m * mm->n * mm->k >= 512))
		return FORM_TILE;
	return FORM_SIMPLE;
}

/* Step 2: the unfused sumsq of parameter R that product p may sum, or -1. */
static int side_sumsq(const Graph *g, int p, const bool *taken)
{
	const Matmul *mm = &g->node[p].mm;
	int r = g->node[p].in[1];
	if (mm->form != FORM_LANE || mm->m != 1 || !mm->tb || g->node[r].op != OP_PARAM)
		return -1;
	for (int s = 0; s < g->n_node; s++)
		if (g->node[s].op == OP_SUMSQ && g->node[s].in[0] == r && g->node[s].fuse < 0 &&
		    !taken[s])
			return s;
	return -1;
}

/* Step 0: a pointwise convolution (or gradient) as the matrix product it
 * is, per sample of its batch: y = W x, dx = W^T dy, dW = sum_b dy x^T. */
static void pointwise(const Graph *g, Node *n)
{
	const Window *w = &n->win;
	if (!op_is(n->op, F_CONTRACT) || n->op == OP_MATMUL || w->kh != 1 || w->kw != 1 ||
	    w->sh != 1 || w->sw != 1 || w->pt || w->pl || w->pb || w->pr || w->groups != 1)
		return;
	const Node *y = n->op == OP_CONV2D ? n : &g->node[n->in[0]];  /* the forward output */
	const Node *x = n->op == OP_CONV2D_DX ? n : &g->node[n->in[n->op == OP_CONV2D ? 0 : 1]];
	int64_t co = y->shape.dim[0], ci = x->shape.dim[0];
	int64_t hw = y->shape.dim[1] * y->shape.dim[2], nb = y->batched ? g->batch : 1;
	int a = n->in[0], b = n->in[1];
	switch (n->op) {
	case OP_CONV2D:  /* (x, W): C[Co, HW] = W x */
		n->mm = (Matmul){.m = co, .n = hw, .k = ci, .nb = nb, .sr = ci * hw, .sc = co * hw};
		n->in[0] = b, n->in[1] = a;
		break;
	case OP_CONV2D_DX:  /* (dy, W): C[Ci, HW] = W^T dy */
		n->mm = (Matmul){.m = ci, .n = hw, .k = co, .ta = true, .nb = nb, .sr = co * hw,
		                 .sc = ci * hw};
		n->in[0] = b, n->in[1] = a;
		break;
	default:  /* conv2d_dw (dy, x): C[Co, Ci] = sum over the batch of dy x^T */
		n->mm = (Matmul){.m = co, .n = ci, .k = hw, .tb = true, .nb = nb, .sl = co * hw,
		                 .sr = ci * hw, .acc = nb > 1};
	}
	n->op = OP_MATMUL;
}

void select_kernels(Graph *g, bool fuse, bool pack)
{
	bool *taken = alloc(sizeof(bool) * (size_t)(g->n_node + 1));
	for (int i = 0; i < g->n_node; i++) {
		Node *n = &g->node[i];
		n->side = -1;
		pointwise(g, n);
		if (n->op == OP_MATMUL)
			n->mm.form = product_form(g, &n->mm, dt_bytes(n->dtype), fuse, pack);
	}
	for (int i = 0; fuse && i < g->n_node; i++) {
		if (g->node[i].op != OP_MATMUL)
			continue;
		int s = side_sumsq(g, i, taken);
		if (s < 0)
			continue;
		taken[s] = true;
		g->node[i].side = s;
		g->node[s].note = str_fmt("summed in the kernel of %s, which loads every element of %s",
		                          node_label(g, exec_step(g, i)),
		                          node_label(g, g->node[s].in[0]));
	}
}
