/* fitdp.c: the plans of --fit for a chain with more candidates than the
 * exhaustive search takes (fit.c): a dynamic program over segments.
 *
 * Requires: a planned TRAIN or GRAD graph whose candidates (fit.c) form a
 *           chain: each dies in the forward pass before the next one does
 *           (fl, its last forward read, increasing) and the backward pass
 *           reads them in reverse (F, the kernel before which a copy would
 *           go, decreasing), every forward read before every backward one.
 *
 * The model.  Let P(t) be the arena bytes live at step t of the plain
 * schedule.  Dropping candidate i (b_i bytes) inside a segment (a run of
 * dropped neighbours) frees its bytes from just after its last forward
 * read until its segment is recomputed, at the F of the segment's last
 * (rightmost) member, R: the copies then live exactly where the original
 * did.  So a plan's peak is max over t of P(t) - sum of b_i over the
 * dropped i with fl_i < t < R(i).  On the time axis that is:
 *   forward, between fl_i and fl_(i+1): the bytes dropped among 0..i;
 *   after fl_(n-1), before the rightmost segment's R: all bytes dropped;
 *   between the R of a segment and that of the segment on its left: the
 *   bytes dropped up to that left segment; after the leftmost R: nothing.
 * Each window's condition involves the bytes dropped so far and where the
 * previous segment ended, so a left-to-right DP decides each candidate
 * (keep or drop) with the state (previous segment's end, bytes dropped,
 * bytes dropped up to the previous segment's end, in a segment or not),
 * keeping per (end, in-segment) only the states no other beats in all of
 * bytes (more frees more later) and multiply-adds (each dropped candidate
 * costs the multiply-adds of recomputing it from its left neighbour).
 * The cheapest final state is the optimum under the model for one limit
 * M; walking M down from the plain peak (each time below the last plan's
 * modelled peak) gives the model's whole front.  fit.c measures every plan
 * of the front with the planner's liveness, so where the model is off
 * (scratch of a recomputed packed product, in-place reuse) the real
 * figure decides.
 */
#include "gradc.h"

#include <string.h>

typedef struct State {
	int prev_end;     /* the last closed segment's end, or -1 */
	bool in_seg;      /* candidate i dropped */
	int64_t cum;      /* bytes dropped among 0..i */
	int64_t cum_prev; /* bytes dropped up to prev_end */
	int64_t macs;
	int parent;       /* index in the previous step's list, -1 at the start */
	bool drop;        /* the decision for candidate i */
} State;

typedef struct Chain {
	int n;             /* candidates */
	int *c;            /* their ids */
	int64_t *b, *cost; /* bytes, multiply-adds of recomputing each */
	bool *fixed;       /* cannot be dropped (fit_recompute refuses) */
	int *fl, *F;       /* last forward read, recompute point */
	int steps;
	int64_t *P;        /* plain live bytes per step */
} Chain;

/* The largest P(t) - M over t in [lo, hi) (steps clamped), or INT64_MIN. */
static int64_t excess(const Chain *ch, int lo, int hi, int64_t M)
{
	int64_t e = INT64_MIN;
	lo = lo < 0 ? 0 : lo;
	hi = hi > ch->steps ? ch->steps : hi;
	for (int t = lo; t < hi; t++)
		e = ch->P[t] - M > e ? ch->P[t] - M : e;
	return e;
}

/* Live bytes per step of the plain planned graph g (allocations merged). */
static int64_t *live_bytes(const Graph *g)
{
	int ni;
	Interval *iv = graph_intervals(g, &ni, NULL);
	int *lo = alloc(sizeof(int) * (size_t)(ni + 1)), *hi = alloc(sizeof(int) * (size_t)(ni + 1));
	for (int k = 0; k < ni; k++) {
		lo[k] = iv[k].first;
		hi[k] = iv[k].last;
	}
	for (int k = 0; k < ni; k++) {
		int r = k;
		while (iv[r].alias >= 0)
			r = iv[r].alias;
		lo[r] = iv[k].first < lo[r] ? iv[k].first : lo[r];
		hi[r] = iv[k].last > hi[r] ? iv[k].last : hi[r];
	}
	int64_t *P = alloc(sizeof(int64_t) * (size_t)(g->n_node + 1));
	for (int k = 0; k < ni; k++)
		if (iv[k].alias < 0)
			for (int t = lo[k]; t <= hi[k] && t < g->n_node; t++)
				P[t] += round_to(iv[k].bytes, g->target->align);
	return P;
}

/* The chain of planned graph g, or NULL if its candidates are no chain. */
static Chain *chain_of(const Graph *g)
{
	Chain *ch = alloc(sizeof *ch);
	ch->c = fit_candidates(g, &ch->n);
	int n = ch->n;
	if (n < 2)
		return NULL;
	ch->b = alloc(sizeof(int64_t) * (size_t)n);
	ch->cost = alloc(sizeof(int64_t) * (size_t)n);
	ch->fixed = alloc(sizeof(bool) * (size_t)n);
	ch->fl = alloc(sizeof(int) * (size_t)n);
	ch->F = alloc(sizeof(int) * (size_t)n);
	ch->steps = g->n_node;
	ch->P = live_bytes(g);
	bool *drop = alloc(sizeof(bool) * (size_t)g->n_node);
	for (int k = 0; k < n; k++) {
		int x = ch->c[k];
		ch->b[k] = g->node[x].bytes;
		ch->fl[k] = exec_step(g, x);
		ch->F[k] = g->n_node;
		for (int r = 0; r < g->n_node; r++)
			for (int j = 0; j < g->node[r].n_in; j++) {
				if (g->node[r].in[j] != x)
					continue;
				int s = exec_step(g, r);
				if (!g->node[r].backward && s > ch->fl[k])
					ch->fl[k] = s;
				if (g->node[r].backward) {
					while (s > 0 && op_kind[g->node[s - 1].op] != K_LEAF &&
					       exec_step(g, s - 1) == exec_step(g, r))
						s--;
					ch->F[k] = s < ch->F[k] ? s : ch->F[k];
				}
			}
		AllocMark mk = alloc_mark();
		drop[x] = true;
		int64_t macs;
		ch->fixed[k] = !fit_recompute(g, drop, &macs);
		drop[x] = false;
		alloc_release(mk);
		ch->cost[k] = macs;
	}
	for (int k = 0; k < n; k++) {
		if (k + 1 < n && (ch->fl[k] >= ch->fl[k + 1] || ch->F[k] <= ch->F[k + 1]))
			return NULL;
		if (ch->fl[k] >= ch->F[n - 1] || ch->F[k] >= g->n_node)
			return NULL;
	}
	return ch;
}

/* Is state a beaten by b (same key)? */
static bool beaten(const State *a, const State *b)
{
	return b->cum >= a->cum && b->cum_prev >= a->cum_prev && b->macs <= a->macs;
}

/* Add s to list l (n of them) unless beaten; drop what it beats. */
static int add_state(State *l, int n, State s)
{
	for (int k = 0; k < n; k++)
		if (l[k].prev_end == s.prev_end && l[k].in_seg == s.in_seg && beaten(&s, &l[k]))
			return n;
	int m = 0;
	for (int k = 0; k < n; k++)
		if (!(l[k].prev_end == s.prev_end && l[k].in_seg == s.in_seg && beaten(&l[k], &s)))
			l[m++] = l[k];
	l[m++] = s;
	return m;
}

/* Close the segment ending at i in state s: the window from its R to the
 * previous segment's R.  false if the limit M is broken there. */
static bool close_segment(const Chain *ch, State *s, int i, int64_t M)
{
	int hi = s->prev_end >= 0 ? ch->F[s->prev_end] : ch->steps;
	if (excess(ch, ch->F[i], hi, M) > s->cum_prev)
		return false;
	s->prev_end = i;
	s->cum_prev = s->cum;
	return true;
}

/* The cheapest drop set (per candidate) whose modelled peak is at most M;
 * false if none. */
static bool chain_dp(const Chain *ch, int64_t M, bool *drop)
{
	int n = ch->n, cap = 4096;
	if (excess(ch, 0, ch->fl[0] + 1, M) > 0)
		return false;
	State **list = alloc(sizeof(State *) * (size_t)n);
	int *cnt = alloc(sizeof(int) * (size_t)n);
	for (int i = 0; i < n; i++) {
		list[i] = alloc(sizeof(State) * (size_t)cap);
		int np = i ? cnt[i - 1] : 1;
		for (int p = 0; p < np; p++) {
			State from = i ? list[i - 1][p] : (State){.prev_end = -1, .parent = -1};
			for (int d = 0; d < 2; d++) {
				if (d && ch->fixed[i])
					continue;
				State s = from;
				s.parent = i ? p : -1;
				s.drop = d;
				if (!d && s.in_seg && !close_segment(ch, &s, i - 1, M))
					continue;
				s.in_seg = d;
				if (d) {
					s.cum += ch->b[i];
					s.macs += ch->cost[i];
				}
				/* forward, after fl_i: the bytes dropped among 0..i */
				int hi = i + 1 < n ? ch->fl[i + 1] + 1 : -1;
				if (i + 1 < n && excess(ch, ch->fl[i] + 1, hi, M) > s.cum)
					continue;
				if (cnt[i] < cap)
					cnt[i] = add_state(list[i], cnt[i], s);
			}
		}
	}
	int best = -1;
	State fin = {0};
	for (int k = 0; k < cnt[n - 1]; k++) {
		State s = list[n - 1][k];
		if (s.in_seg && !close_segment(ch, &s, n - 1, M))
			continue;
		/* after the last forward read, before the rightmost segment's R */
		int hi = s.prev_end >= 0 ? ch->F[s.prev_end] : ch->steps;
		if (excess(ch, ch->fl[n - 1] + 1, hi, M) > s.cum)
			continue;
		if (best < 0 || s.macs < fin.macs) {
			best = k;
			fin = s;
		}
	}
	if (best < 0)
		return false;
	for (int i = n - 1, k = best; i >= 0; k = list[i][k].parent, i--)
		drop[i] = list[i][k].drop;
	return true;
}

/* The modelled peak of dropping drop[] (per candidate). */
static int64_t model_peak(const Chain *ch, const bool *drop)
{
	int64_t peak = 0;
	for (int t = 0; t < ch->steps; t++) {
		int64_t save = 0;
		for (int i = 0; i < ch->n; i++) {
			if (!drop[i])
				continue;
			int e = i;
			while (e + 1 < ch->n && drop[e + 1])
				e++;
			if (ch->fl[i] < t && t < ch->F[e])
				save += ch->b[i];
		}
		peak = ch->P[t] - save > peak ? ch->P[t] - save : peak;
	}
	return peak;
}

/* The front of the model for chain graph g: up to 'max' drop sets (per
 * node id), cheapest first, each the optimum below the previous one's
 * peak; *n of them.  NULL if g's candidates are no chain. */
bool **fit_chain_front(const Graph *g, int max, int *n)
{
	Chain *ch = chain_of(g);
	*n = 0;
	if (!ch)
		return NULL;
	bool **out = alloc(sizeof(bool *) * (size_t)max);
	bool *d = alloc(sizeof(bool) * (size_t)ch->n);
	int64_t M = 0;
	for (int t = 0; t < ch->steps; t++)
		M = ch->P[t] > M ? ch->P[t] : M;
	while (*n < max && chain_dp(ch, M, d)) {
		bool *drop = alloc(sizeof(bool) * (size_t)g->n_node);
		for (int i = 0; i < ch->n; i++)
			drop[ch->c[i]] = d[i];
		out[(*n)++] = drop;
		M = model_peak(ch, d) - 1;
	}
	return out;
}
