/* fitbuild.c: a training build under `--budget BYTES [--fit]` (compile,
 * report, run, check), and what it prints about the plan.
 *
 * Training RAM (SPEC 2, issue 18) = parameters + optimizer state + the
 * largest arena of the training entry points (NAME_ARENA_BYTES) + their
 * worst-case stack (stack.c, from the code emitted).
 *
 * build_fit:
 *   1. The plain build.  Fits: done.
 *   2. Without --fit: the plain build without packing (no scratch, no
 *      stack panels), as before; over the budget: an error with the report.
 *   3. With --fit, the plans that fit, the one with the fewest extra
 *      multiply-adds (ties: packing kept):
 *      a. recomputation (fit.c) of the step and of the gradients entry
 *         point, packed and unpacked, the arena limit being the budget less
 *         the parameters, the state and the stack;
 *      b. only if no (a) fits: micro-batches, for every divisor m of the
 *         batch B, the training step built at B/m, its updates summing each
 *         gradient (when complete) into one parameter struct at the end of
 *         the arena (real memory, counted), called m times by
 *         NAME_train_step (then the mean, one update) and NAME_grad (the
 *         caller's struct); (a) inside, the arena limit less the sums.
 *         Ties: fewer micro-batches.
 *   4. No plan fits: status 1, naming the smallest RAM reachable and what
 *      it takes.
 */
#include "host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Fill the stack figures of a build's graphs from its emitted code:
 * inference its own, training the worse of the step and the gradients. */
void set_stacks(Graph *const *modes, int n, const Options *o)
{
	int64_t st[3], by[3][3];
	entry_stacks(modes, n, o, st, by);
	int64_t t = st[1] > st[2] ? st[1] : st[2];
	for (int k = 0; k < n; k++) {
		modes[k]->stack_bytes = modes[k]->mode == MODE_INFER ? st[0] : t;
		memcpy(modes[k]->entry_stack, st, sizeof st);
		memcpy(modes[k]->shape_stack, by, sizeof by);
	}
}

/* RAM of a build: parameters (unless in flash), optimizer state, the
 * largest arena of the entry points and the worst stack. */
int64_t build_ram(Graph *const *modes, int n, bool flash)
{
	Figures f = figures(modes[n > 1 ? 1 : 0], flash);
	int64_t arena = 0, stack = 0;
	for (int k = 0; k < n; k++) {
		arena = modes[k]->arena_bytes > arena ? modes[k]->arena_bytes : arena;
		stack = modes[k]->stack_bytes > stack ? modes[k]->stack_bytes : stack;
	}
	return f.total_bytes - f.arena_bytes - f.stack_bytes + arena + stack;
}

/* Parameters and optimizer state of a training graph: the RAM besides
 * the arena and the stack. */
static int64_t fixed_ram(const Graph *g)
{
	Figures f = figures(g, false);
	return f.total_bytes - f.arena_bytes - f.stack_bytes;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static void plain_modes(const Graph *fwd, const Options *o, Fit *r)
{
	r->n = 0;
	r->modes[r->n++] = build_mode(fwd, MODE_INFER, o);
	r->modes[r->n++] = build_mode(fwd, MODE_TRAIN, o);
	r->modes[r->n++] = build_mode(fwd, MODE_GRAD, o);
	set_stacks(r->modes, r->n, o);
	r->ram = build_ram(r->modes, r->n, false);
}

/* Recomputation at the plain batch: fills r if a plan fits; else *least
 * (if smaller): the smallest RAM it reaches.  */
static bool try_recompute(const Graph *fwd, const Options *o, int64_t budget, Fit *r,
                          int64_t *least, Fit *why)
{
	Fit p = {.opt = *o, .micro = 1};
	plain_modes(fwd, &p.opt, &p);
	int64_t fixed = fixed_ram(p.modes[1]);
	int64_t limit = budget - fixed - p.modes[1]->stack_bytes;
	FitPlan gp;
	int64_t lt, lg;
	Graph *t = fit_search(p.modes[1], limit, &p.plan, &lt);
	Graph *g = fit_search(p.modes[2], limit, &gp, &lg);
	int64_t reach = fixed + p.modes[1]->stack_bytes + (lt > lg ? lt : lg);
	if (p.modes[0]->arena_bytes > reach - fixed - p.modes[1]->stack_bytes)
		reach = fixed + p.modes[1]->stack_bytes + p.modes[0]->arena_bytes;
	if (reach < *least) {
		*least = reach;
		why->least_plan = p.plan;
		why->least_micro = 1;
		why->least_no_pack = o->no_pack;
	}
	if (!t || !g || p.modes[0]->arena_bytes > limit)
		return false;
	p.modes[1] = t;
	p.modes[2] = g;
	p.stack = p.modes[1]->stack_bytes;
	set_stacks(p.modes, p.n, &p.opt);  /* the code of the fitted graphs */
	p.ram = build_ram(p.modes, p.n, false);
	if (p.ram > budget)
		return false;
	p.fitted = true;
	*r = p;
	return true;
}

/* The micro-batched build of m micro-batches (fwd at batch B): fills r and
 * returns true if it fits the budget; *least, why: the smallest RAM.  */
/* The plain micro-batched build of m micro-batches: p->modes (inference at
 * the batch, the gradients at B/m, not yet marked micro), p->accum; *stack
 * and *fixed: the build's worst stack and its parameters and state. */
static void micro_base(const Graph *fwd, const Options *o, int m, Fit *p, int64_t *stack,
                       int64_t *fixed)
{
	Options x = *o;
	x.batch = fwd->batch;
	*p = (Fit){.opt = x, .micro = m, .n = 2};
	p->modes[0] = build_mode(fwd, MODE_INFER, &x);
	Graph *t = build_mode(fwd, MODE_TRAIN, &x);  /* for the fixed RAM */
	x.batch = fwd->batch / m;
	const Graph *fb = front_end(fwd->src, &x);
	if (x.params)
		fb = standardize_graph(fb, stats_from_file(x.params, fb));
	Graph *g = build_mode(fb, MODE_TRAIN, &x);
	int64_t pbytes = 0;
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].op == OP_PARAM)
			pbytes += node_bytes(g, &g->node[i]);
	p->accum = align_up(g, pbytes ? pbytes : dt_bytes(float_dtype(g)));
	/* the stack: the code of the plain micro-batched build */
	g->micro = m;
	g->micro_acc = g->arena_bytes;
	g->arena_bytes += p->accum;
	p->modes[1] = g;
	set_stacks(p->modes, 2, &p->opt);
	*stack = max64(p->modes[0]->stack_bytes, g->stack_bytes);
	g->arena_bytes -= p->accum;
	g->micro = 0;
	*fixed = fixed_ram(t);
}

/* The micro-batched build of m micro-batches (fwd at batch B): fills r and
 * returns true if it fits the budget; *least, why: the smallest RAM.  */
static bool try_micro(const Graph *fwd, const Options *o, int m, int64_t *least, Fit *r,
                      Fit *why)
{
	Fit p;
	int64_t stack, fixed;
	micro_base(fwd, o, m, &p, &stack, &fixed);
	Graph *g = p.modes[1];
	int64_t limit = o->budget - fixed - stack - p.accum, lg;
	Graph *f = fit_search(g, limit, &p.plan, &lg);
	int64_t reach = fixed + stack + p.accum + max64(lg, p.modes[0]->arena_bytes - p.accum);
	if (reach < *least) {
		*least = reach;
		why->least_plan = p.plan;
		why->least_micro = m;
		why->least_no_pack = o->no_pack;
	}
	if (!f)
		return false;
	if (f == g)
		f = copy_graph(g);
	f->micro = m;
	f->micro_acc = f->arena_bytes;
	f->arena_bytes += p.accum;
	f->lower_bound += p.accum;  /* the sums live at every step */
	f->unshared_bytes += p.accum;
	p.modes[1] = f;
	set_stacks(p.modes, 2, &p.opt);
	p.ram = build_ram(p.modes, 2, false);
	if (p.ram > o->budget)
		return false;
	p.fitted = true;
	*r = p;
	return true;
}

/* Build the entry points of a training build within o->budget (if set). */
void build_fit(const Graph *fwd, const Options *o, Fit *r)
{
	memset(r, 0, sizeof *r);
	r->opt = *o;
	plain_modes(fwd, &r->opt, r);
	r->plain_ram = r->ram;
	if (!o->budget_set || r->ram <= o->budget)
		return;
	if (!o->fit) {
		if (!o->no_pack) { /* first give up the packing scratch */
			r->opt.no_pack = true;
			plain_modes(fwd, &r->opt, r);
		}
		return; /* the caller reports r->ram over the budget */
	}
	int64_t least = INT64_MAX;
	Fit best = {0}, cand;
	bool found = false;
	for (int np = o->no_pack ? 1 : 0; np < 2; np++) {
		Options x = *o;
		x.no_pack = np;
		if (try_recompute(fwd, &x, o->budget, &cand, &least, r) &&
		    (!found || cand.plan.extra_macs < best.plan.extra_macs)) {
			best = cand;
			found = true;
		}
	}
	/* only if recomputation alone cannot: micro-batches, fewest first */
	bool micro_found = false;
	for (int m = 2; !found && m <= fwd->batch && !(micro_found && !best.plan.extra_macs); m++) {
		if (fwd->batch % m)
			continue;
		for (int np = o->no_pack ? 1 : 0; np < 2; np++) {
			Options x = *o;
			x.no_pack = np;
			if (try_micro(fwd, &x, m, &least, &cand, r) &&
			    (!micro_found || cand.plan.extra_macs * m < best.plan.extra_macs * best.micro)) {
				best = cand;
				micro_found = true;
			}
		}
	}
	found |= micro_found;
	if (!found) {
		const char *what = fit_plan_str(&r->least_plan, r->least_micro);
		error_plain("no plan fits the training RAM budget of %lld bytes: the smallest "
		            "training RAM reachable is %lld bytes (%s%s)",
		            (long long)o->budget, (long long)least, what,
		            r->least_no_pack ? ", no packing" : "");
	}
	best.plain_ram = r->plain_ram;
	*r = best;
}

/* "recompute h1, h2 (+12.5% multiply-adds)", or "recompute nothing". */
const char *fit_plan_str(const FitPlan *p, int micro)
{
	Buf b = {0};
	int n = 0;
	for (int k = 0; k < p->n_cand; k++)
		if (p->drop[k])
			buf_printf(&b, "%s%s", n++ ? ", " : "recompute ", p->cand[k]);
	if (!n)
		buf_printf(&b, "recompute nothing");
	if (micro > 1)
		buf_printf(&b, ", %d micro-batches", micro);
	buf_printf(&b, ", +%.1f%% multiply-adds",
	           p->macs ? 100.0 * (double)p->extra_macs / (double)p->macs : 0.0);
	return b.s;
}

/* The plan section of `report --budget B --fit`. */
void fit_report(Buf *b, const Fit *r)
{
	const FitPlan *p = &r->plan;
	buf_printf(b, "fit: training RAM %lld bytes (plain build %lld), budget %lld\n",
	           (long long)r->ram, (long long)r->plain_ram, (long long)r->opt.budget);
	static const char *const how[] = {
		[FIT_ALL] = "every set of kept values tried (optimal)",
		[FIT_DP] = "a chain: the DP over segments (optimal under its model)",
		[FIT_GREEDY] = "greedy (more than 12 candidates, not a chain)",
	};
	buf_printf(b, "  search: %s\n", how[p->search]);
	buf_printf(b, "  %-20s %10s  %s\n", "value", "bytes", "plan");
	for (int k = 0; k < p->n_cand; k++)
		buf_printf(b, "  %-20s %10lld  %s\n", p->cand[k], (long long)p->cand_bytes[k],
		           p->drop[k] ? "recomputed" : "kept");
	if (r->micro > 1)
		buf_printf(b, "  micro-batches: %d of %d sample%s, gradients summed in %lld bytes of the "
		              "arena, then one update\n", r->micro, r->modes[1]->batch,
		           r->modes[1]->batch == 1 ? "" : "s", (long long)r->accum);
	else
		buf_printf(b, "  micro-batches: none (the batch of %d in one step)\n", r->modes[1]->batch);
	buf_printf(b, "  packing: %s\n", r->opt.no_pack ? "off (no scratch, no stack panels)" : "on");
	buf_printf(b, "  nodes recomputed: %d; extra multiply-adds: %lld of %lld (%.1f%%)\n\n",
	           p->n_copy, (long long)p->extra_macs * r->micro, (long long)p->macs * r->micro,
	           p->macs ? 100.0 * (double)p->extra_macs / (double)p->macs : 0.0);
}

/* ---- the trade-off curve (report --sweep-budget CURVE.svg) */

typedef struct Row {
	int64_t ram, extra;  /* training RAM, extra multiply-adds per step */
	const char *what;
} Row;

/* An SVG plot of the rows: RAM (x) against extra multiply-adds in % (y). */
static void svg_plot(Buf *b, const Row *row, int n, int64_t macs, const char *model)
{
	const int W = 640, H = 400, L = 80, R = 20, T = 40, B = 60;
	int64_t xmax = 0, xmin = INT64_MAX;
	double ymax = 1;
	for (int k = 0; k < n; k++) {
		xmax = row[k].ram > xmax ? row[k].ram : xmax;
		xmin = row[k].ram < xmin ? row[k].ram : xmin;
		double y = macs ? 100.0 * (double)row[k].extra / (double)macs : 0;
		ymax = y > ymax ? y : ymax;
	}
	if (xmin == xmax)
		xmin = xmax / 2;
	ymax *= 1.1;
	buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	              "font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
	buf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
	buf_printf(b, "<text x=\"%d\" y=\"20\" text-anchor=\"middle\">%s: training RAM vs extra "
	              "multiply-adds (gradc --fit)</text>\n", W / 2, model);
	buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, H - B,
	           W - R, H - B);
	buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T, L,
	           H - B);
	buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">training RAM (bytes)</text>\n",
	           (L + W - R) / 2, H - 15);
	buf_printf(b, "<text x=\"15\" y=\"%d\" transform=\"rotate(-90 15 %d)\" text-anchor=\"middle\">"
	              "extra multiply-adds (%%)</text>\n", (T + H - B) / 2, (T + H - B) / 2);
#define X(v) (L + (double)((v) - xmin) / (double)(xmax - xmin) * (W - L - R))
#define Y(v) (H - B - (v) / ymax * (H - T - B))
	for (int t = 0; t <= 4; t++) {
		int64_t xv = xmin + (xmax - xmin) * t / 4;
		double yv = ymax * t / 4;
		buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%lld</text>\n", X(xv),
		           H - B + 18, (long long)xv);
		buf_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", L - 6,
		           Y(yv) + 4, yv);
	}
	buf_printf(b, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"");
	for (int k = 0; k < n; k++)
		buf_printf(b, "%s%.1f,%.1f", k ? " " : "", X(row[k].ram),
		           Y(macs ? 100.0 * (double)row[k].extra / (double)macs : 0));
	buf_printf(b, "\"/>\n");
	/* a point per plan (red: micro-batches), its plan as a tooltip */
	for (int k = 0; k < n; k++)
		buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>%lld bytes: "
		              "%s</title></circle>\n", X(row[k].ram),
		           Y(macs ? 100.0 * (double)row[k].extra / (double)macs : 0),
		           strstr(row[k].what, "micro") ? "#d62728" : "#1f77b4", (long long)row[k].ram,
		           row[k].what);
#undef X
#undef Y
	buf_printf(b, "</svg>\n");
}

/* Append the rows of the curve of training graph t (of build p): its
 * fitted arenas with the gradients' (g; NULL: t is both, micro-batched),
 * m micro-batches, 'accum' bytes of accumulators. */
static int curve_rows(Row *row, int nr, const Fit *p, Graph *t, Graph *g, int64_t fixed,
                      int64_t stack, int m, int64_t accum, bool no_pack)
{
	int n;
	FitPoint *pt = fit_curve(t, &n);
	for (int k = 0; k < n; k++) {
		int64_t ga = 0;
		if (g) {
			FitPlan gp;
			AllocMark mk = alloc_mark();
			Graph *gf = fit_search(g, pt[k].arena, &gp, &ga);
			ga = gf ? gf->arena_bytes : ga;
			alloc_release(mk);
		}
		int64_t arena = max64(max64(pt[k].arena, ga) + accum, p->modes[0]->arena_bytes);
		Buf w = {0};
		buf_printf(&w, "%d node%s recomputed", pt[k].n_copy, pt[k].n_copy == 1 ? "" : "s");
		if (m > 1)
			buf_printf(&w, ", %d micro-batches of %d", m, t->batch);
		if (no_pack)
			buf_printf(&w, ", no packing");
		row[nr++] = (Row){fixed + stack + arena, pt[k].extra_macs * m, w.s};
	}
	return nr;
}

static int cmp_row(const void *x, const void *y)
{
	const Row *a = x, *b = y;
	if (a->ram != b->ram)
		return a->ram < b->ram ? -1 : 1;
	return (a->extra > b->extra) - (a->extra < b->extra);
}

/* `report --sweep-budget CURVE.svg`: the curve from the plain build's RAM
 * down to the smallest reachable (recomputation, packing given up,
 * micro-batches of every divisor of the batch; each point the fewest
 * extra multiply-adds at its RAM), a table on 'b' and the plot in 'svg'. */
void fit_sweep(Buf *b, const Graph *fwd, const Options *o, const char *svg)
{
	int cap = 4096, nr = 0, nre = 0;
	Row *row = alloc(sizeof(Row) * (size_t)cap), *mrow = alloc(sizeof(Row) * (size_t)cap);
	Fit plain = {.opt = *o};
	plain_modes(fwd, &plain.opt, &plain);
	int64_t macs = graph_macs(plain.modes[1]);
	for (int np = o->no_pack ? 1 : 0; np < 2; np++) {
		Options x = *o;
		x.no_pack = np;
		Fit p = {.opt = x};
		plain_modes(fwd, &p.opt, &p);
		Graph *t = p.modes[1];
		nr = curve_rows(row, nr, &p, t, p.modes[2], fixed_ram(t), t->stack_bytes, 1, 0, np);
		for (int m = 2; m <= fwd->batch && nre < cap - 64; m++) {
			if (fwd->batch % m)
				continue;
			Fit q;
			int64_t stack, fixed;
			micro_base(fwd, &x, m, &q, &stack, &fixed);
			nre = curve_rows(mrow, nre, &q, q.modes[1], NULL, fixed, stack, m, q.accum, np);
		}
	}
	/* what --fit picks at each budget: recomputation alone down to its
	 * smallest RAM, micro-batches below; each row cheaper than every
	 * smaller one of its kind */
	qsort(row, (size_t)nr, sizeof(Row), cmp_row);
	qsort(mrow, (size_t)nre, sizeof(Row), cmp_row);
	Row *front = alloc(sizeof(Row) * (size_t)(nr + nre + 1));
	int nf = 0;
	int64_t best = INT64_MAX, low = plain.ram;
	for (int k = 0; k < nr; k++)
		if (row[k].extra < best && row[k].ram < plain.ram) {
			best = row[k].extra;
			front[nf++] = row[k];
			low = row[k].ram < low ? row[k].ram : low;
		}
	best = INT64_MAX;
	Row *lower = front + nf;
	int nl = 0;
	for (int k = 0; k < nre; k++)
		if (mrow[k].extra < best && mrow[k].ram < low) {
			best = mrow[k].extra;
			lower[nl++] = mrow[k];
		}
	/* decreasing RAM: the plain build, recomputation, micro-batches */
	Row *out = alloc(sizeof(Row) * (size_t)(nf + nl + 1));
	int no = 0;
	out[no++] = (Row){plain.ram, 0, "the plain build"};
	for (int k = nf - 1; k >= 0; k--)
		out[no++] = front[k];
	for (int k = nl - 1; k >= 0; k--)
		out[no++] = lower[k];
	front = out;
	nf = no;
	buf_printf(b, "gradc sweep-budget: model %s, batch %d; training RAM = params + state + "
	              "arena + stack\n", fwd->model, fwd->batch);
	buf_printf(b, "%12s %14s %8s  %s\n", "ram_bytes", "extra_macs", "extra%", "plan");
	for (int k = 0; k < nf; k++)
		buf_printf(b, "%12lld %14lld %7.1f%%  %s\n", (long long)front[k].ram,
		           (long long)front[k].extra,
		           macs ? 100.0 * (double)front[k].extra / (double)macs : 0, front[k].what);
	Buf s = {0};
	svg_plot(&s, front, nf, macs, fwd->model);
	if (write_file_atomic(svg, s.s, s.len) != 0)
		error_plain("cannot write '%s': %s", svg, strerror(errno));
	buf_printf(b, "plot: %s\n", svg);
}
