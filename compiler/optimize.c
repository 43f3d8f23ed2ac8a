/* optimize.c: dead-code elimination, use counts, and fusion marks.
 *
 * Requires: a graph from autodiff (any mode), nodes in topological order.
 * Fills:    Node.n_use and Node.fuse; removes dead nodes and renumbers the
 *           rest (relative order kept), remapping every id the graph holds
 *           (inputs, Node.fwd, Node.grad, Graph.out/track/track_mean/loss/
 *           objective).  Invalidates nothing filled earlier.
 *
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
 *      - P is elementwise (ew() below) or a matrix product with a plain
 *        [nb][m][n] result (then C's loop is the product's loop and the
 *        elementwise chain runs as its epilogue, on the accumulator);
 *      - C is elementwise, or an optimizer update reading P as its gradient
 *        (so the update is the loop that makes dW: matmul, weight decay and
 *        step in one pass; the scheduler orders the update, so it orders
 *        the whole fused gradient computation with it);
 *      - P and C have the same full index space (no broadcast of P, so a
 *        fused value is computed exactly once per element);
 *      - the fused group of C would hold at most one matrix product;
 *      - and at most MAX_GROUP nodes.
 *    Groups are trees of fused nodes ending at one root (fuse == -1) that
 *    has memory; the emitter writes one loop nest per root.
 *
 * 4. Packing (with fusion, unless --no-pack).  A product C = L R^T (the
 *    forward X W^T) of 16 or more rows, 64 or more columns and k >= 16
 *    packs blocks of PACK_ROWS rows of L transposed into scratch memory
 *    (Matmul.pack; the planner gives the scratch a live range of that one
 *    step), so that its kernel runs with the rows of C along vectors:
 *    broadcasts of R, unit-stride loads of L^T, no horizontal sums
 *    (emit/kernels.lua, the xt form).  Each packed element then serves 64
 *    or more products, so the copy costs a few percent at most.
 *
 * Limits: producers are never fused into reductions, row ops or matrix
 * products (no prologue fusion); a value used twice is always stored.
 */
#include "gradc.h"

#include <string.h>

static bool is_update(Op op)
{
	return op == OP_SGD_STEP || op == OP_ADAM_STEP;
}

/* Elementwise: out[e] depends on element e of each (broadcast) input only. */
static bool ew(Op op)
{
	switch (op_kind[op]) {
	case K_UNARY: case K_BINARY:
		return true;
	case K_GRAD:
		return op != OP_SOFTMAX_GRAD && op != OP_LOG_SOFTMAX_GRAD;
	default:
		return op == OP_EXPAND || op == OP_MSE_GRAD;
	}
}

/* Mark the nodes a root of 'g' reads; 'live' has n_node entries. */
static void mark_live(const Graph *g, bool *live)
{
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		live[i] = live[i] || n->op == OP_INPUT || n->op == OP_PARAM ||
		          (g->mode == MODE_TRAIN && is_update(n->op)) || g->mode == MODE_FWD;
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

static int remap(const int *map, int id)
{
	return id < 0 ? -1 : map[id];
}

/* Drop the nodes not marked in 'live'; renumber and remap every id. */
static void compact(Graph *g, const bool *live)
{
	int *map = alloc(sizeof(int) * (size_t)(g->n_node + 1));
	int n = 0;
	for (int i = 0; i < g->n_node; i++)
		map[i] = live[i] ? n++ : -1;
	for (int i = 0; i < g->n_node; i++) {
		if (!live[i])
			continue;
		Node nd = g->node[i];
		for (int k = 0; k < nd.n_in; k++)
			if ((nd.in[k] = map[nd.in[k]]) < 0)
				die("live node %d reads a dead one", i);
		nd.fwd = remap(map, nd.fwd);
		nd.grad = remap(map, nd.grad);
		g->node[map[i]] = nd;
	}
	g->n_node = n;
	for (int k = 0; k < g->n_out; k++)
		g->out[k] = remap(map, g->out[k]);
	for (int k = 0; k < g->n_track; k++) {
		g->track[k] = remap(map, g->track[k]);
		g->track_mean[k] = remap(map, g->track_mean[k]);
	}
	g->loss = remap(map, g->loss);
	g->objective = remap(map, g->objective);
}

/* Values the caller reads after the call: never fused away. */
static void mark_external(const Graph *g, bool *ext)
{
	for (int k = 0; k < g->n_out; k++)
		ext[g->out[k]] = true;
	for (int k = 0; k < g->n_track; k++)
		if (g->track_mean[k] >= 0)
			ext[g->track_mean[k]] = true;
	if (g->loss >= 0)
		ext[g->loss] = true;
	if (g->mode == MODE_GRAD)
		for (int i = 0; i < g->n_node; i++)
			if (g->node[i].op == OP_PARAM && g->node[i].grad >= 0)
				ext[g->node[i].grad] = true;
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
	if (pn->op == OP_MATMUL ? !plain_result(&pn->mm) : !ew(pn->op))
		return false;
	if (is_update(cn->op)) {
		if (cn->in[1] != p || cn->in[0] == p)
			return false;
	} else if (!ew(cn->op)) {
		return false;
	}
	return pn->batched == cn->batched && shape_eq(pn->shape, cn->shape) &&
	       pn->type == T_F && cn->type == T_F;
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
	mark_external(g, ext);
	for (int i = 0; i < n; i++) {
		user[i] = -1;
		size[i] = 1;
		mm_of[i] = g->node[i].op == OP_MATMUL ? i : -1;
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
		if (is_update(cn->op) && mn && (mn->in[0] == cn->in[0] || mn->in[1] == cn->in[0]))
			continue;
		if (is_update(cn->op) && reads_other_param(g, p, cn->in[0]))
			continue;
		pn->fuse = c;
		size[c] += size[p];
		if (mm_of[p] >= 0)
			mm_of[c] = mm_of[p];
	}
}

void optimize(Graph *g, bool fuse, bool pack)
{
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
		g->node[i].mm.pack = 0;
	}
	for (int i = 0; i < g->n_node; i++)
		for (int k = 0; k < g->node[i].n_in; k++)
			g->node[g->node[i].in[k]].n_use++;
	if (!fuse)
		return;
	fuse_all(g);
	for (int i = 0; pack && i < g->n_node; i++) {
		Matmul *mm = &g->node[i].mm;
		if (g->node[i].op == OP_MATMUL && mm->nb == 1 && !mm->ta && mm->tb && mm->m >= 16 && mm->n >= 64 &&
		    mm->k >= 16)
			mm->pack = mm->m < PACK_ROWS(g->f64) ? mm->m : PACK_ROWS(g->f64);
	}
}
