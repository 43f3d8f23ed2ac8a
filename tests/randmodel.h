/* randmodel.h: a seeded generator of random valid models (issue 22), for
 * the differential test (test_diff.c) and `make fuzz`.
 *
 * rand_model(seed) returns the text of a model that gradc must accept:
 * shapes are right by construction (each step knows the shape it makes),
 * log and sqrt only see positive values (log(sigmoid(v) + 0.5),
 * sqrt(v * v + 0.25)), exp only bounded ones (exp(tanh(v))), divisors are
 * at least 1 (v / (abs(w) + 1)).  It covers the language of this tree:
 * every elementwise function, broadcasting of a parameter over a value,
 * the three forms of '@' (with a parameter on either side, and of two
 * values), transpose, softmax and log_softmax, leaky_relu, unary minus,
 * constants, every loss (sum, mean, sumsq, mse, cross_entropy), an L2
 * penalty, frozen parameters, both optimizers with their arguments (and
 * the default), every initializer, aliases (`o = h`,
 * `output z, h` with h = z, a tracked alias) and names chosen to collide
 * with what gradc generates (NAME_BATCH, NAME_X_SIZE, _W, p, arena, float,
 * gradc_x, ...).  Every fourth seed (seed % 4 == 3) starts from an image
 * [C, H, W] through spatial steps (rm_image: conv2d with random stride,
 * padding, dilation and groups, a bias, the pools with padding and both
 * divisors, clip, concat, reshape, global_avgpool) before the dense ones.
 */
#ifndef RANDMODEL_H
#define RANDMODEL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct RmVal {
	char name[64];
	int rank;       /* per sample */
	int dim[4];
	int batched;
} RmVal;

typedef struct Rm {
	uint64_t s;
	char *out;
	size_t len, cap;
	RmVal v[64];
	int n_v;
	int n_names;
	char used[256][64]; /* every name given */
	const char *model;
} Rm;

static uint64_t rm_next(Rm *r) /* splitmix64 */
{
	uint64_t z = (r->s += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

static int rm_int(Rm *r, int lo, int hi) /* [lo, hi] */
{
	return lo + (int)(rm_next(r) % (uint64_t)(hi - lo + 1));
}

static void rm_put(Rm *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = (int)sizeof line - 1;
	if (r->len + (size_t)n + 1 > r->cap) {
		r->cap = (r->len + (size_t)n + 1) * 2;
		r->out = realloc(r->out, r->cap);
	}
	memcpy(r->out + r->len, line, (size_t)n + 1);
	r->len += (size_t)n;
}

/* A fresh name: mostly plain, sometimes one that collides with a name
 * gradc generates or the C library defines (all valid in the language). */
static void rm_name(Rm *r, char *dst, const char *base)
{
	static const char *const hostile[] = {
		"%s_BATCH", "%s_X_SIZE", "%s_ARENA_BYTES", "%s_H", "%s_params", "%s_arena",
		"%s_infer", "_W", "_x", "__z", "p", "s", "st", "grad", "arena", "mem", "i",
		"acc", "t3", "lr", "float", "while", "class", "NULL", "INT8_MAX", "EOF",
		"stdout", "errno", "expf", "int32_t", "gradc_x", "GRADC_RT_H", "harness",
		"real", "main", "in", "gradc_hin0", "M_PI", "EXIT_SUCCESS", "m_W", "dz",
	};
	int n = (int)(sizeof hostile / sizeof hostile[0]);
	int k = r->n_names++;
	char h[64];
	if (rm_int(r, 0, 2) == 0)
		snprintf(h, sizeof h, hostile[rm_int(r, 0, n - 1)], r->model);
	else
		snprintf(h, sizeof h, "%s", base);
	/* as it is if it is new, else with a number */
	snprintf(dst, 64, "%s", h);
	for (int i = 0; i < k; i++)
		if (!strcmp(r->used[i], dst)) {
			snprintf(dst, 64, "%.50s%d", h, k);
			break;
		}
	snprintf(r->used[k % 256], 64, "%s", dst);
}

static const char *rm_dims(const RmVal *v)
{
	static char b[4][64];
	static int k;
	char *s = b[k++ % 4];
	s[0] = 0;
	for (int i = 0; i < v->rank; i++)
		sprintf(s + strlen(s), "%s%d", i ? ", " : "", v->dim[i]);
	return s;
}

static RmVal *rm_add(Rm *r, const char *base, int rank, const int *dim, int batched)
{
	RmVal *v = &r->v[r->n_v++];
	rm_name(r, v->name, base);
	v->rank = rank;
	for (int i = 0; i < 4; i++)
		v->dim[i] = i < rank ? dim[i] : 1;
	v->batched = batched;
	return v;
}

static const char *rm_init(Rm *r, int rank)
{
	switch (rm_int(r, 0, rank >= 2 ? 6 : 4)) {
	case 0: return "normal(0, 0.5)";
	case 1: return "uniform(-0.5, 0.5)";
	/* a constant matrix makes its rows' gradients equal and often exactly
	 * zero: check's measure fails on its finite-difference noise */
	case 2: return rank == 1 ? "constant(0.25)" : "normal(0, 1)";
	case 3: return "normal(0.1, 0.3)";
	case 4: return "uniform(lo = -1, hi = 1)";
	case 5: return "xavier";
	default: return "he";
	}
}

/* A parameter of the given shape; frozen now and then. */
static RmVal *rm_param(Rm *r, int rank, const int *dim)
{
	RmVal *w = rm_add(r, "W", rank, dim, 0);
	const char *init = rm_init(r, rank);
	rm_put(r, "param %s[%s] ~ %s%s\n", w->name, rm_dims(w), init,
	       rm_int(r, 0, 7) == 0 ? " frozen" : "");
	return w;
}

/* One step from value 'a' (batched): a new value. */
static RmVal *rm_step(Rm *r, RmVal *a)
{
	RmVal t = *a;
	char e[512];
	int kind = rm_int(r, 0, 11);
	switch (kind) {
	case 0: case 1: { /* product with a parameter */
		int m = rm_int(r, 1, 6);
		if (a->rank == 1) {
			int d[2] = {m, a->dim[0]};
			if (rm_int(r, 0, 1)) {
				RmVal *w = rm_param(r, 2, d);
				snprintf(e, sizeof e, "%s @ %s", w->name, a->name);
			} else {
				int d2[2] = {a->dim[0], m};
				RmVal *w = rm_param(r, 2, d2);
				snprintf(e, sizeof e, "%s @ %s", a->name, w->name);
			}
			t.rank = 1, t.dim[0] = m;
		} else if (rm_int(r, 0, 1)) {
			int d[2] = {a->dim[1], m};
			RmVal *w = rm_param(r, 2, d);
			snprintf(e, sizeof e, "%s @ %s", a->name, w->name);
			t.dim[1] = m;
		} else { /* [a, b] @ [b] -> [a] */
			int d[1] = {a->dim[1]};
			RmVal *w = rm_param(r, 1, d);
			snprintf(e, sizeof e, "%s @ %s", a->name, w->name);
			t.rank = 1;
		}
		break;
	}
	case 2: { /* an elementwise function, positive where it must be */
		static const char *const f[] = {
			"relu(%s)", "sigmoid(%s)", "tanh(%s)", "exp(tanh(%s))",
			"log(sigmoid(%s) + 0.5)", "sqrt(%s * %s + 0.25)", "abs(%s) * 0.5",
			"leaky_relu(%s, 0.1)", "-%s", "(%s) * 2 - 1", "- -%s / 4",
		};
		const char *fm = f[rm_int(r, 0, 10)];
		snprintf(e, sizeof e, fm, a->name, a->name);
		break;
	}
	case 3: { /* broadcast a parameter over the trailing dimensions */
		int k = rm_int(r, 0, a->rank - 1);
		int d[3] = {0};
		for (int i = k; i < a->rank; i++)
			d[i - k] = rm_int(r, 0, 2) ? a->dim[i] : 1;
		RmVal *b = rm_param(r, a->rank - k, d);
		snprintf(e, sizeof e, "%s %s %s", a->name, rm_int(r, 0, 1) ? "+" : "*", b->name);
		break;
	}
	case 4: { /* a binary operation of two values of this shape */
		RmVal *b = NULL;
		for (int k = r->n_v - 1; k >= 0 && !b; k--)
			if (&r->v[k] != a && r->v[k].batched && r->v[k].rank == a->rank &&
			    !memcmp(r->v[k].dim, a->dim, sizeof a->dim))
				b = &r->v[k];
		if (!b) {
			snprintf(e, sizeof e, "%s * 0.5 + 1", a->name);
			break;
		}
		static const char *const f[] = {"%s + %s", "%s - %s", "%s * %s",
			"%s / (abs(%s) + 1)"};
		snprintf(e, sizeof e, f[rm_int(r, 0, 3)], a->name, b->name);
		break;
	}
	case 5: /* row functions */
		snprintf(e, sizeof e, "%s(%s)", rm_int(r, 0, 1) ? "softmax" : "log_softmax", a->name);
		break;
	case 6: /* a constant */
		snprintf(e, sizeof e, "%s * c%d", a->name, rm_int(r, 0, 1));
		break;
	case 7: /* transpose */
		if (a->rank == 2) {
			snprintf(e, sizeof e, "transpose(%s)", a->name);
			t.dim[0] = a->dim[1], t.dim[1] = a->dim[0];
		} else {
			snprintf(e, sizeof e, "%s - c1", a->name);
		}
		break;
	case 8: /* a square */
		snprintf(e, sizeof e, "%s * %s", a->name, a->name);
		break;
	case 9: case 10: case 11: /* an alias, a matrix product of two values */
		if (a == &r->v[0]) { /* no alias of the input (an output must be computed) */
			snprintf(e, sizeof e, "%s + 0.1", a->name);
			break;
		}
		if (a->rank == 2 && kind == 11) {
			int d[2] = {a->dim[1], a->dim[1]};
			RmVal *w = rm_param(r, 2, d);
			snprintf(e, sizeof e, "(%s @ %s) * 0.5", a->name, w->name);
			break;
		}
		snprintf(e, sizeof e, "%s", a->name);
		break;
	default:
		snprintf(e, sizeof e, "%s + 0.1", a->name);
		break;
	}
	RmVal *v = rm_add(r, "h", t.rank, t.dim, 1);
	rm_put(r, "%s = %s\n", v->name, e);
	return v;
}

/* A spatial size of 'n' rows through kernel k, dilation d, stride s and
 * padding pb + pa: the output size, or 0 if the kernel does not fit. */
static int rm_out(int n, int k, int d, int s, int pb, int pa)
{
	int span = d * (k - 1) + 1;
	return span > n + pb + pa ? 0 : (n + pb + pa - span) / s + 1;
}

/* One spatial step from image 'a' ([C, H, W], batched): a new image. */
static RmVal *rm_image(Rm *r, RmVal *a)
{
	RmVal t = *a;
	char e[512];
	int c = a->dim[0], h = a->dim[1], w = a->dim[2];
	switch (rm_int(r, 0, 5)) {
	case 0: case 1: { /* conv2d (+ bias) (+ activation) */
		int co = rm_int(r, 1, 4), g = 1;
		if (rm_int(r, 0, 2) == 0 && c > 1)
			g = c, co = c * rm_int(r, 1, 2); /* depthwise (with a multiplier) */
		int kh = rm_int(r, 1, 3), kw = rm_int(r, 1, 3), sh = rm_int(r, 1, 2), sw = rm_int(r, 1, 2);
		int dh = rm_int(r, 1, 2), dw = rm_int(r, 1, 2);
		int p[4] = {rm_int(r, 0, 2), rm_int(r, 0, 2), rm_int(r, 0, 2), rm_int(r, 0, 2)};
		if (!rm_out(h, kh, dh, sh, p[0], p[2]))
			kh = 1;
		if (!rm_out(w, kw, dw, sw, p[1], p[3]))
			kw = 1;
		RmVal *W = rm_param(r, 4, (int[]){co, c / g, kh, kw});
		int n = snprintf(e, sizeof e, "conv2d(%s, %s, stride = (%d, %d), padding = (%d, %d, %d, %d), "
		                 "dilation = (%d, %d), groups = %d)", a->name, W->name, sh, sw, p[0], p[1],
		                 p[2], p[3], dh, dw, g);
		if (rm_int(r, 0, 1)) {
			RmVal *b = rm_param(r, 3, (int[]){co, 1, 1});
			snprintf(e + n, sizeof e - (size_t)n, " + %s", b->name);
		}
		t.dim[0] = co, t.dim[1] = rm_out(h, kh, dh, sh, p[0], p[2]);
		t.dim[2] = rm_out(w, kw, dw, sw, p[1], p[3]);
		if (rm_int(r, 0, 1)) { /* an activation of its own statement */
			RmVal *v = rm_add(r, "cv", 3, t.dim, 1);
			rm_put(r, "%s = %s\n", v->name, e);
			snprintf(e, sizeof e, rm_int(r, 0, 1) ? "tanh(%s)" : "clip(%s, -0.5, 0.5)", v->name);
		}
		break;
	}
	case 2: { /* a pool, padded now and then */
		int k = rm_int(r, 1, 3), s = rm_int(r, 1, 2), pd = rm_int(r, 0, k / 2);
		if (!rm_out(h, k, 1, s, pd, pd) || !rm_out(w, k, 1, s, pd, pd))
			k = 1, pd = 0;
		if (rm_int(r, 0, 1))
			snprintf(e, sizeof e, "maxpool2d(%s, %d, stride = %d, padding = %d)", a->name, k, s, pd);
		else
			snprintf(e, sizeof e, "avgpool2d(%s, %d, stride = %d, padding = %d, "
			         "count_include_pad = %d)", a->name, k, s, pd, rm_int(r, 0, 1));
		t.dim[1] = rm_out(h, k, 1, s, pd, pd), t.dim[2] = rm_out(w, k, 1, s, pd, pd);
		break;
	}
	case 3: /* concat with a function of itself */
		snprintf(e, sizeof e, "concat(%s, tanh(%s))", a->name, a->name);
		t.dim[0] = 2 * c;
		break;
	case 4: /* the same elements as [C, W, H] (a computed value: W != H) */
		snprintf(e, sizeof e, h != w ? "reshape(%s, %d, %d, %d)" : "reshape(%s * 2, %d, %d, %d)",
		         a->name, c, w, h);
		t.dim[1] = w, t.dim[2] = h;
		break;
	default: /* clip */
		snprintf(e, sizeof e, "clip(%s, -0.3, 0.7) + %s * 0.1", a->name, a->name);
		break;
	}
	RmVal *v = rm_add(r, "im", 3, t.dim, 1);
	rm_put(r, "%s = %s\n", v->name, e);
	return v;
}

/* The text of model 'seed' (malloc'd; the caller frees it). */
static char *rand_model(uint64_t seed)
{
	static const char *const models[] = {"m", "net", "harness", "real", "in", "p", "x"};
	Rm r = {.s = seed * 0x2545F4914F6CDD1Du + 1};
	r.model = models[rm_int(&r, 0, 6)];
	rm_put(&r, "# random model, seed %llu\nmodel %s\nbatch %d\n", (unsigned long long)seed,
	       r.model, rm_int(&r, 1, 4));
	rm_put(&r, "const c0 = 0.5\nconst c1 = -1.5\n");
	snprintf(r.used[r.n_names++], 64, "c0");
	snprintf(r.used[r.n_names++], 64, "c1");
	int d[3] = {rm_int(&r, 1, 6), rm_int(&r, 1, 5), 1};
	RmVal *x = rm_add(&r, "x", rm_int(&r, 1, 3) == 1 ? 2 : 1, d, 1);
	RmVal *a = x, *first = NULL;
	if (seed % 4 == 3) { /* an image through spatial steps, then flattened */
		x->rank = 3, x->dim[0] = rm_int(&r, 1, 3), x->dim[1] = rm_int(&r, 2, 7);
		x->dim[2] = rm_int(&r, 2, 7);
		rm_put(&r, "input %s[%s]\n", x->name, rm_dims(x));
		for (int k = rm_int(&r, 1, 4); k > 0; k--) {
			a = rm_image(&r, a);
			if (!first)
				first = a;
		}
		RmVal *f = rm_add(&r, "fl", 1, (int[]){a->dim[0] * a->dim[1] * a->dim[2]}, 1);
		if (rm_int(&r, 0, 2) == 0) {
			f->dim[0] = a->dim[0];
			rm_put(&r, "%s = global_avgpool(%s)\n", f->name, a->name);
		} else {
			rm_put(&r, "%s = flatten(%s)\n", f->name, a->name);
		}
		a = f;
	} else {
		rm_put(&r, "input %s[%s]\n", x->name, rm_dims(x));
	}
	int steps = rm_int(&r, 2, 7);
	for (int k = 0; k < steps; k++) {
		a = rm_step(&r, a);
		if (!first)
			first = a;
	}
	/* a per-sample vector for the loss */
	if (a->rank != 1) {
		RmVal *u = rm_add(&r, "u", 1, (int[]){a->dim[1]}, 0);
		rm_put(&r, "param %s[%d] ~ %s\n", u->name, a->dim[1], rm_init(&r, 1));
		RmVal *f = rm_add(&r, "f", 1, (int[]){a->dim[0]}, 1);
		rm_put(&r, "%s = %s @ %s\n", f->name, a->name, u->name);
		a = f;
	}
	/* make sure a trainable parameter reaches the objective */
	int m = rm_int(&r, 2, 5);
	RmVal *w = rm_add(&r, "Wo", 2, (int[]){m, a->dim[0]}, 0);
	rm_put(&r, "param %s[%d, %d] ~ %s\n", w->name, m, a->dim[0], rm_init(&r, 2));
	RmVal *o = rm_add(&r, "o", 1, (int[]){m}, 1);
	rm_put(&r, "%s = %s @ %s\n", o->name, w->name, a->name);
	char loss[256], y[64] = "";
	switch (rm_int(&r, 0, 4)) {
	case 0:
		rm_name(&r, y, "y");
		rm_put(&r, "input %s int\n", y);
		snprintf(loss, sizeof loss, "cross_entropy(%s, %s)", o->name, y);
		break;
	case 1: {
		RmVal *t = rm_add(&r, "t", 1, (int[]){m}, 1);
		rm_put(&r, "input %s[%d]\n", t->name, m);
		snprintf(loss, sizeof loss, "mse(%s, %s)", o->name, t->name);
		break;
	}
	case 2: snprintf(loss, sizeof loss, "mean(%s)", o->name); break;
	case 3: snprintf(loss, sizeof loss, "sumsq(%s) * 0.1", o->name); break;
	default: snprintf(loss, sizeof loss, "sum(tanh(%s))", o->name); break;
	}
	char L[64], J[64], al[64], ao[64];
	rm_name(&r, L, "L");
	rm_put(&r, "%s = %s\n", L, loss);
	rm_name(&r, J, "J");
	rm_put(&r, "%s = %s + 0.001 * sumsq(%s)\n", J, L, w->name);
	/* aliases: of the first value, of the output, of the loss */
	rm_name(&r, al, "al");
	rm_put(&r, "%s = %s\n", al, first->name);
	rm_name(&r, ao, "ao");
	rm_put(&r, "%s = %s\n", ao, o->name);
	rm_put(&r, "output %s, %s, %s%s%s\n", ao, o->name, al,
	       strcmp(first->name, o->name) ? ", " : "",
	       strcmp(first->name, o->name) ? first->name : "");
	char tl[64];
	rm_name(&r, tl, "tl");
	rm_put(&r, "%s = %s\n", tl, L);
	rm_put(&r, "track %s, %s\n", L, tl);
	static const char *const opts[] = {
		"sgd(lr = 0.05)", "sgd(0.1, momentum = 0.9)", "sgd(lr = 0.01, weight_decay = 0.01)",
		"adam(lr = 0.01)", "adam(0.001, beta1 = 0.8, beta2 = 0.99, eps = 1e-6, weight_decay = 0.1)",
	};
	if (rm_int(&r, 0, 5) == 0)
		rm_put(&r, "minimize %s\n", J);
	else
		rm_put(&r, "minimize %s with %s\n", J, opts[rm_int(&r, 0, 4)]);
	return r.out;
}

#endif
