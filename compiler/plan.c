/* plan.c: offsets in one arena for the live ranges of live.c, and the verifier.
 *
 * Requires: a scheduled graph (node id == schedule step), Node.fuse from
 *           optimize (or -1 everywhere: everything then gets memory).
 * Fills:    Node.sto/offset/bytes/first/last/alias; Graph.arena_bytes,
 *           lower_bound, unshared_bytes.
 *
 * 1-3. Storage, live ranges and in-place aliases: live.c (liveness), the
 *    same facts the scheduler's cost model uses.
 * 4. Offsets (plan_intervals).  Allocations are rounded up to the target's alignment.  The
 *    lower bound is the peak, over steps, of the bytes live at that step.
 *    Each allocation in turn goes into the lowest/smallest gap among the
 *    already placed allocations whose live ranges intersect its own (first
 *    fit and best fit), for several orderings (size descending — TFLM's
 *    greedy planner —, start, duration, end, area); the smallest arena
 *    wins.  If it is above the lower bound, a deterministic local search
 *    moves the allocations that touch the top of the arena earlier in the
 *    order and keeps what does not grow the arena, until the bound is met
 *    or its budget runs out.
 * 5. verify_plan re-derives every read from the graph and checks that each
 *    happens inside the value's live range, that allocations live at the
 *    same step do not overlap, and that all are aligned and in the arena.
 *
 * Limits: offset assignment is NP-hard in general (dynamic storage
 * allocation); the search is a heuristic and can end above the lower bound
 * on adversarial interval sets — the gap is then reported, never hidden.
 * In-place reuse is greedy (first eligible input, in schedule order).
 */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>

/* ---- intervals */

/* An allocation: the union of the live ranges of its members. */
typedef struct Alloc {
	int64_t bytes;
	int first, last;
	int64_t offset;
} Alloc;

/* The interval owning the allocation that interval 'i' writes into. */
static int root_of(const Interval *iv, int n, int i)
{
	for (int k = 0; iv[i].alias >= 0; k++) {
		if (k > n || iv[i].alias >= n)
			die("interval %d: bad alias chain", i);
		i = iv[i].alias;
	}
	return i;
}

/* Merge the in-place chains: one Alloc per root; root[i] maps each
 * interval to its allocation's index.  Returns the number of allocations. */
static int merge(const Interval *iv, int n, int align, Alloc *a, int *root)
{
	int na = 0;
	int *slot = alloc(sizeof(int) * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++) {
		if (iv[i].first > iv[i].last || iv[i].bytes <= 0)
			die("interval %d: range %d..%d, %lld bytes", i, iv[i].first, iv[i].last,
			    (long long)iv[i].bytes);
		slot[i] = -1;
		if (iv[i].alias < 0) {
			slot[i] = na;
			a[na++] = (Alloc){round_to(iv[i].bytes, align), iv[i].first, iv[i].last, 0};
		}
	}
	for (int i = 0; i < n; i++) {
		int r = root_of(iv, n, i);
		Alloc *al = &a[slot[r]];
		if (round_to(iv[i].bytes, align) != al->bytes)
			die("interval %d: in place over %lld bytes with %lld", i,
			    (long long)al->bytes, (long long)iv[i].bytes);
		if (iv[i].alias >= 0 && iv[iv[i].alias].last > iv[i].first)
			die("interval %d: in place over %d, still live at %d", i, iv[i].alias,
			    iv[i].first);
		al->first = iv[i].first < al->first ? iv[i].first : al->first;
		al->last = iv[i].last > al->last ? iv[i].last : al->last;
		root[i] = slot[r];
	}
	return na;
}

typedef struct Event {
	int t;
	int64_t d;
} Event;

static int cmp_event(const void *x, const void *y)
{
	const Event *a = x, *b = y;
	return (a->t > b->t) - (a->t < b->t);
}

/* Peak over steps of the bytes of allocations live at that step. */
static int64_t peak_bytes(const Alloc *a, int na)
{
	Event *ev = alloc(sizeof(Event) * (size_t)(2 * na + 1));
	for (int i = 0; i < na; i++) {
		ev[2 * i] = (Event){a[i].first, a[i].bytes};
		ev[2 * i + 1] = (Event){a[i].last + 1, -a[i].bytes};
	}
	qsort(ev, (size_t)(2 * na), sizeof(Event), cmp_event);
	int64_t cur = 0, peak = 0;
	for (int i = 0; i < 2 * na;) {
		int t = ev[i].t;
		for (; i < 2 * na && ev[i].t == t; i++)
			cur += ev[i].d;
		peak = cur > peak ? cur : peak;
	}
	return peak;
}

/* The lower bound of intervals 'iv': the peak of live rounded bytes. */
int64_t intervals_lower_bound(const Interval *iv, int n, int align)
{
	Alloc *a = alloc(sizeof(Alloc) * (size_t)(n ? n : 1));
	int *root = alloc(sizeof(int) * (size_t)(n ? n : 1));
	return peak_bytes(a, merge(iv, n, align, a, root));
}

/* ---- placement */

typedef struct Span {
	int64_t lo, hi;
} Span;

static int cmp_span(const void *x, const void *y)
{
	const Span *a = x, *b = y;
	return (a->lo > b->lo) - (a->lo < b->lo);
}

static bool meet(const Alloc *a, const Alloc *b)
{
	return a->first <= b->last && b->first <= a->last;
}

/* Place the allocations in 'order', each at the lowest gap (or, best fit,
 * the smallest gap) left by the placed ones it meets.  Fills off[];
 * returns the arena size.  'sp' is scratch for na spans.  */
static int64_t place(const Alloc *a, int na, const int *order, bool best_fit,
                     int64_t *off, Span *sp)
{
	int64_t arena = 0;
	for (int k = 0; k < na; k++) {
		const Alloc *x = &a[order[k]];
		int ns = 0;
		for (int j = 0; j < k; j++) {
			const Alloc *y = &a[order[j]];
			if (meet(x, y))
				sp[ns++] = (Span){off[order[j]], off[order[j]] + y->bytes};
		}
		qsort(sp, (size_t)ns, sizeof(Span), cmp_span);
		int64_t pos = 0, best = -1, best_gap = 0;
		for (int j = 0; j < ns; j++) {
			int64_t gap = sp[j].lo - pos;
			if (gap >= x->bytes && (best < 0 || (best_fit && gap < best_gap))) {
				best = pos;
				best_gap = gap;
				if (!best_fit)
					break;
			}
			pos = sp[j].hi > pos ? sp[j].hi : pos;
		}
		off[order[k]] = best >= 0 ? best : pos;
		if (off[order[k]] + x->bytes > arena)
			arena = off[order[k]] + x->bytes;
	}
	return arena;
}

/* Orderings to try; each a total order (ties by index, so deterministic). */
enum { BY_SIZE, BY_START, BY_DURATION, BY_END, BY_AREA, BY_START_LATE, N_BY };

static const Alloc *sort_a;
static int sort_by;

static int64_t sort_key(const Alloc *x, int by, int tie)
{
	int64_t d = x->last - x->first + 1;
	switch (by) {
	case BY_SIZE: return tie ? -x->first : x->bytes;
	case BY_START: return tie ? x->bytes : -x->first;
	case BY_DURATION: return tie ? x->bytes : d;
	case BY_END: return tie ? x->bytes : x->last;
	case BY_AREA: return tie ? x->bytes : x->bytes * d;
	default: return tie ? x->bytes : x->first;
	}
}

/* Descending key, then descending tie key, then ascending index. */
static int cmp_order(const void *p, const void *q)
{
	int i = *(const int *)p, j = *(const int *)q;
	for (int tie = 0; tie < 2; tie++) {
		int64_t a = sort_key(&sort_a[i], sort_by, tie), b = sort_key(&sort_a[j], sort_by, tie);
		if (a != b)
			return a > b ? -1 : 1;
	}
	return (i > j) - (i < j);
}

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005u + 1442695040888963407u;
	return *s >> 33;
}

/* Local search from the best order: move an allocation that touches the
 * top of the arena (or a random one) to an earlier, random position; keep
 * the move unless the arena grows.  */
static int64_t improve(const Alloc *a, int na, int *order, bool best_fit, int64_t arena,
                       int64_t lb, int64_t *off, Span *sp, long budget)
{
	int *trial = alloc(sizeof(int) * (size_t)na);
	int64_t *toff = alloc(sizeof(int64_t) * (size_t)na);
	uint64_t seed = 0x9e3779b97f4a7c15u;
	for (long it = 0; it < budget && arena > lb; it++) {
		int top = -1, pos = 0;
		for (int k = 0; k < na; k++) {
			int i = order[k];
			if (off[i] + a[i].bytes == arena && (top < 0 || rng_next(&seed) % 2)) {
				top = i;
				pos = k;
			}
		}
		if (rng_next(&seed) % 4 == 0 || pos == 0) {
			pos = (int)(rng_next(&seed) % (uint64_t)na);
			top = order[pos];
		}
		if (pos == 0)
			continue;
		int to = (int)(rng_next(&seed) % (uint64_t)pos);
		memcpy(trial, order, sizeof(int) * (size_t)na);
		memmove(trial + to + 1, trial + to, sizeof(int) * (size_t)(pos - to));
		trial[to] = top;
		int64_t t = place(a, na, trial, best_fit, toff, sp);
		if (t <= arena) {
			arena = t;
			memcpy(order, trial, sizeof(int) * (size_t)na);
			memcpy(off, toff, sizeof(int64_t) * (size_t)na);
		}
	}
	return arena;
}

/* Assign iv[].offset (in-place intervals share their root's); returns the
 * arena size, sets *lower_bound, and verifies the result.  */
int64_t plan_intervals(Interval *iv, int n, int align, int64_t *lower_bound)
{
	int m = n ? n : 1;
	Alloc *a = alloc(sizeof(Alloc) * (size_t)m);
	int *root = alloc(sizeof(int) * (size_t)m);
	int na = merge(iv, n, align, a, root);
	int64_t lb = peak_bytes(a, na);
	*lower_bound = lb;

	int *order = alloc(sizeof(int) * (size_t)m), *best = alloc(sizeof(int) * (size_t)m);
	int64_t *off = alloc(sizeof(int64_t) * (size_t)m), *boff = alloc(sizeof(int64_t) * (size_t)m);
	Span *sp = alloc(sizeof(Span) * (size_t)m);
	int64_t arena = -1;
	bool best_fit = false;
	for (int by = 0; by < N_BY && arena != lb; by++)
		for (int fit = 0; fit < 2 && arena != lb; fit++) {
			for (int i = 0; i < na; i++)
				order[i] = i;
			sort_a = a;
			sort_by = by;
			qsort(order, (size_t)na, sizeof(int), cmp_order);
			int64_t t = place(a, na, order, fit, off, sp);
			if (arena < 0 || t < arena) {
				arena = t;
				best_fit = fit;
				memcpy(best, order, sizeof(int) * (size_t)na);
				memcpy(boff, off, sizeof(int64_t) * (size_t)na);
			}
		}
	if (na > 0 && arena > lb) {
		/* each trial costs ~na^2; stay within ~1e8 steps */
		long budget = 100000000L / ((long)na * na + 1);
		budget = budget < 20 ? 20 : budget > 3000 ? 3000 : budget;
		arena = improve(a, na, best, best_fit, arena, lb, boff, sp, budget);
	}
	for (int i = 0; i < n; i++)
		iv[i].offset = boff[root[i]];
	if (arena < 0)
		arena = 0;
	verify_intervals(iv, n, align, arena);
	return arena;
}

/* die() on misaligned, out-of-arena or overlapping live allocations. */
void verify_intervals(const Interval *iv, int n, int align, int64_t arena)
{
	int m = n ? n : 1;
	Alloc *a = alloc(sizeof(Alloc) * (size_t)m);
	int *root = alloc(sizeof(int) * (size_t)m);
	int na = merge(iv, n, align, a, root);
	for (int i = 0; i < n; i++) {
		if (iv[i].alias < 0)
			a[root[i]].offset = iv[i].offset;
		else if (iv[i].offset != iv[root_of(iv, n, i)].offset)
			die("interval %d: in place but at offset %lld", i, (long long)iv[i].offset);
	}
	for (int i = 0; i < na; i++) {
		if (a[i].offset < 0 || a[i].offset % align || a[i].offset + a[i].bytes > arena)
			die("allocation %d: offset %lld, %lld bytes, arena %lld", i,
			    (long long)a[i].offset, (long long)a[i].bytes, (long long)arena);
		for (int j = 0; j < i; j++)
			if (meet(&a[i], &a[j]) && a[i].offset < a[j].offset + a[j].bytes &&
			    a[j].offset < a[i].offset + a[i].bytes)
				die("allocations %d and %d overlap: [%lld, +%lld) and [%lld, +%lld), "
				    "both live at step %d", j, i, (long long)a[j].offset,
				    (long long)a[j].bytes, (long long)a[i].offset, (long long)a[i].bytes,
				    a[i].first > a[j].first ? a[i].first : a[j].first);
	}
}

/* The pass: liveness, offsets, then verify_plan. */
void plan(Graph *g)
{
	liveness(g);
	int ni, *of;
	Interval *iv = graph_intervals(g, &ni, &of);
	int64_t lb;
	g->arena_bytes = plan_intervals(iv, ni, g->target->align, &lb);
	if (lb != g->lower_bound)
		die("lower bound %lld, then %lld", (long long)g->lower_bound, (long long)lb);
	for (int k = 0; k < ni; k++) {
		if (of[k] >= 0)
			g->node[of[k]].offset = iv[k].offset;
		else
			g->node[-1 - of[k]].scratch_offset = iv[k].offset;
	}
	verify_plan(g);
}

/* Re-derive every read from the graph and check it against the plan. */
void verify_plan(const Graph *g)
{
	int n = g->n_node;
	for (int i = 0; i < n; i++) {
		const Node *nd = &g->node[i];
		int s = exec_step(g, i);
		if (nd->sto == STO_ARENA) {
			if (nd->first != i || nd->bytes != align_up(g, node_bytes(g, nd)))
				die("node %d (%s): first %d, %lld bytes", i, node_label(g, i), nd->first,
				    (long long)nd->bytes);
			if (nd->alias >= 0 && (g->node[nd->alias].alias >= 0 ||
			                       g->node[nd->alias].offset != nd->offset))
				die("node %d (%s): bad alias %d", i, node_label(g, i), nd->alias);
		}
		for (int k = 0; k < nd->n_in; k++) {
			int x = nd->in[k];
			const Node *xn = &g->node[x];
			if (xn->sto == STO_ARENA && (s < xn->first || s > xn->last))
				die("node %d (%s) reads %s at step %d, live %d..%d", i, node_label(g, i),
				    node_label(g, x), s, xn->first, xn->last);
			if (xn->sto == STO_NONE && op_kind[xn->op] != K_LEAF && fused_into(g, x) != i)
				die("node %d (%s) reads %s, which has no memory", i, node_label(g, i),
				    node_label(g, x));
		}
	}
	/* a kernel that writes over an input (Node.clobber): every later reader
	 * of that buffer also reads the kernel's value, so it knows */
	for (int i = 0; i < n; i++) {
		const Node *nd = &g->node[i];
		if (!nd->clobber)
			continue;
		int x = nd->in[nd->clobber - 1];
		if (g->node[x].sto != STO_ARENA)
			die("%s writes over %s, which is not in the arena", node_label(g, i), node_label(g, x));
		for (int r = 0; r < n; r++) {
			const Node *rn = &g->node[r];
			bool reads_x = false, reads_i = false;
			for (int k = 0; k < rn->n_in; k++) {
				reads_x |= rn->in[k] == x;
				reads_i |= rn->in[k] == i;
			}
			if (r != i && reads_x && exec_step(g, r) >= exec_step(g, i) && !reads_i)
				die("%s reads %s after %s wrote over it", node_label(g, r), node_label(g, x),
				    node_label(g, i));
		}
	}
	bool *end = alloc(sizeof(bool) * (size_t)(n + 1));
	caller_reads(g, end);
	for (int i = 0; i < n; i++)
		if (end[i] && g->node[i].sto == STO_ARENA && g->node[i].last != n - 1)
			die("%s is read at return but dies at step %d", node_label(g, i), g->node[i].last);
	int ni;
	Interval *iv = graph_intervals(g, &ni, NULL);
	verify_intervals(iv, ni, g->target->align, g->arena_bytes);
	if (intervals_lower_bound(iv, ni, g->target->align) != g->lower_bound || g->arena_bytes < g->lower_bound)
		die("lower bound %lld, arena %lld", (long long)g->lower_bound,
		    (long long)g->arena_bytes);
}

/* The lower bound with every parameter gradient kept to the last step. */
int64_t baseline_lower_bound(const Graph *g)
{
	int ni, *of;
	Interval *iv = graph_intervals(g, &ni, &of);
	int n = g->n_node, m = ni;
	Interval *all = alloc(sizeof(Interval) * (size_t)(ni + n + 1));
	memcpy(all, iv, sizeof(Interval) * (size_t)ni);
	int *slot = alloc(sizeof(int) * (size_t)(n + 1));
	for (int i = 0; i < n; i++)
		slot[i] = -1;
	for (int k = 0; k < ni; k++)
		if (of[k] >= 0)
			slot[of[k]] = k;
	for (int p = 0; p < n; p++) {
		if (g->node[p].op != OP_PARAM || g->node[p].frozen || g->mode != MODE_TRAIN)
			continue;
		int d = g->node[p].grad;
		if (d < 0 || op_kind[g->node[d].op] == K_LEAF)
			continue;
		if (slot[d] >= 0) {
			all[slot[d]].last = n - 1;
			for (int k = 0; k < ni; k++)  /* nothing writes over a kept gradient */
				if (all[k].alias == slot[d] || (all[k].alias >= 0 && all[slot[d]].alias ==
				                                all[k].alias && all[k].first > all[slot[d]].first))
					all[k].alias = -1;
		}
		else  /* fused into its update: memory of its own in the baseline */
			all[m++] = (Interval){align_up(g, node_bytes(g, &g->node[d])),
			                      exec_step(g, d), n - 1, -1, 0};
	}
	return intervals_lower_bound(all, m, g->target->align);
}
