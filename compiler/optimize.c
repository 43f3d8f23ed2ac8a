/* optimize.c: dead-code elimination, use counts, and fusion marks.
 *
 * Requires: a graph from autodiff (any mode), nodes in topological order.
 * Fills:    Node.n_use and Node.fuse; removes dead nodes and renumbers the
 *           rest (relative order kept), remapping every id the graph holds
 *           (inputs, Node.fwd, Node.grad, Graph.out/track/track_mean/loss/
 *           objective).  Invalidates nothing filled earlier.
 *
 * 0. Decay folding (with fusion).  A plain SGD step (no momentum) takes
 *    the one-factor form W = (1 - lr (c + wd)) W - lr G: an FMA on the load
 *    of W (Node.attr[1] = 1).  When its gradient is G + c W, the L2
 *    penalty's term of the very parameter W (a scale of W used once), the
 *    step reads G and keeps c in Node.attr[0]; the add and the scale die.
 *    --no-fuse builds keep the textbook step.
 * 1. Liveness.  The roots are the loss, the tracked means, the outputs, in
 *    MODE_TRAIN the update nodes and in MODE_GRAD the parameter gradients.
 *    A node is live if a root reads it, directly or not.  Inputs and
 *    parameters always stay: they are the generated API (every parameter is
 *    a member of NAME_params even where no output needs it).
 * 2. Use counts: how many input slots of live nodes name each node.
 * 3. Fusion (unless --no-fuse).  Node P is computed inside the loop of its
 *    one consumer C (P.fuse = C; the planner gives P no memory, and its
 *    reads happen at C's step) when
 *      - P has exactly one use, and is not read by the caller (an output,
 *        the loss, a tracked mean, a MODE_GRAD parameter gradient);
 *      - P is elementwise (F_EW in ops.def) or a contraction (F_CONTRACT:
 *        a matrix product with a plain [nb][m][n] result, a convolution
 *        or its gradients; then C's loop is the contraction's loop and
 *        the elementwise chain runs as its epilogue, on the accumulator);
 *      - C is elementwise, or an optimizer update reading P as its gradient
 *        (so the update is the loop that makes dW: matmul, weight decay and
 *        step in one pass; the scheduler orders the update, so it orders
 *        the whole fused gradient computation with it);
 *      - P and C have the same full index space (no broadcast of P, so a
 *        fused value is computed exactly once per element);
 *      - the fused group of C would hold at most one contraction;
 *      - and at most MAX_GROUP nodes.
 *    Groups are trees of fused nodes ending at one root (fuse == -1) that
 *    has memory; the emitter writes one loop nest per root.
 *
 * 4. Packing (with fusion, unless --no-pack).  A product C = L R^T (the
 *    forward X W^T) of 16 or more rows, 64 or more columns and k >= 16
 *    packs blocks of pack_rows() rows of L transposed into scratch memory
 *    (Matmul.pack; the planner gives the scratch a live range of that one
 *    step), so that its kernel runs with the rows of C along vectors:
 *    broadcasts of R, unit-stride loads of L^T, no horizontal sums
 *    (emit/gemm.lua, the xt form).  Each packed element then serves 64
 *    or more products, so the copy costs a few percent at most.
 *
 * 5. Shared exps (with fusion).  A batched cross-entropy whose logits x
 *    (in the arena) are read by nothing but the loss and its gradient
 *    leaves e = exp(x - max x) in x's buffer (Node.clobber = 1) and the
 *    gradient computes softmax(x) = e / sum(e) from it: one exp a logit
 *    instead of two.  verify_plan checks that no other reader sees the
 *    overwritten buffer; the comments of both kernels say so.
 *
 * Limits: producers are never fused into reductions, row ops or matrix
 * products (no prologue fusion); a value used twice is always stored.
 */
#include "gradc.h"

#include <string.h>

/* Mark the nodes a root of 'g' reads; 'live' has n_node entries. */
static void mark_live(const Graph *g, bool *live)
{
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		live[i] = live[i] || n->op == OP_INPUT || n->op == OP_PARAM ||
		          (g->mode == MODE_TRAIN && op_is(n->op, F_UPDATE)) || g->mode == MODE_FWD;
		if (g->mode == MODE_GRAD && n->op == OP_PARAM && n->grad >= 0 && !n->frozen)
			live[n->grad] = true;
	}
	if (g->loss >= 0)
		live[g->loss] = true;
	for (int k = 0; k < g->n_track; k++)
		if (g->track_mean[k] >= 0)
			live[g->track_mean[k]] = true;
	for (int k = 0; k < g->n_out; k++)
		live[g->out[k]] = true;
	for (int i = g->n_node - 1; i >= 0; i--)
		if (live[i])
			for (int k = 0; k < g->node[i].n_in; k++)
				live[g->node[i].in[k]] = true;
}

/* Drop the nodes not marked in 'live'; renumber and remap every id. */
static void compact(Graph *g, const bool *live)
{
	int *map = alloc(sizeof(int) * (size_t)(g->n_node + 1));
	int n = 0;
	for (int i = 0; i < g->n_node; i++)
		map[i] = live[i] ? n++ : -1;
	remap_ids(g, map);
}

/* Does a matrix product write a plain row-major [nb][m][n] result? */
static bool plain_result(const Matmul *mm)
{
	return mm->nb == 1 || mm->acc || mm->sc == mm->m * mm->n;
}

/* May node 'p' (one use, by 'c') run inside the loop of 'c'? */
static bool can_fuse(const Graph *g, int p, int c)
{
	const Node *pn = &g->node[p], *cn = &g->node[c];
	if (op_is(pn->op, F_CONTRACT) ? pn->op == OP_MATMUL && !plain_result(&pn->mm)
	                               : !op_is(pn->op, F_EW))
		return false;
	if (op_is(cn->op, F_UPDATE)) {
		if (cn->in[1] != p || cn->in[0] == p)
			return false;
	} else if (!op_is(cn->op, F_EW)) {
		return false;
	}
	return pn->batched == cn->batched && shape_eq(pn->shape, cn->shape) &&
	       !dt_is_int(pn->dtype) && !dt_is_int(cn->dtype);
}

/* Does node 'p', or a node already fused into it, read a trainable
 * parameter other than 'w'?  Such a group must not become the loop of w's
 * update: that parameter's own update has to wait for the read, and two
 * such groups (the gradients of a * b) would wait for each other.  */
static bool reads_other_param(const Graph *g, int p, int w)
{
	const Node *n = &g->node[p];
	for (int k = 0; k < n->n_in; k++) {
		const Node *x = &g->node[n->in[k]];
		if (x->op == OP_PARAM && n->in[k] != w && !x->frozen)
			return true;
		if (x->fuse == p && reads_other_param(g, n->in[k], w))
			return true;
	}
	return false;
}

/* Nodes in one fused group, at most: a chain of thousands of elementwise
 * lines becomes kernels of this many, so following a node to its group's
 * root (exec_step, the emitter) costs O(1) and compiling stays linear. */
enum { MAX_GROUP = 64 };

static void fuse_all(Graph *g)
{
	int n = g->n_node;
	int *size = alloc(sizeof(int) * (size_t)(n + 1));  /* nodes in the group */
	bool *ext = alloc(sizeof(bool) * (size_t)(n + 1));
	int *mm_of = alloc(sizeof(int) * (size_t)(n + 1));  /* the group's product */
	int *user = alloc(sizeof(int) * (size_t)(n + 1));
	caller_reads(g, ext);
	for (int i = 0; i < n; i++) {
		user[i] = -1;
		size[i] = 1;
		mm_of[i] = op_is(g->node[i].op, F_CONTRACT) ? i : -1;
	}
	for (int i = 0; i < n; i++)
		for (int k = 0; k < g->node[i].n_in; k++)
			user[g->node[i].in[k]] = i;
	for (int p = 0; p < n; p++) {
		Node *pn = &g->node[p];
		if (op_kind[pn->op] == K_LEAF || pn->n_use != 1 || ext[p] || user[p] < 0)
			continue;
		int c = user[p];
		if (!can_fuse(g, p, c) || (mm_of[p] >= 0 && mm_of[c] >= 0)
		    || size[p] + size[c] > MAX_GROUP)
			continue;
		/* an update writes W element by element: a product in its loop
		 * must not read W (it would see new values) */
		const Node *cn = &g->node[c], *mn = mm_of[p] >= 0 ? &g->node[mm_of[p]] : NULL;
		if (op_is(cn->op, F_UPDATE) && mn && (mn->in[0] == cn->in[0] || mn->in[1] == cn->in[0]))
			continue;
		if (op_is(cn->op, F_UPDATE) && reads_other_param(g, p, cn->in[0]))
			continue;
		pn->fuse = c;
		size[c] += size[p];
		if (mm_of[p] >= 0)
			mm_of[c] = mm_of[p];
	}
}

/* Step 0: plain SGD steps take the one-factor form; an L2 term c W of the
 * parameter W they update moves out of the gradient into the factor. */
static void fold_decay(Graph *g)
{
	if (g->mode != MODE_TRAIN || g->opt.kind != OPT_SGD || g->opt.momentum != 0)
		return;
	int *uses = alloc(sizeof(int) * (size_t)(g->n_node + 1));
	for (int i = 0; i < g->n_node; i++)
		for (int k = 0; k < g->node[i].n_in; k++)
			uses[g->node[i].in[k]]++;
	for (int u = 0; u < g->n_node; u++) {
		Node *un = &g->node[u];
		if (un->op != OP_SGD_STEP)
			continue;
		int w = un->in[0], a = un->in[1];
		const Node *an = &g->node[a];
		un->attr[1] = 1;
		for (int k = 0; an->op == OP_ADD && uses[a] == 1 && k < 2; k++) {
			const Node *sn = &g->node[an->in[k]];
			if (sn->op != OP_SCALE || sn->in[0] != w || uses[an->in[k]] != 1 ||
			    !shape_eq(an->shape, un->shape) || an->batched)
				continue;
			const char *wn = node_label(g, w);
			un->attr[0] = sn->attr[0];
			un->in[1] = g->node[w].grad = an->in[1 - k];
			un->deriv = str_fmt("%s = (1 - lr %g) %s - lr G   (%s = G + %g %s)", wn,
			                    un->attr[0] + g->opt.weight_decay, wn,
			                    an->deriv ? an->deriv : node_label(g, a), un->attr[0], wn);
			break;
		}
	}
}

/* Step 5: the cross-entropies that leave their exps in the logits. */
static void share_ce_exps(Graph *g)
{
	for (int i = 0; i < g->n_node; i++) {
		Node *d = &g->node[i];
		if (d->op != OP_CE_GRAD)
			continue;
		int x = d->in[1], l = d->in[3];
		Node *xn = &g->node[x], *ln = &g->node[l];
		if (ln->op != OP_CROSS_ENTROPY || ln->in[0] != x || !xn->batched ||
		    op_kind[xn->op] == K_LEAF || xn->n_use != 2 || ln->clobber)
			continue;
		const char *lx = node_label(g, x);
		ln->clobber = 1;
		ln->note = str_fmt("leaves e = exp(%s - max %s) in %s's buffer for its gradient", lx, lx, lx);
		d->note = str_fmt("softmax(%s) = e / sum(e), from the e the loss left in %s", lx, lx);
	}
}

void optimize(Graph *g, bool fuse, bool pack)
{
	if (fuse)
		fold_decay(g);
	bool *live = alloc(sizeof(bool) * (size_t)(g->n_node + 1));
	mark_live(g, live);
	compact(g, live);
	if (g->mode == MODE_INFER) {
		/* tracked values and the objective are training-only: drop the
		 * references of those that died with them */
		int nt = 0;
		for (int k = 0; k < g->n_track; k++)
			if (g->track[k] >= 0) {
				g->track_mean[nt] = g->track_mean[k];
				g->track_name[nt] = g->track_name[k];
				g->track[nt++] = g->track[k];
			}
		g->n_track = nt;
	}
	for (int i = 0; i < g->n_node; i++) {
		g->node[i].n_use = 0;
		g->node[i].fuse = -1;
		g->node[i].clobber = 0;
		g->node[i].note = NULL;
		g->node[i].mm.pack = 0;
	}
	for (int i = 0; i < g->n_node; i++)
		for (int k = 0; k < g->node[i].n_in; k++)
			g->node[g->node[i].in[k]].n_use++;
	if (!fuse)
		return;
	fuse_all(g);
	share_ce_exps(g);
	for (int i = 0; pack && i < g->n_node; i++) {
		Matmul *mm = &g->node[i].mm;
		if (g->node[i].op != OP_MATMUL || mm->nb != 1 || mm->ta || !mm->tb || mm->m < 16 ||
		    mm->n < 64 || mm->k < 16)
			continue;
		int64_t rows = pack_rows(g->target, g->node[i].dtype);
		if (rows)  /* 0: scalar tiles, which read X in place */
			mm->pack = mm->m < rows ? mm->m : rows;
	}
}
