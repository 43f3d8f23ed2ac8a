/* lower.c: make the implicit batch dimension explicit.
 *
 * Requires: a parsed forward graph (per-sample shapes, batch flags).
 * Fills:    Node.mm of every OP_MATMUL (and may swap its inputs), and checks
 *           that every tensor, at the chosen batch size, fits MAX_BYTES.
 *
 * A per-sample product becomes one matrix product over raw memory
 * C = op(L) op(R), repeated nb times (Matmul in gradc.h).  Where only one
 * operand carries the batch, the batch folds into a matrix dimension, so
 * `W @ x` over a batch is the single product X W^T ([B,k] x [k,m]^T), the
 * form the emitter can block for the cache; where both carry it, the
 * product repeats per sample.
 */
#include "gradc.h"

/* C = a @ b, per sample: [m,k]@[k], [k]@[k,n] or [m,k]@[k,n]. */
static void lower_matmul(Graph *g, Node *n)
{
	Node *a = &g->node[n->in[0]], *b = &g->node[n->in[1]];
	int64_t B = g->batch, ba = a->batched ? B : 1;
	Matmul mm = {.nb = 1};
	if (b->shape.rank == 1) {  /* [m,k] @ [k] */
		int64_t m = a->shape.dim[0], k = a->shape.dim[1];
		if (!a->batched) {  /* X[B,k] A^T */
			mm = (Matmul){.m = b->batched ? B : 1, .n = m, .k = k, .tb = true, .nb = 1};
			int t = n->in[0];
			n->in[0] = n->in[1];
			n->in[1] = t;
		} else if (!b->batched) {  /* A[B*m,k] b[k,1] */
			mm = (Matmul){.m = B * m, .n = 1, .k = k, .nb = 1};
		} else {  /* per sample A_i b_i */
			mm = (Matmul){.m = m, .n = 1, .k = k, .nb = B, .sl = m * k, .sr = k, .sc = m};
		}
	} else if (!b->batched) {  /* [k]@[k,n] or [m,k]@[k,n], R shared */
		int64_t m = a->shape.rank == 1 ? 1 : a->shape.dim[0];
		mm = (Matmul){.m = ba * m, .n = b->shape.dim[1], .k = b->shape.dim[0], .nb = 1};
	} else {  /* R per sample */
		int64_t m = a->shape.rank == 1 ? 1 : a->shape.dim[0];
		int64_t k = b->shape.dim[0], nn = b->shape.dim[1];
		mm = (Matmul){.m = m, .n = nn, .k = k, .nb = B, .sl = a->batched ? m * k : 0,
		              .sr = k * nn, .sc = m * nn};
	}
	n->mm = mm;
}

void lower(Graph *g)
{
	if (g->batch < 1)
		die("batch %d", g->batch);
	for (int i = 0; i < g->n_node; i++) {
		Node *n = &g->node[i];
		if (n->op == OP_MATMUL)
			lower_matmul(g, n);
		/* per-sample sizes were checked by the parser; the batch multiplies */
		if (n->batched && shape_numel(n->shape) > MAX_BYTES / 8 / g->batch)
			error_at(n->loc, "size overflow: '%s' %s at batch %d has more than %lld bytes",
			         node_label(g, i), shape_str(n->shape), g->batch,
			         (long long)MAX_BYTES);
	}
}
