/* check.c: `gradc check`, the finite-difference check of the generated
 * code (SPEC 2), on run.c's harness.
 *
 * The f64 build, inputs uniform in [-1, 1) and labels uniform in range
 * from a fixed seed, parameters from NAME_init(seed 1).  For each trainable
 * parameter the harness compares NAME_grad's gradient g with central
 * differences of NAME_grad's objective, step 1e-5 max(1, |p|), on the
 * elements gradc picks: all of them, or a deterministic random sample when
 * the parameter is large or the model is expensive (at most
 * CHECK_MAX_SAMPLE per parameter, and about CHECK_BUDGET multiply-adds in
 * all), and reports ||g_fd - g|| / max(||g||, ||g_fd||, 1e-6 (1 + |J|))
 * over those elements (J the objective at the point checked) and the
 * absolute error ||g_fd - g||.
 */
#include "host.h"

#include <math.h>
#include <stdio.h>

enum {
	CHECK_MAX_SAMPLE = 4096, /* check: elements per parameter, at most */
	CHECK_MIN_SAMPLE = 8,    /* ... and at least (or all, if fewer) */
};
/* check: multiply-adds (of all the finite-difference calls) to aim for */
#define CHECK_BUDGET 1.2e10
#define CHECK_TOL 1e-6

/* splitmix64: the check's inputs and samples, the same on every host */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

static double uniform01(uint64_t *s)
{
	return (double)(mix(s) >> 11) * 0x1.0p-53;
}

/* Multiply-adds of one NAME_grad call: its matrix products, plus one per
 * element of every other node.  */
static double grad_cost(const Graph *g)
{
	double c = 0;
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (op_is(n->op, F_CONTRACT))
			c += (double)node_macs(g, n);
		else
			c += (double)node_numel(g, n);
	}
	return c;
}

/* in.bin of `check`: random inputs (labels in range), then per trainable
 * parameter the number of elements to check and their indices.  */
static void fill_check(Job *j, Doubles *d)
{
	const Graph *g = j->fwd;
	uint64_t rng = 0x6772616463u; /* "gradc" */
	int n_in, n_pa;
	int *ins = declared_nodes(j->fwd, OP_INPUT, &n_in);
	int *pas = declared_nodes(j->fwd, OP_PARAM, &n_pa);
	for (int k = 0; k < n_in; k++) {
		const Node *n = &g->node[ins[k]];
		int64_t classes = dt_is_int(n->dtype) ? label_classes(g, ins[k]) : 0;
		if (classes == INT32_MAX)
			classes = 2;
		for (int64_t i = 0, c = node_numel(g, n); i < c; i++)
			push_double(d, dt_is_int(n->dtype) ? floor(uniform01(&rng) * (double)classes)
						 : 2 * uniform01(&rng) - 1);
	}
	/* elements per parameter: the budget shared out smallest first, so
	 * what a small parameter does not need goes to the larger ones */
	int64_t *m_of = alloc(sizeof(int64_t) * (size_t)(n_pa + 1));
	bool *done = alloc((size_t)n_pa + 1);
	int left = 0;
	for (int k = 0; k < n_pa; k++)
		left += !g->node[pas[k]].frozen;
	double calls = CHECK_BUDGET / fmax(grad_cost(j->grad), 1) / 2;
	for (; left > 0; left--) {
		int best = -1;
		for (int k = 0; k < n_pa; k++)
			if (!g->node[pas[k]].frozen && !done[k]
			    && (best < 0
				|| shape_numel(g->node[pas[k]].shape)
					   < shape_numel(g->node[pas[best]].shape)))
				best = k;
		double per = fmin(fmax(calls / left, CHECK_MIN_SAMPLE), CHECK_MAX_SAMPLE);
		int64_t numel = shape_numel(g->node[pas[best]].shape);
		m_of[best] = (double)numel < per ? numel : (int64_t)per;
		calls -= (double)m_of[best];
		done[best] = true;
	}
	for (int k = 0; k < n_pa; k++) {
		const Node *n = &g->node[pas[k]];
		if (n->frozen)
			continue;
		int64_t numel = shape_numel(n->shape), m = m_of[k];
		push_double(d, (double)m);
		/* m distinct indices in increasing order (Floyd's sampling) */
		bool *chosen = alloc((size_t)numel);
		for (int64_t r = numel - m; r < numel; r++) {
			int64_t v = (int64_t)(uniform01(&rng) * (double)(r + 1));
			chosen[chosen[v] ? r : v] = true;
		}
		for (int64_t i = 0; i < numel; i++)
			if (chosen[i])
				push_double(d, (double)i);
	}
}

/* SPEC 2's measure: ||g_fd - g|| / max(||g||, ||g_fd||, 1e-6 (1 + |J|)):
 * relative to the larger gradient, and to the objective's scale when both
 * are at noise level (an exactly-zero gradient beside a large J).  */
double check_error(double diff, double g, double g_fd, double objective)
{
	return diff / fmax(fmax(g, g_fd), 1e-6 * (1 + fabs(objective)));
}

int cmd_check(const char *path, const Graph *fwd, const Options *o)
{
	if (!fwd->has_minimize)
		error_plain("%s: no 'minimize' statement: there is no gradient to check", path);
	Job j = {.path = path, .f64 = true, .check = true, .batch = fwd->batch, .orig = fwd};
	double *res;
	size_t n_res;
	run_job(&j, fwd->src, o, fill_check, &res, &n_res);
	const Graph *g = j.fwd;
	if (n_res < 1)
		error_plain("%s: the generated program wrote too few results", path);
	double obj = res[0];
	printf("gradc check %s: f64, batch %lld, inputs uniform in [-1, 1), parameters from "
	       "seed %d;\ncentral differences of step 1e-5 max(1, |p|) of the objective J = %.6g;"
	       "\nerror ||g_fd - g|| / max(||g||, ||g_fd||, 1e-6 (1 + |J|)), abs ||g_fd - g||\n",
	       path, (long long)j.batch, CHECK_SEED, obj);
	int bad = 0, n_tp = 0, n_pa;
	int *pas = declared_nodes(j.fwd, OP_PARAM, &n_pa);
	size_t at = 1;
	for (int k = 0; k < n_pa; k++) {
		const Node *n = &g->node[pas[k]];
		if (n->frozen)
			continue;
		if (at + 4 > n_res)
			error_plain("%s: the generated program wrote too few results", path);
		double m = res[at], se = res[at + 1], sg = res[at + 2], sf = res[at + 3];
		at += 4;
		double err = check_error(sqrt(se), sqrt(sg), sqrt(sf), obj);
		int64_t numel = shape_numel(n->shape);
		bool ok = err <= CHECK_TOL; /* NaN fails */
		bad += !ok;
		n_tp++;
		printf("  %-12s %7lld of %-7lld elements%s  error %.2e  abs %.2e  %s\n", n->name,
		       (long long)m, (long long)numel,
		       m < (double)numel ? " (sampled)" : "          ", err, sqrt(se),
		       ok ? "ok" : "FAIL");
	}
	if (bad) {
		printf("%d of %d parameters have an error above %g\n", bad, n_tp, CHECK_TOL);
		return 1;
	}
	return 0;
}
