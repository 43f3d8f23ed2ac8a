/* fit.c: fitting a training-RAM budget (`--budget BYTES --fit`, SPEC 4) by
 * recomputing forward values during the backward pass and, only if that
 * is not enough, by micro-batches (not built yet; fitbuild.c drives it).
 *
 * Requires: a planned TRAIN or GRAD graph (schedule and plan done).
 * Gives:    a planned graph in which some forward values are not kept for
 *           the backward pass but computed again right before it needs them.
 *
 * 1. Candidates.  The forward values in the arena that a backward node
 *    reads ("kept" in the plain build), except what the caller reads at
 *    return (outputs, the loss: they live to the end anyway), a value some
 *    kernel writes over (Node.clobber), and a kernel that writes over its
 *    input (its copy would do it again).
 * 2. A plan drops a set D of candidates (recompute).  Every backward reader
 *    of a dropped value reads a copy of it instead.  A copy is an ordinary
 *    node: the same op, attributes, shape, Matmul form and fusion as the
 *    original (so the same kernel, the same operations in the same order:
 *    bit-identical values); its inputs are the originals where they are
 *    kept (a candidate not in D, or a value still alive there in the plain
 *    schedule) and copies otherwise (a dropped value, a value fused into it,
 *    a transient forward value), recursively.  One copy per original,
 *    shared by all its backward readers: for a chain this is the segment
 *    scheme of Chen et al. (a segment between kept values is recomputed
 *    once, when the backward pass reaches it).
 * 3. Placement.  Each copy runs right before the first kernel that needs it
 *    (a backward kernel, or another copy), copies in forward order: the
 *    plain schedule is kept and the copies inserted, so the scheduler's
 *    order and every hazard it placed stay; fused groups stay contiguous.
 *    A plan whose copy would read a parameter after its update, or an int
 *    label after any update, is refused.  Then plan() lays out the arena and
 *    verify_schedule/verify_plan check the result like any other.
 * 4. Search (fit_search).  Up to fit_all_max (12) candidates, every set D is
 *    tried and measured by the planner's own liveness (its lower bound): the
 *    plans found are optimal within this plan space, which holds every
 *    segmentation of a chain.  Beyond that, a chain gets the front of a
 *    dynamic program over segments (fitdp.c: optimal under its model of the
 *    peak, each plan then measured), any other graph a greedy: drop, one at
 *    a time, the candidate that lowers the peak most (ties: the fewest
 *    multiply-adds), a sound heuristic.  The
 *    cheapest plan whose arena fits is then planned for real (offsets); an
 *    arena above its lower bound that misses the limit moves on to the next.
 */
#include "gradc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

int fit_all_max = 12;

/* The candidates of planned graph g (forward values kept for backward),
 * in schedule order; *n of them. */
int *fit_candidates(const Graph *g, int *n)
{
	int nn = g->n_node, k = 0;
	bool *end = alloc(sizeof(bool) * (size_t)(nn + 1));
	bool *bwd_read = alloc(sizeof(bool) * (size_t)(nn + 1));
	bool *clobbered = alloc(sizeof(bool) * (size_t)(nn + 1));
	caller_reads(g, end);
	for (int i = 0; i < nn; i++) {
		const Node *nd = &g->node[i];
		if (nd->clobber)
			clobbered[nd->in[nd->clobber - 1]] = true;
		for (int j = 0; nd->backward && j < nd->n_in; j++)
			bwd_read[nd->in[j]] = true;
	}
	int *c = alloc(sizeof(int) * (size_t)(nn + 1));
	for (int i = 0; i < nn; i++) {
		const Node *nd = &g->node[i];
		if (!nd->backward && nd->sto == STO_ARENA && bwd_read[i] && !end[i] && !clobbered[i] &&
		    !nd->clobber && op_kind[nd->op] != K_LEAF)
			c[k++] = i;
	}
	*n = k;
	return c;
}

/* The step of the first node of the kernel (unit) that computes node i. */
static int unit_start(const Graph *g, int i)
{
	int r = exec_step(g, i), s = r;
	while (s > 0 && op_kind[g->node[s - 1].op] != K_LEAF && exec_step(g, s - 1) == r)
		s--;
	return s;
}

/* The graph with the values drop[id] recomputed for their backward readers,
 * scheduled (not planned); NULL if the plan is refused (see the header).
 * *macs: the multiply-adds of the copies. */
Graph *fit_recompute(const Graph *g, const bool *drop, int64_t *macs)
{
	int n = g->n_node;
	int *need = alloc(sizeof(int) * (size_t)n), *copy = alloc(sizeof(int) * (size_t)n);
	int *why = alloc(sizeof(int) * (size_t)n), *start = alloc(sizeof(int) * (size_t)n);
	bool *use_copy = alloc(sizeof(bool) * (size_t)n * MAX_IN);
	bool *cand = alloc(sizeof(bool) * (size_t)n);
	int nc, *cv = fit_candidates(g, &nc);
	for (int k = 0; k < nc; k++)
		cand[cv[k]] = true;
	for (int i = 0; i < n; i++) {
		need[i] = INT_MAX;
		copy[i] = why[i] = -1;
		start[i] = op_kind[g->node[i].op] == K_LEAF ? i : unit_start(g, i);
	}
	/* backward readers of dropped values */
	for (int r = 0; r < n; r++) {
		const Node *rn = &g->node[r];
		for (int k = 0; rn->backward && k < rn->n_in; k++) {
			int x = rn->in[k];
			if (!drop[x])
				continue;
			if (!cand[x])
				die("fit: %s is no candidate", node_label(g, x));
			if (start[r] < need[x]) {
				need[x] = start[r];
				why[x] = exec_step(g, r);
			}
		}
	}
	/* the closure, consumers first: what each copy reads */
	*macs = 0;
	int n_copy = 0;
	for (int x = n - 1; x >= 0; x--) {
		if (need[x] == INT_MAX)
			continue;
		const Node *xn = &g->node[x];
		if (xn->clobber || xn->backward || op_is(xn->op, F_UPDATE))
			return NULL;
		n_copy++;
		*macs += node_macs(g, xn);
		for (int k = 0; k < xn->n_in; k++) {
			int y = xn->in[k];
			const Node *yn = &g->node[y];
			if (op_kind[yn->op] == K_LEAF)
				continue;
			bool kept = yn->sto == STO_ARENA && !drop[y] && (cand[y] || yn->last >= need[x]);
			if (kept)
				continue;
			if (yn->sto != STO_ARENA && fused_into(g, y) != x)
				return NULL;
			use_copy[x * MAX_IN + k] = true;
			if (need[x] < need[y]) {
				need[y] = need[x];
				why[y] = why[x];
			}
		}
	}
	/* hazards: a copy reads a parameter before its update, labels before
	 * every update */
	for (int u = 0; u < n; u++) {
		if (!op_is(g->node[u].op, F_UPDATE))
			continue;
		int q = start[u], p = g->node[u].in[0];
		for (int x = 0; x < n; x++) {
			if (need[x] == INT_MAX || need[x] <= q)
				continue;
			for (int k = 0; k < g->node[x].n_in; k++) {
				const Node *y = &g->node[g->node[x].in[k]];
				if (g->node[x].in[k] == p || (y->op == OP_INPUT && dt_is_int(y->dtype)))
					return NULL;
			}
		}
	}
	/* the copies, appended in forward order */
	Graph *f = copy_graph(g);
	f->node = alloc_grow(f->node, sizeof(Node) * (size_t)n, sizeof(Node) * (size_t)(n + n_copy + 1));
	f->cap = n + n_copy + 1;
	for (int x = 0; x < n; x++) {
		if (need[x] == INT_MAX)
			continue;
		copy[x] = f->n_node++;
		Node *c = &f->node[copy[x]];
		*c = g->node[x];
		for (int k = 0; k < c->n_in; k++)
			if (use_copy[x * MAX_IN + k])
				c->in[k] = copy[c->in[k]];
		if (c->fuse >= 0) {
			int into = fused_into(g, x);
			if (into < 0 || copy[into] >= 0 || need[into] == INT_MAX)
				return NULL; /* (its consumer is copied after it, so copy[] is unset) */
		}
		c->side = -1;
		c->recomputed = true;
		c->note = str_fmt("(recomputed for the backward pass of %s)", node_label(g, why[x]));
	}
	for (int x = 0; x < n; x++)  /* the fused copies' consumers now exist */
		if (copy[x] >= 0 && g->node[x].fuse >= 0)
			f->node[copy[x]].fuse = copy[fused_into(g, x)];
	for (int r = 0; r < n; r++) {
		Node *rn = &f->node[r];
		for (int k = 0; rn->backward && k < rn->n_in; k++)
			if (drop[rn->in[k]])
				rn->in[k] = copy[rn->in[k]];
	}
	/* the order: each copy right before the kernel that needs it first */
	int m = f->n_node, pos = 0;
	int *new_id = alloc(sizeof(int) * (size_t)m);
	for (int p = 0; p < n; p++) {
		for (int x = 0; x < n; x++)
			if (need[x] == p)
				new_id[copy[x]] = pos++;
		new_id[p] = pos++;
	}
	remap_ids(f, new_id);
	for (int i = 0; i < f->n_node; i++)
		f->node[i].n_use = 0;
	for (int i = 0; i < f->n_node; i++)
		for (int k = 0; k < f->node[i].n_in; k++)
			f->node[f->node[i].in[k]].n_use++;
	return f;
}

/* ---- the search */

typedef struct Trial {
	bool *drop;     /* per node id */
	int64_t lb;     /* liveness lower bound of the arena */
	int64_t macs;   /* extra multiply-adds */
	bool failed;    /* planned above the limit */
} Trial;

static int cmp_trial(const void *a, const void *b)
{
	const Trial *x = a, *y = b;
	if (x->macs != y->macs)
		return x->macs < y->macs ? -1 : 1;
	return (x->lb > y->lb) - (x->lb < y->lb);
}

/* Measure the plan dropping 'drop': fills t (lb < 0: refused). */
static void measure(const Graph *g, const bool *drop, Trial *t)
{
	int n = g->n_node;
	t->drop = alloc(sizeof(bool) * (size_t)n);
	memcpy(t->drop, drop, sizeof(bool) * (size_t)n);
	AllocMark mk = alloc_mark();
	int64_t macs;
	Graph *f = fit_recompute(g, drop, &macs);
	t->lb = f ? liveness(f) : -1;
	t->macs = macs;
	alloc_release(mk);
}

/* Every plan tried for g: all, the DP front of a chain, or greedy (the
 * header); *n_out. */
static Trial *trials(const Graph *g, int *n_out, FitSearch *search)
{
	int nc, *c = fit_candidates(g, &nc), n = g->n_node, k = 0;
	bool *drop = alloc(sizeof(bool) * (size_t)n);
	Trial *t;
	*search = nc <= fit_all_max ? FIT_ALL : FIT_GREEDY;
	int nf = 0;
	bool **front = *search == FIT_GREEDY ? fit_chain_front(g, 256, &nf) : NULL;
	if (front) {  /* a chain: the DP's front (fitdp.c), and the plain plan */
		*search = FIT_DP;
		t = alloc(sizeof(Trial) * (size_t)(nf + 1));
		measure(g, drop, &t[k++]);
		for (int j = 0; j < nf; j++)
			measure(g, front[j], &t[k++]);
	} else if (*search == FIT_ALL) {
		t = alloc(sizeof(Trial) * ((size_t)1 << nc));
		for (unsigned mask = 0; mask < (1u << nc); mask++) {
			for (int j = 0; j < nc; j++)
				drop[c[j]] = mask >> j & 1;
			measure(g, drop, &t[k++]);
		}
	} else {
		t = alloc(sizeof(Trial) * (size_t)(nc + 1));
		measure(g, drop, &t[k++]);
		for (;;) {
			Trial best = {.lb = -1}, cur = t[k - 1];
			for (int j = 0; j < nc; j++) {
				if (drop[c[j]])
					continue;
				drop[c[j]] = true;
				Trial x;
				measure(g, drop, &x);
				drop[c[j]] = false;
				if (x.lb >= 0 && (best.lb < 0 || x.lb < best.lb ||
				                  (x.lb == best.lb && x.macs < best.macs)))
					best = x;
			}
			if (best.lb < 0 || best.lb >= cur.lb)
				break;
			t[k++] = best;
			memcpy(drop, best.drop, sizeof(bool) * (size_t)n);
		}
	}
	int m = 0;
	for (int i = 0; i < k; i++)
		if (t[i].lb >= 0)
			t[m++] = t[i];
	qsort(t, (size_t)m, sizeof(Trial), cmp_trial);
	*n_out = m;
	return t;
}

/* The planned graph of the cheapest plan whose arena is at most 'limit'
 * (the plain graph itself if it fits), or NULL; *least: the smallest
 * arena lower bound of every plan tried. */
Graph *fit_search(const Graph *g, int64_t limit, FitPlan *p, int64_t *least)
{
	memset(p, 0, sizeof *p);
	if (g->arena_bytes <= limit) {
		fit_describe(g, g, NULL, p);
		*least = g->arena_bytes;
		return (Graph *)g;
	}
	int nt;
	FitSearch search;
	Trial *t = trials(g, &nt, &search);
	p->search = search;
	p->macs = graph_macs(g);
	for (int i = 0; i < nt; i++) {
		if (t[i].lb > limit)
			continue;
		int64_t macs;
		Graph *f = fit_recompute(g, t[i].drop, &macs);
		plan(f);
		verify_schedule(f);
		if (f->arena_bytes > limit)
			continue;
		fit_describe(g, f, t[i].drop, p);
		p->search = search;
		*least = f->arena_bytes;
		return f;
	}
	/* none fits: the smallest arena any plan reaches, planned */
	*least = g->arena_bytes;
	for (int i = 0; i < nt; i++) {
		if (t[i].lb >= *least)
			continue;
		AllocMark mk = alloc_mark();
		int64_t macs;
		Graph *f = fit_recompute(g, t[i].drop, &macs);
		plan(f);
		int64_t a = f->arena_bytes;
		alloc_release(mk);
		if (a < *least) {
			*least = a;
			Graph *h = fit_recompute(g, t[i].drop, &macs);  /* kept: describes it */
			plan(h);
			fit_describe(g, h, t[i].drop, p);
			p->search = search;
		}
	}
	return NULL;
}

/* The trade-off curve of g: planned arenas and extra multiply-adds from
 * the plain build down to the smallest arena, each point the cheapest plan
 * at that arena; *n points, in decreasing arena.  */
FitPoint *fit_curve(const Graph *g, int *n)
{
	int nt, k = 0;
	FitSearch search;
	Trial *t = trials(g, &nt, &search);
	FitPoint *pt = alloc(sizeof(FitPoint) * (size_t)(nt + 2));
	pt[k++] = (FitPoint){g->arena_bytes, 0, 0};
	/* t is by macs: each plan smaller than every cheaper one is on the curve */
	int64_t best = g->arena_bytes;
	for (int i = 0; i < nt; i++) {
		if (t[i].lb >= best)
			continue;
		AllocMark mk = alloc_mark();
		int64_t macs;
		Graph *f = fit_recompute(g, t[i].drop, &macs);
		plan(f);
		int64_t arena = f->arena_bytes;
		int ncopy = 0;
		for (int j = 0; j < f->n_node; j++)
			ncopy += f->node[j].recomputed;
		alloc_release(mk);
		if (arena >= best)
			continue;
		best = arena;
		pt[k++] = (FitPoint){arena, macs, ncopy};
	}
	*n = k;
	return pt;
}

/* Fill p from the fitted graph f of plain graph g. */
void fit_describe(const Graph *g, const Graph *f, const bool *drop, FitPlan *p)
{
	int nc, *c = fit_candidates(g, &nc);
	p->n_cand = nc;
	p->cand = alloc(sizeof(const char *) * (size_t)(nc + 1));
	p->cand_bytes = alloc(sizeof(int64_t) * (size_t)(nc + 1));
	p->drop = alloc(sizeof(bool) * (size_t)(nc + 1));
	for (int k = 0; k < nc; k++) {
		p->cand[k] = node_label(g, c[k]);
		p->cand_bytes[k] = g->node[c[k]].bytes;
		p->drop[k] = drop && drop[c[k]];
	}
	p->extra_macs = 0;
	p->n_copy = 0;
	for (int i = 0; i < f->n_node; i++)
		if (f->node[i].recomputed) {
			p->n_copy++;
			p->extra_macs += node_macs(f, &f->node[i]);
		}
	p->macs = graph_macs(g);
	p->arena = f->arena_bytes;
}
