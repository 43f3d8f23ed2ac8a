/* kernel.c: kernel records, the loop decisions the emitter prints.
 *
 * Requires: a scheduled graph (each root's fused members right before it,
 *           verify_schedule) and its target row.
 * Fills:    nothing in the graph; emit.c hands each record to Lua with
 *           its root (Node table fields 'loops', 'unroll', 'groups').
 *
 * An elementwise group (a root that is elementwise or an optimizer update,
 * no product or convolution among its members) runs as one loop nest over
 * the root's full index space (batch first).  ew_loops chooses its shape:
 *   1. the dimensions of extent 1 go;
 *   2. two neighbouring dimensions merge into one loop when the root and
 *      every operand read from outside the group (literals are folded into
 *      the formula) are laid out contiguously across them (NumPy strides,
 *      bcast_strides: a broadcast operand's zero strides keep its
 *      dimensions apart);
 *   3. in a nest of two or more loops, the innermost is unrolled when it
 *      spans at most two vectors of the target (the compiler then keeps
 *      the rows in registers).
 * The Lua emitter (group.lua, ew_group) prints the nest it is given; the
 * operands' offsets within it are its own arithmetic on the strides.
 *
 * Reductions: reduce_to sums its input into its shape over the input's
 * index space, its dimensions merged likewise (reduce_loops); a per-sample
 * sum, mean or sum of squares of m elements keeps 4 groups of a vector of
 * independent sums past 8 vectors, one group from 2, a plain sum below
 * (reduce_groups: several vector additions in flight, kernels.lua's
 * lane_sum).
 *
 * A row form's range (conv.lua: the output columns a tap reads in range,
 * a pool's columns) runs as inner loops of constant width, the target's
 * vector and then halves of it down to 4, which GCC vectorizes
 * (GRADC_VECTOR), then the rest, at most 3, one by one (lane_chunks).
 *
 * Limits: the products' and convolutions' tiles are select.c's and
 * select_conv.c's.
 */
#include "gradc.h"

/* Is node 'id' a literal the formula folds in (no array to index)? */
static bool is_literal(const Graph *g, int id)
{
	return g->node[id].op == OP_CONST || g->node[id].op == OP_FILL;
}

/* Merge the dimensions dim[0..rank) into loops: the dimensions of extent 1
 * go, and loop[n - 1] absorbs dimension k when each of the n_list arrays
 * (strides list[l]) steps over it by its stride there times the extent;
 * returns the loop count.  */
static int merge_loops(int rank, const int64_t *dim, int64_t (*list)[MAX_RANK + 1], int n_list,
		       int64_t loop[MAX_RANK + 1])
{
	int64_t *s = alloc(sizeof *s * (size_t)n_list); /* each array's innermost stride so far */
	int n = 0;
	for (int k = 0; k < rank; k++) {
		if (dim[k] == 1)
			continue;
		bool merge = n > 0;
		for (int l = 0; l < n_list && merge; l++)
			merge = s[l] == list[l][k] * dim[k];
		if (merge)
			loop[n - 1] *= dim[k];
		else
			loop[n++] = dim[k];
		for (int l = 0; l < n_list; l++)
			s[l] = list[l][k];
	}
	return n;
}

int ew_loops(const Graph *g, int first, int r, int lanes, int64_t loop[MAX_RANK + 1],
	     bool *unroll)
{
	int64_t dim[MAX_RANK + 1];
	int rank = full_dims(g, &g->node[r], dim);
	/* the strides of every array the group reads or writes, per dimension */
	int cap = 1 + (r - first + 1) * MAX_IN, n_list = 0;
	int64_t(*list)[MAX_RANK + 1] = alloc(sizeof *list * (size_t)cap);
	int64_t acc = 1;
	for (int k = rank - 1; k >= 0; k--) {
		list[0][k] = acc;
		acc *= dim[k];
	}
	n_list = 1;
	for (int m = first; m <= r; m++) {
		const Node *n = &g->node[m];
		for (int k = 0; k < n->n_in; k++)
			if (!(n->in[k] >= first && n->in[k] < r) && !is_literal(g, n->in[k]))
				bcast_strides(g, n, &g->node[n->in[k]], list[n_list++]);
	}
	int n = merge_loops(rank, dim, list, n_list, loop);
	*unroll = n > 1 && loop[n - 1] <= 2 * lanes;
	return n;
}

int reduce_loops(const Graph *g, const Node *n, int64_t loop[MAX_RANK + 1])
{
	const Node *x = &g->node[n->in[0]];
	int64_t dim[MAX_RANK + 1], list[2][MAX_RANK + 1];
	int rank = full_dims(g, x, dim);
	int64_t acc = 1;
	for (int k = rank - 1; k >= 0; k--) {
		list[0][k] = acc;
		acc *= dim[k];
	}
	bcast_strides(g, x, n, list[1]);
	return merge_loops(rank, dim, list, 2, loop);
}

int reduce_groups(int64_t m, int lanes)
{
	return m >= 8 * lanes ? 4 : m >= 2 * lanes ? 1 : 0;
}

int64_t lane_chunks(int64_t j0, int64_t j1, int64_t lanes, int64_t chunk[][3], int *n)
{
	int64_t at = j0, w = lanes;
	*n = 0;
	while (j1 - at >= 4 && w >= 4) {
		while (w > j1 - at)
			w /= 2;
		if (w < 4)
			break;
		int64_t count = (j1 - at) / w;
		chunk[*n][0] = at, chunk[*n][1] = count, chunk[*n][2] = w;
		(*n)++;
		at += count * w;
	}
	return at;
}
