/* live.c: where values live and for how long -- the facts the scheduler
 * (its cost model) and the planner (its input) share.
 *
 * Requires: a graph in schedule order (node id == step), Node.fuse from
 *           optimize (or -1 everywhere).
 * Fills:    Node.sto/first/last/alias/bytes/scratch, Graph.lower_bound and
 *           unshared_bytes (liveness); offsets are plan.c's.
 *
 * 1. Storage (assign_storage).  Inputs, parameters and literals keep their
 *    own storage; fused nodes (computed in their consumer's loop) and
 *    updates (F_UPDATE) have no memory; MODE_INFER outputs go straight to
 *    the caller's output array and MODE_GRAD parameter gradients to the
 *    caller's gradient struct; everything else computed lives in the arena.
 * 2. Live ranges.  A node is written at its step (a fused node's step is
 *    the step of the node it is fused into, exec_step) and live until the
 *    last step that reads it.  What the caller reads after the return
 *    (caller_reads in ir.c) lives to the last step.
 * 3. In place.  An op marked F_INPLACE in ops.def (the elementwise ones,
 *    on a same-shape operand, and reshape) whose input dies at that op, has the same
 *    bytes and is read by no node fused into it, writes over the input:
 *    both share one allocation (Node.alias = the node owning it, the first
 *    of the chain).  Row-wise ops never do.
 *    A product with Matmul.pack gets scratch: pack * k elements live at
 *    its step only (another interval, not a value: nothing reads it).
 * 4. The lower bound: the peak, over steps, of the rounded bytes live.
 */
#include "gradc.h"

/* Node.fuse of 'id', checked (a consumer reading it, later); -1: none. */
int fused_into(const Graph *g, int id)
{
	int c = g->node[id].fuse;
	if (c < 0 || (c == 0 && id > 0) || op_kind[g->node[id].op] == K_LEAF)
		return -1;
	if (c <= id || c >= g->n_node)
		die("node %d (%s) fused into %d", id, node_label(g, id), c);
	const Node *cn = &g->node[c];
	for (int k = 0; k < cn->n_in; k++)
		if (cn->in[k] == id)
			return c;
	die("node %d (%s) fused into %d, which does not read it", id, node_label(g, id), c);
}

/* The step whose kernel computes 'id': its fuse chain's last node. */
int exec_step(const Graph *g, int id)
{
	for (int c; (c = fused_into(g, id)) >= 0;)
		id = c;
	return id;
}

/* Fill Node.sto by the rules in the header of this file. */
void assign_storage(Graph *g)
{
	for (int i = 0; i < g->n_node; i++) {
		Node *n = &g->node[i];
		if (n->op == OP_INPUT)
			n->sto = STO_INPUT;
		else if (n->op == OP_PARAM)
			n->sto = STO_PARAM;
		else if (op_kind[n->op] == K_LEAF || op_is(n->op, F_UPDATE) || fused_into(g, i) >= 0)
			n->sto = STO_NONE;
		else
			n->sto = STO_ARENA;
	}
	if (g->mode == MODE_INFER)
		for (int k = 0; k < g->n_out; k++) {
			Node *n = &g->node[g->out[k]];
			if (fused_into(g, g->out[k]) >= 0)
				die("output '%s' is fused into its consumer", node_label(g, g->out[k]));
			if (n->sto == STO_ARENA)
				n->sto = STO_OUTPUT;
		}
	if (g->mode == MODE_GRAD)
		for (int p = 0; p < g->n_node; p++) {
			if (g->node[p].op != OP_PARAM || g->node[p].frozen)
				continue;
			int d = g->node[p].grad;
			if (d >= 0 && g->node[d].sto == STO_ARENA)
				g->node[d].sto = STO_GRAD;
		}
}

/* May node 'i' write over its input 'x' (which dies at step i)? */
static bool can_overwrite(const Graph *g, int i, int x, const bool *end, const bool *shared)
{
	const Node *n = &g->node[i], *xn = &g->node[x];
	if (!op_is(n->op, F_INPLACE))
		return false;
	if (n->sto != STO_ARENA || xn->sto != STO_ARENA || end[x] || shared[x] || xn->last != i)
		return false;
	/* equal bytes: an elementwise op's operand is then not broadcast, and a
	 * reshape's elements stay where they are */
	return n->batched == xn->batched && n->dtype == xn->dtype &&
	       node_bytes(g, n) == node_bytes(g, xn);
}

/* Storage, ranges, aliases, lower bound, unshared bytes. */
int64_t liveness(Graph *g)
{
	int n = g->n_node;
	bool *end = alloc(sizeof(bool) * (size_t)(n + 1));
	bool *shared = alloc(sizeof(bool) * (size_t)(n + 1));
	assign_storage(g);
	for (int i = 0; i < n; i++) {
		Node *nd = &g->node[i];
		nd->first = nd->last = exec_step(g, i);
		nd->alias = -1;
		nd->offset = 0;
		nd->bytes = nd->sto == STO_ARENA ? align_up(g, node_bytes(g, nd)) : 0;
		nd->scratch = nd->op == OP_MATMUL && nd->mm.pack > 0 ?
		              align_up(g, nd->mm.pack * nd->mm.k * dt_bytes(nd->dtype)) : 0;
		nd->scratch_offset = 0;
	}
	caller_reads(g, end);
	for (int i = 0; i < n; i++) {
		int s = g->node[i].first;
		for (int k = 0; k < g->node[i].n_in; k++) {
			Node *x = &g->node[g->node[i].in[k]];
			x->last = s > x->last ? s : x->last;
		}
	}
	for (int i = 0; i < n; i++)
		if (end[i])
			g->node[i].last = n - 1;
	/* a value also read, at its last step, by a node fused into that step's
	 * kernel may be read after the kernel has written: never overwrite it */
	for (int i = 0; i < n; i++)
		if (g->node[i].first != i)
			for (int k = 0; k < g->node[i].n_in; k++)
				if (g->node[g->node[i].in[k]].last == g->node[i].first)
					shared[g->node[i].in[k]] = true;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < g->node[i].n_in; k++) {
			int x = g->node[i].in[k];
			if (can_overwrite(g, i, x, end, shared)) {
				g->node[i].alias = g->node[x].alias >= 0 ? g->node[x].alias : x;
				break;
			}
		}
	int ni;
	Interval *iv = graph_intervals(g, &ni, NULL);
	g->unshared_bytes = 0;
	for (int k = 0; k < ni; k++)
		if (iv[k].alias < 0)
			g->unshared_bytes += iv[k].bytes;
	g->lower_bound = intervals_lower_bound(iv, ni, g->target->align);
	return g->lower_bound;
}

/* The intervals of the arena nodes of 'g' (alias: the owner's interval). */
Interval *graph_intervals(const Graph *g, int *n_iv, int **node_of)
{
	int n = g->n_node, k = 0;
	int *slot = alloc(sizeof(int) * (size_t)(n + 1));
	int *of = alloc(sizeof(int) * (size_t)(2 * n + 1));
	Interval *iv = alloc(sizeof(Interval) * (size_t)(2 * n + 1));
	for (int i = 0; i < n; i++) {
		const Node *nd = &g->node[i];
		slot[i] = -1;
		if (nd->sto != STO_ARENA)
			continue;
		if (nd->alias >= 0 && slot[nd->alias] < 0)
			die("node %d in place over %d, which is not in the arena", i, nd->alias);
		iv[k] = (Interval){nd->bytes, nd->first, nd->last,
		                   nd->alias >= 0 ? slot[nd->alias] : -1, nd->offset};
		of[k] = i;
		slot[i] = k++;
	}
	for (int i = 0; i < n; i++) {
		const Node *nd = &g->node[i];
		if (nd->scratch <= 0)
			continue;
		int s = exec_step(g, i);
		iv[k] = (Interval){nd->scratch, s, s, -1, nd->scratch_offset};
		of[k++] = -1 - i;
	}
	*n_iv = k;
	if (node_of)
		*node_of = of;
	return iv;
}

