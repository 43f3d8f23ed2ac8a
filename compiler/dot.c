/* dot.c: the graph as text: Graphviz DOT, and the one-line-per-node dumps.
 *
 * The DOT is the textbook's computational graph: inputs (blue), parameters
 * (orange boxes; frozen ones grey), literals, intermediates, the objective
 * (bold), then the backward pass in its own cluster (red, dashed), with
 * the gradients named after their forward nodes and the updates last.
 */
#include "gradc.h"

#include <string.h>

static const char *full_shape(const Node *n)
{
	const char *s = shape_str(n->shape);
	if (!n->batched)
		return s;
	return n->shape.rank ? str_fmt("[B, %s", s + 1) : "[B]";
}

static void dot_node(Buf *b, const Graph *g, int id, bool bwd)
{
	const Node *n = &g->node[id];
	const char *style = "shape=ellipse";
	if (n->op == OP_INPUT)
		style = "shape=ellipse, style=filled, fillcolor=lightblue";
	else if (n->op == OP_PARAM)
		style = n->frozen ? "shape=box, style=filled, fillcolor=lightgrey"
		                  : "shape=box, style=filled, fillcolor=orange";
	else if (op_kind[n->op] == K_LEAF)
		style = "shape=plaintext";
	else if (op_is(n->op, F_UPDATE))
		style = "shape=box, style=\"rounded,filled\", fillcolor=pink";
	else if (bwd)
		style = "shape=ellipse, color=red, fontcolor=red, style=dashed";
	else if (id == g->objective)
		style = "shape=doubleoctagon, style=bold";
	const char *name = n->name ? n->name : "";
	if (n->op == OP_CONST || n->op == OP_FILL)
		buf_printf(b, "  n%d [label=\"%s%s%g\", %s];\n", id, name, *name ? " = " : "",
		           n->attr[0], style);
	else if (n->op == OP_SCALE || n->op == OP_LEAKY_RELU || n->op == OP_LEAKY_RELU_GRAD)
		buf_printf(b, "  n%d [label=\"%s%s%s %g\\n%s\", %s];\n", id, name, *name ? ": " : "",
		           op_name[n->op], n->attr[0], full_shape(n), style);
	else
		buf_printf(b, "  n%d [label=\"%s%s%s\\n%s\", %s];\n", id, name, *name ? ": " : "",
		           op_name[n->op], full_shape(n), style);
}

static void dot_edges(Buf *b, const Graph *g, int id, bool bwd)
{
	const Node *n = &g->node[id];
	for (int k = 0; k < n->n_in; k++)
		buf_printf(b, "  n%d -> n%d%s;\n", n->in[k], id, bwd ? " [color=red]" : "");
}

void write_dot(Buf *b, const Graph *fwd, const Graph *bwd)
{
	buf_printf(b, "digraph \"%s\" {\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n",
	           fwd->model);
	/* literals folded into their users are left out */
	bool *used = alloc(sizeof(bool) * (size_t)fwd->n_node);
	for (int i = 0; i < fwd->n_node; i++)
		for (int k = 0; k < fwd->node[i].n_in; k++)
			used[fwd->node[i].in[k]] = true;
	buf_printf(b, "  subgraph cluster_forward {\n  label=\"forward\";\n");
	for (int i = 0; i < fwd->n_node; i++)
		if (used[i] || op_kind[fwd->node[i].op] != K_LEAF || fwd->node[i].op == OP_INPUT ||
		    fwd->node[i].op == OP_PARAM)
			dot_node(b, fwd, i, false);
	buf_printf(b, "  }\n");
	for (int i = 0; i < fwd->n_node; i++)
		dot_edges(b, fwd, i, false);
	if (bwd) {
		/* only the backward nodes that reach an update or a gradient */
		bool *live = alloc(sizeof(bool) * (size_t)bwd->n_node);
		for (int i = bwd->n_node - 1; i >= fwd->n_node; i--) {
			const Node *n = &bwd->node[i];
			live[i] |= op_is(n->op, F_UPDATE);
			if (live[i])
				for (int k = 0; k < n->n_in; k++)
					live[n->in[k]] = true;
		}
		buf_printf(b, "  subgraph cluster_backward {\n  label=\"backward and update\";\n"
		              "  color=red;\n  fontcolor=red;\n");
		for (int i = fwd->n_node; i < bwd->n_node; i++)
			if (live[i])
				dot_node(b, bwd, i, true);
		buf_printf(b, "  }\n");
		for (int i = fwd->n_node; i < bwd->n_node; i++)
			if (live[i])
				dot_edges(b, bwd, i, true);
	}
	buf_printf(b, "}\n");
}

void dump_graph(Buf *b, const Graph *g)
{
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		buf_printf(b, "%%%d = %s", i, op_name[n->op]);
		for (int k = 0; k < n->n_in; k++)
			buf_printf(b, "%s%%%d", k ? ", " : " ", n->in[k]);
		if (n->op == OP_CONST || n->op == OP_FILL || n->op == OP_SCALE ||
		    n->op == OP_LEAKY_RELU || n->op == OP_LEAKY_RELU_GRAD)
			buf_printf(b, " (%g)", n->attr[0]);
		buf_printf(b, "  %s%s", full_shape(n), dt_is_int(n->dtype) ? " int" : "");
		if (n->op == OP_MATMUL) {
			const Matmul *m = &n->mm;
			buf_printf(b, "  mm{%lldx%lldx%lld%s%s nb=%lld s=%lld,%lld,%lld%s}",
			           (long long)m->m, (long long)m->n, (long long)m->k, m->ta ? " ta" : "",
			           m->tb ? " tb" : "", (long long)m->nb, (long long)m->sl,
			           (long long)m->sr, (long long)m->sc, m->acc ? " acc" : "");
		}
		if (n->name)
			buf_printf(b, "  '%s'", n->name);
		if (n->fuse >= 0)
			buf_printf(b, "  fused->%%%d", n->fuse);
		if (n->sto == STO_ARENA)
			buf_printf(b, "  @%lld+%lld [%d,%d]", (long long)n->offset, (long long)n->bytes,
			           n->first, n->last);
		if (n->deriv)
			buf_printf(b, "  ; %s", n->deriv);
		buf_printf(b, "\n");
	}
}
