/* schedule.c: choose the order of the kernels (a topological order).
 *
 * Requires: a graph in some topological order; Node.fuse from optimize (or
 *           -1 everywhere).
 * Changes:  the node array, into schedule order: every id is renumbered
 *           (Node.in/fuse/fwd/grad, Graph.objective/loss/out/track/
 *           track_mean).  Invalidates a previous plan.
 *
 * Algorithm:
 *   1. Units.  A node and the nodes fused into it (transitively) run as one
 *      kernel, so they are one unit, laid out contiguously: the fused nodes
 *      in their old order, then the node that owns the loop.  Leaves
 *      (inputs, parameters, literals) take no step of their own and come
 *      first.
 *   2. Constraints between units: data (a unit after the producers of what
 *      it reads); side sums (a sumsq after the product that sums it,
 *      Node.side); write-after-read (the update of parameter P after every
 *      other unit that reads P: dh = W2^T do before W2 changes); status
 *      (every update after the loss and after every reader of an int label,
 *      so a bad label or a non-finite objective leaves the parameters as
 *      they were).
 *   3. List scheduling: repeatedly pick a ready unit.  A ready update always
 *      goes first (its gradient dies at once).  Otherwise a priority picks
 *      among the ready units; four are tried — the old order, the most bytes
 *      freed minus allocated, depth first (the unit reading the most recent
 *      value), and the smallest allocation — ties broken by old id.
 *   4. Each candidate order is planned for liveness (live.c, with
 *      in-place reuse) and the one with the lowest peak wins (ties: the
 *      earlier candidate, so the result is deterministic).
 *
 * Limits: a greedy heuristic; minimizing the peak over all topological
 * orders is NP-hard.  Branches (residuals, shared inputs) can end above
 * the best order; chains (MLPs) are scheduled as a person would.  Byte
 * counts during the search estimate in-place reuse by size only; the final
 * choice uses the exact liveness.
 */
#include "gradc.h"

#include <string.h>

/* A growable int list in the compiler arena. */
typedef struct List {
	int *v;
	int n, cap;
} List;

static void push(List *l, int x)
{
	if (l->n == l->cap) {
		int cap = l->cap ? 2 * l->cap : 4;
		l->v = alloc_grow(l->v, sizeof(int) * (size_t)l->n, sizeof(int) * (size_t)cap);
		l->cap = cap;
	}
	l->v[l->n++] = x;
}

static void push_unique(List *l, int x)
{
	for (int i = 0; i < l->n; i++)
		if (l->v[i] == x)
			return;
	push(l, x);
}

typedef struct Sched {
	const Graph *g;
	int n;
	int *unit;      /* the unit (its loop's node id) of each node; -1: leaf */
	List *succ;     /* per unit: units that must come after it */
	List *members;  /* per unit: its nodes in old order, the root last */
	List *reads;    /* per unit: values (non-leaf nodes) read from other units */
	List *readers;  /* per value: the units reading it */
	int64_t *size;  /* per node: arena bytes its value needs (0: none) */
	bool *end;      /* per node: read by the caller at return */
} Sched;

enum { P_ORDER, P_NET, P_DEPTH, P_SMALL, N_POLICY };

static bool is_leaf(const Graph *g, int id)
{
	return op_kind[g->node[id].op] == K_LEAF;
}

static void add_edge(Sched *s, int from, int to)
{
	if (from >= 0 && to >= 0 && from != to)
		push_unique(&s->succ[from], to);
}

/* Units, values read, and the data edges. */
static void build_units(Sched *s)
{
	const Graph *g = s->g;
	for (int i = 0; i < s->n; i++) {
		s->unit[i] = is_leaf(g, i) ? -1 : exec_step(g, i);
		if (s->unit[i] >= 0)
			push(&s->members[s->unit[i]], i);
	}
	for (int i = 0; i < s->n; i++) {
		const Node *nd = &g->node[i];
		for (int k = 0; k < nd->n_in; k++) {
			int x = nd->in[k];
			if (s->unit[x] < 0 || s->unit[x] == s->unit[i])
				continue;
			add_edge(s, s->unit[x], s->unit[i]);
			push_unique(&s->reads[s->unit[i]], x);
			push_unique(&s->readers[x], s->unit[i]);
		}
	}
}

/* Write-after-read and status edges into every update's unit. */
static void build_hazards(Sched *s)
{
	const Graph *g = s->g;
	for (int u = 0; u < s->n; u++) {
		if (!op_is(g->node[u].op, F_UPDATE))
			continue;
		int p = g->node[u].in[0], uu = s->unit[u];
		for (int i = 0; i < s->n; i++) {
			const Node *nd = &g->node[i];
			for (int k = 0; k < nd->n_in; k++) {
				const Node *x = &g->node[nd->in[k]];
				if (nd->in[k] == p || (x->op == OP_INPUT && dt_is_int(x->dtype)))
					add_edge(s, s->unit[i], uu);
			}
		}
		if (g->loss >= 0)
			add_edge(s, s->unit[g->loss], uu);
	}
	/* a side sum (select.c) is stored by its own kernel after the product's */
	for (int i = 0; i < s->n; i++)
		if (g->node[i].side >= 0)
			add_edge(s, s->unit[i], s->unit[g->node[i].side]);
}

static void build_sizes(Sched *s)
{
	Graph *tmp = copy_graph(s->g);
	assign_storage(tmp);
	for (int i = 0; i < s->n; i++) {
		int64_t b = tmp->node[i].sto == STO_ARENA ? node_bytes(tmp, &tmp->node[i]) : 0;
		s->size[i] = align_up(tmp, b);
	}
	caller_reads(tmp, s->end);
}

/* Bytes freed and allocated by running unit 'u' now. */
static void unit_bytes(const Sched *s, int u, const int *left, int64_t *freed, int64_t *allocd)
{
	const Node *nd = &s->g->node[u];
	bool inplace = op_is(nd->op, F_INPLACE);
	*freed = 0;
	*allocd = s->size[u];
	for (int i = 0; i < s->reads[u].n; i++) {
		int x = s->reads[u].v[i];
		if (left[x] != 1 || s->end[x] || !s->size[x])
			continue;
		*freed += s->size[x];
		for (int j = 0; inplace && j < nd->n_in; j++)
			if (nd->in[j] == x && s->size[x] == s->size[u])
				*allocd = 0;  /* in place, probably */
	}
}

/* Is ready unit 'a' preferred to 'b' under 'policy'? */
static bool better(const Sched *s, int policy, int a, int b, const int *left, const int *pos)
{
	int64_t fa, aa, fb, ab;
	if (policy == P_ORDER)
		return a < b;
	unit_bytes(s, a, left, &fa, &aa);
	unit_bytes(s, b, left, &fb, &ab);
	if (policy == P_DEPTH) {
		int ra = -1, rb = -1;
		for (int i = 0; i < s->reads[a].n; i++)
			ra = pos[s->reads[a].v[i]] > ra ? pos[s->reads[a].v[i]] : ra;
		for (int i = 0; i < s->reads[b].n; i++)
			rb = pos[s->reads[b].v[i]] > rb ? pos[s->reads[b].v[i]] : rb;
		if (ra != rb)
			return ra > rb;
	}
	if (policy == P_SMALL && aa != ab)
		return aa < ab;
	if (fa - aa != fb - ab)
		return fa - aa > fb - ab;
	return a < b;
}

/* A list schedule of the units under 'policy'; fills order[] with node
 * ids (leaves, then each unit's members and its root).  */
static void list_schedule(const Sched *s, int policy, int *order)
{
	int n = s->n, k = 0, n_ready = 0, done = 0, n_units = 0;
	int *indeg = alloc(sizeof(int) * (size_t)n), *left = alloc(sizeof(int) * (size_t)n);
	int *pos = alloc(sizeof(int) * (size_t)n), *ready = alloc(sizeof(int) * (size_t)n);
	for (int i = 0; i < n; i++) {
		left[i] = s->readers[i].n;
		pos[i] = -1;
		if (s->unit[i] < 0)
			order[k++] = i;
		else if (s->unit[i] == i)
			n_units++;
	}
	for (int u = 0; u < n; u++)
		for (int j = 0; j < s->succ[u].n; j++)
			indeg[s->succ[u].v[j]]++;
	for (int u = 0; u < n; u++)
		if (s->unit[u] == u && indeg[u] == 0)
			ready[n_ready++] = u;
	for (; done < n_units; done++) {
		if (n_ready == 0)
			die("schedule: the constraints form a cycle");
		int best = 0;
		for (int r = 1; r < n_ready; r++) {
			bool ub = op_is(s->g->node[ready[best]].op, F_UPDATE);
			bool ur = op_is(s->g->node[ready[r]].op, F_UPDATE);
			if (ur != ub ? ur : better(s, policy, ready[r], ready[best], left, pos))
				best = r;
		}
		int u = ready[best];
		ready[best] = ready[--n_ready];
		for (int i = 0; i < s->members[u].n; i++) {
			pos[s->members[u].v[i]] = k;
			order[k++] = s->members[u].v[i];
		}
		for (int i = 0; i < s->reads[u].n; i++)
			left[s->reads[u].v[i]]--;
		for (int j = 0; j < s->succ[u].n; j++)
			if (--indeg[s->succ[u].v[j]] == 0)
				ready[n_ready++] = s->succ[u].v[j];
	}
	if (k != n)
		die("schedule: %d of %d nodes placed", k, n);
}

/* Graph 'g' with its nodes in 'order' (old ids), every id renumbered. */
static void apply_order(Graph *g, const int *order)
{
	int *new_id = alloc(sizeof(int) * (size_t)g->n_node);
	for (int i = 0; i < g->n_node; i++)
		new_id[order[i]] = i;
	remap_ids(g, new_id);
}

/* The pass: build the units and constraints, list-schedule under each
 * policy, keep the order with the lowest liveness peak.  */
void schedule(Graph *g)
{
	int n = g->n_node;
	if (n == 0)
		return;
	Sched s = {.g = g, .n = n};
	s.unit = alloc(sizeof(int) * (size_t)n);
	s.succ = alloc(sizeof(List) * (size_t)n);
	s.members = alloc(sizeof(List) * (size_t)n);
	s.reads = alloc(sizeof(List) * (size_t)n);
	s.readers = alloc(sizeof(List) * (size_t)n);
	s.size = alloc(sizeof(int64_t) * (size_t)n);
	s.end = alloc(sizeof(bool) * (size_t)n);
	build_units(&s);
	build_hazards(&s);
	build_sizes(&s);

	int *best = NULL, *order = NULL;
	int64_t best_peak = -1;
	for (int p = 0; p < N_POLICY; p++) {
		order = alloc(sizeof(int) * (size_t)n);
		list_schedule(&s, p, order);
		Graph *t = copy_graph(g);
		apply_order(t, order);
		int64_t peak = liveness(t);
		if (best_peak < 0 || peak < best_peak) {
			best_peak = peak;
			best = order;
		}
	}
	apply_order(g, best);
	verify_schedule(g);
}

/* Check the order: topological, fused groups contiguous, hazards kept. */
void verify_schedule(const Graph *g)
{
	int n = g->n_node;
	for (int i = 0; i < n; i++) {
		const Node *nd = &g->node[i];
		for (int k = 0; k < nd->n_in; k++)
			if (nd->in[k] >= i)
				die("node %d (%s) reads node %d", i, node_label(g, i), nd->in[k]);
		int c = fused_into(g, i);
		for (int j = i + 1; c >= 0 && j < c; j++)
			if (!is_leaf(g, j) && exec_step(g, j) != exec_step(g, c))
				die("%s is fused into %s, but %s runs between them", node_label(g, i),
				    node_label(g, c), node_label(g, j));
		if (nd->side >= 0 && exec_step(g, nd->side) <= exec_step(g, i))
			die("%s is summed in the kernel of %s, which runs after it", node_label(g, nd->side),
			    node_label(g, i));
		if (!op_is(nd->op, F_UPDATE))
			continue;
		int p = nd->in[0], su = exec_step(g, i);
		for (int r = 0; r < n; r++) {
			const Node *rn = &g->node[r];
			for (int k = 0; k < rn->n_in; k++)
				if (rn->in[k] == p && r != i && exec_step(g, r) != su && exec_step(g, r) > su)
					die("%s reads %s after its update", node_label(g, r), node_label(g, p));
		}
		if (g->loss >= 0 && exec_step(g, g->loss) > su)
			die("update of %s before the loss", node_label(g, p));
	}
}
