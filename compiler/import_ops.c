/* import_ops.c: one translation rule per ONNX operator (import.c drives).
 *
 * A rule reads its node's inputs (Vals), checks its attributes against
 * what gradc computes, and either
 *   - defines the output by one .nn statement (define), shapes per sample;
 *   - folds: every input known, the output's values computed here (the
 *     shape arithmetic PyTorch exports around a Reshape with a dynamic
 *     batch: Shape -> Gather -> Unsqueeze -> Concat -> Reshape, where the
 *     batch is the marker BATCH_DIM; Transpose, Cast, arithmetic on
 *     constants);
 *   - aliases the output to its input (Identity, Dropout, Cast to a float
 *     type, a Reshape that changes nothing);
 *   - or refuses the node with a message naming what is supported.
 * Pad (constant zeros on H and W) becomes a pending padding on its output
 * that the next Conv or AveragePool adds to its own.  BatchNormalization
 * is folded into a Conv or Gemm before it (fold_batchnorms, run before any
 * rule) when that node's output feeds the normalization alone, else it is
 * `x * scale + shift` with the two per-channel params computed here.
 * Limits: 2-D convolutions and pools only (per-sample [C, H, W]);
 * ceil_mode = 1 and dilated pooling are refused; a transpose must swap the
 * two axes of a per-sample matrix.
 */
#include "onnx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- attributes and known values */

int64_t attr_int(const ONode *n, const char *name, int64_t def)
{
	OAttr *a = onnx_attr(n, name);
	return a && a->type == AT_INT ? a->i : def;
}

double attr_float(const ONode *n, const char *name, double def)
{
	OAttr *a = onnx_attr(n, name);
	return a && a->type == AT_FLOAT ? a->f : a && a->type == AT_INT ? (double)a->i : def;
}

/* An INTS attribute into v[0..max); returns the count, or -1 if absent. */
int attr_ints(Imp *I, const ONode *n, const char *name, int64_t *v, int max)
{
	OAttr *a = onnx_attr(n, name);
	if (!a)
		return -1;
	if (a->type != AT_INTS || a->n > max)
		node_fail(I, "attribute '%s' must be a list of at most %d integers", name, max);
	for (int64_t k = 0; k < a->n; k++) {
		v[k] = a->ints[k];
		if (v[k] > MAX_BYTES || v[k] < -MAX_BYTES)
			node_fail(I, "attribute '%s' holds %lld, out of range", name, (long long)v[k]);
	}
	return (int)a->n;
}

double kval(const OTensor *t, int64_t k)
{
	return t->f ? t->f[k] : (double)t->i[k];
}

/* The known integer list 'v' (a shape, axes, pads) into out[0..max). */
int known_ints(Imp *I, const Val *v, int64_t *out, int max, const char *what)
{
	if (!v->c)
		node_fail(I, "%s '%s' is computed from the inputs; gradc needs it constant", what,
			  v->onnx);
	if (v->c->rank > 1 || v->c->n > max)
		node_fail(I, "%s '%s' must be a list of at most %d integers", what, v->onnx, max);
	for (int64_t k = 0; k < v->c->n; k++) {
		double x = kval(v->c, k);
		if (v->c->f && (x != floor(x) || fabs(x) >= 0x1p62))
			node_fail(I, "%s '%s' holds %g, not an integer in range", what, v->onnx, x);
		out[k] = v->c->f ? (int64_t)x : v->c->i[k];
	}
	return (int)v->c->n;
}

/* A known scalar (one element), e.g. Clip's bounds. */
double known_scalar(Imp *I, const Val *v, const char *what)
{
	if (!v->c || v->c->n != 1)
		node_fail(I, "%s '%s' must be a constant scalar", what, v->onnx);
	return kval(v->c, 0);
}

void copy_shape(Val *out, const Val *in)
{
	out->batched = in->batched;
	out->rank = in->rank;
	memcpy(out->dim, in->dim, sizeof in->dim);
}

void set_shape(Val *out, Shape s)
{
	out->batched = true;
	out->rank = s.rank;
	for (int k = 0; k < s.rank; k++)
		out->dim[k] = s.dim[k];
}

const char *dims_text(const int64_t *d, int n)
{
	Buf b = {0};
	for (int k = 0; k < n; k++)
		buf_printf(&b, "%s%lld", k ? ", " : "", (long long)d[k]);
	return b.s ? b.s : "";
}

/* A batched value: the per-sample shape as "[B, d...]" for messages. */
const char *full_text(const Val *v)
{
	return str_fmt("[B%s%s]", v->rank ? ", " : "", dims_text(v->dim, v->rank));
}

Val *batched_in(Imp *I, int k)
{
	Val *v = need_in(I, k);
	if (v->c)
		node_fail(I, "input %d ('%s') is a constant; gradc computes this operator on "
			     "values from the inputs only",
			  k + 1, v->onnx);
	return v;
}

/* ---- elementwise */

static double unary_fn(const char *op, double x, double alpha)
{
	if (!strcmp(op, "Relu"))
		return x > 0 ? x : 0;
	if (!strcmp(op, "LeakyRelu"))
		return x > 0 ? x : alpha * x;
	if (!strcmp(op, "Sigmoid"))
		return 1 / (1 + exp(-x));
	if (!strcmp(op, "Tanh"))
		return tanh(x);
	if (!strcmp(op, "Exp"))
		return exp(x);
	if (!strcmp(op, "Log"))
		return log(x);
	if (!strcmp(op, "Sqrt"))
		return sqrt(x);
	if (!strcmp(op, "Abs"))
		return fabs(x);
	return -x; /* Neg */
}

void tr_unary(Imp *I, const ONode *n)
{
	Val *x = need_in(I, 0), *out = out_val(I, 0);
	double alpha = attr_float(n, "alpha", 0.01);
	if (x->c) {
		if (!x->c->f)
			node_fail(I, "'%s' is a tensor of %s (non-float tensors are not supported)",
				  x->onnx, onnx_dtype_name(x->c->dtype));
		OTensor *t = new_tensor(x->c->dtype, x->c->rank, x->c->dim);
		for (int64_t k = 0; k < t->n; k++)
			t->f[k] = unary_fn(n->op, x->c->f[k], alpha);
		set_known(out, t);
		out->origin = x->origin;
		return;
	}
	const char *a = operand(I, x, false, -1);
	static const char *const names[][2] = {
		{"Relu", "relu"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"}, {"Exp", "exp"},
		{"Log", "log"},   {"Sqrt", "sqrt"},       {"Abs", "abs"},
	};
	const char *e = NULL;
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
		if (!strcmp(n->op, names[k][0]))
			e = str_fmt("%s(%s)", names[k][1], a);
	if (!strcmp(n->op, "LeakyRelu"))
		e = str_fmt("leaky_relu(%s, %s)", a, fnum_text(alpha));
	if (!strcmp(n->op, "Neg"))
		e = str_fmt("-%s", a);
	copy_shape(out, x);
	define(I, out, e, x->nns);
}

/* Broadcast known a, b with 'op' (+ - * /): NumPy's rules, all ranks. */
static OTensor *fold_binary(Imp *I, const OTensor *a, const OTensor *b, char op)
{
	int r = a->rank > b->rank ? a->rank : b->rank;
	int64_t dim[ONNX_MAX_RANK];
	for (int k = 0; k < r; k++) {
		int ka = k - (r - a->rank), kb = k - (r - b->rank);
		int64_t da = ka >= 0 ? a->dim[ka] : 1, db = kb >= 0 ? b->dim[kb] : 1;
		if (da != db && da != 1 && db != 1)
			node_fail(I, "shapes [%s] and [%s] do not broadcast", dims_text(a->dim, a->rank),
				  dims_text(b->dim, b->rank));
		dim[k] = da == 1 ? db : da;
	}
	bool fl = a->f || b->f;
	OTensor *t = new_tensor(fl ? (a->dtype == ONNX_DOUBLE || b->dtype == ONNX_DOUBLE
					     ? ONNX_DOUBLE : ONNX_FLOAT)
				   : ONNX_INT64,
				r, dim);
	for (int64_t e = 0; e < t->n; e++) {
		int64_t ia = 0, ib = 0, rest = e, sa = 1, sb = 1;
		for (int k = r - 1; k >= 0; k--) {
			int64_t i = rest % dim[k];
			rest /= dim[k];
			int ka = k - (r - a->rank), kb = k - (r - b->rank);
			if (ka >= 0) {
				ia += (a->dim[ka] == 1 ? 0 : i) * sa;
				sa *= a->dim[ka];
			}
			if (kb >= 0) {
				ib += (b->dim[kb] == 1 ? 0 : i) * sb;
				sb *= b->dim[kb];
			}
		}
		if (!fl) {
			int64_t x = a->i[ia], y = b->i[ib];
			if (x == BATCH_DIM || y == BATCH_DIM)
				node_fail(I, "computes with the batch size (not supported)");
			if (op == '/' && (y == 0 || (y == -1 && x == INT64_MIN)))
				node_fail(I, "divides %lld by %lld", (long long)x, (long long)y);
			/* wrapping, as ONNX's int64 arithmetic (no undefined overflow) */
			uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
			t->i[e] = op == '+' ? (int64_t)(ux + uy) : op == '-' ? (int64_t)(ux - uy)
				: op == '*' ? (int64_t)(ux * uy) : x / y;
		} else {
			double x = kval(a, ia), y = kval(b, ib);
			t->f[e] = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
		}
	}
	return t;
}

/* Per-sample NumPy broadcasting of the .nn operands' shapes. */
static Shape bcast(Imp *I, Shape a, Shape b)
{
	Shape s;
	if (!broadcast_shape(a, b, &s))
		node_fail(I, "per-sample shapes [%s] and [%s] do not broadcast",
			  dims_text(a.dim, a.rank), dims_text(b.dim, b.rank));
	return s;
}

void tr_binary(Imp *I, const ONode *n)
{
	Val *a = need_in(I, 0), *b = need_in(I, 1), *out = out_val(I, 0);
	char op = !strcmp(n->op, "Add") ? '+' : !strcmp(n->op, "Sub") ? '-'
		: !strcmp(n->op, "Mul") ? '*' : '/';
	if (a->c && b->c) {
		set_known(out, fold_binary(I, a->c, b->c, op));
		out->origin = a->origin ? a->origin : b->origin;
		return;
	}
	const char *ta, *tb;
	Shape sa, sb;
	if (a->c || b->c) {
		Val *k = a->c ? a : b, *x = a->c ? b : a;
		if (k->c->rank > x->rank + 1 || (k->c->rank == x->rank + 1 && k->c->dim[0] != 1))
			node_fail(I, "'%s' [%s] would broadcast over the batch of '%s' %s", k->onnx,
				  dims_text(k->c->dim, k->c->rank), x->onnx, full_text(x));
		const char *tk = operand(I, k, true, x->rank), *tx = value_of(I, x);
		Shape sk = k->c->n == 1 ? (Shape){0} : k->nns;
		ta = a->c ? tk : tx, tb = a->c ? tx : tk;
		sa = a->c ? sk : x->nns, sb = a->c ? x->nns : sk;
	} else {
		if (a->rank != b->rank)
			node_fail(I, "'%s' %s and '%s' %s: the batch dimensions do not line up",
				  a->onnx, full_text(a), b->onnx, full_text(b));
		ta = value_of(I, a), tb = value_of(I, b);
		sa = a->nns, sb = b->nns;
	}
	Shape s = bcast(I, sa, sb);
	set_shape(out, s);
	define(I, out, str_fmt("%s %c %s", ta, op, tb), s);
}

/* ---- products */

void tr_gemm(Imp *I, const ONode *n)
{
	Val *a = batched_in(I, 0), *b = need_in(I, 1), *c = in_val(I, 2), *out = out_val(I, 0);
	double alpha = attr_float(n, "alpha", 1), beta = attr_float(n, "beta", 1);
	bool ta = attr_int(n, "transA", 0), tb = attr_int(n, "transB", 0);
	if (ta)
		node_fail(I, "transA = 1 transposes the batch into the product (supported: transA = "
			     "0)");
	if (a->rank != 1)
		node_fail(I, "input '%s' is %s; Gemm takes [B, K]", a->onnx, full_text(a));
	if (!b->c || b->c->rank != 2)
		node_fail(I, "input B ('%s') must be a constant matrix (an initializer)", b->onnx);
	int64_t k = tb ? b->c->dim[1] : b->c->dim[0], nn = tb ? b->c->dim[0] : b->c->dim[1];
	if (k != a->dim[0])
		node_fail(I, "A %s and B [%s]%s do not match", full_text(a),
			  dims_text(b->c->dim, 2), tb ? " (transposed)" : "");
	const char *w = operand(I, b, false, 2), *x = value_of(I, a);
	const char *e = tb ? str_fmt("%s @ %s", w, x) : str_fmt("%s @ %s", x, w);
	if (alpha != 1)
		e = str_fmt("%s * (%s)", fnum_text(alpha), e);
	if (c && beta != 0) {
		const char *ct = c->c ? operand(I, c, true, 1) : value_of(I, c);
		if (beta != 1)
			ct = str_fmt("%s * %s", fnum_text(beta), ct);
		e = str_fmt("%s + %s", e, ct);
	}
	Shape s = {.rank = 1, .dim = {nn}};
	set_shape(out, s);
	define(I, out, e, s);
}

void tr_matmul(Imp *I, const ONode *n)
{
	(void)n;
	Val *a = need_in(I, 0), *b = need_in(I, 1), *out = out_val(I, 0);
	if (a->c && b->c)
		node_fail(I, "both operands are constants (not supported)");
	Shape sa, sb;
	const char *xa, *xb;
	if (b->c) {
		if (b->c->rank != 2 || a->rank < 1 || a->rank > 2)
			node_fail(I, "'%s' %s @ [%s]: gradc multiplies per-sample [K] or [M, K] by "
				     "a constant [K, N]",
				  a->onnx, full_text(a), dims_text(b->c->dim, b->c->rank));
		xa = value_of(I, a), xb = operand(I, b, false, 2);
		sa = a->nns, sb = b->nns;
	} else if (a->c) {
		if (a->c->rank != 2 || b->rank != 2)
			node_fail(I, "[%s] @ '%s' %s: gradc multiplies a constant [M, K] by per-sample "
				     "[K, N]",
				  dims_text(a->c->dim, a->c->rank), b->onnx, full_text(b));
		xa = operand(I, a, false, 2), xb = value_of(I, b);
		sa = a->nns, sb = b->nns;
	} else {
		if (a->rank != 2 || b->rank != 2)
			node_fail(I, "'%s' %s @ '%s' %s: gradc multiplies per-sample matrices",
				  a->onnx, full_text(a), b->onnx, full_text(b));
		xa = value_of(I, a), xb = value_of(I, b);
		sa = a->nns, sb = b->nns;
	}
	if (sa.dim[sa.rank - 1] != sb.dim[0])
		node_fail(I, "inner dimensions differ: [%s] @ [%s]", dims_text(sa.dim, sa.rank),
			  dims_text(sb.dim, sb.rank));
	Shape s = {.rank = sa.rank, .dim = {sa.dim[0], sb.dim[1]}};
	if (sa.rank == 1)
		s.dim[0] = sb.dim[1];
	set_shape(out, s);
	define(I, out, str_fmt("%s @ %s", xa, xb), s);
}

/* ---- along the last axis */

void tr_softmax(Imp *I, const ONode *n)
{
	Val *x = batched_in(I, 0), *out = out_val(I, 0);
	int r = x->rank + 1;
	int64_t axis = attr_int(n, "axis", I->m->opset < 13 ? 1 : -1);
	if (axis < 0)
		axis += r;
	if (axis != r - 1)
		node_fail(I, "axis %lld of %s: gradc's softmax runs over the last axis (supported: "
			     "axis = -1 or %d)",
			  (long long)attr_int(n, "axis", 0), full_text(x), r - 1);
	copy_shape(out, x);
	define(I, out,
	       str_fmt("%s(%s)", !strcmp(n->op, "Softmax") ? "softmax" : "log_softmax",
		       value_of(I, x)),
	       val_shape(x));
}

/* A bound of Clip: as its tensor stores it, or an attribute's float. */
static const char *bound_text(const Val *v, double x)
{
	return v && v->c->dtype == ONNX_DOUBLE ? num_text(x) : fnum_text(x);
}

void tr_clip(Imp *I, const ONode *n)
{
	Val *x = batched_in(I, 0), *out = out_val(I, 0), *vlo = in_val(I, 1), *vhi = in_val(I, 2);
	OAttr *alo = onnx_attr(n, "min"), *ahi = onnx_attr(n, "max");
	bool has_lo = vlo || alo, has_hi = vhi || ahi;
	double lo = vlo ? known_scalar(I, vlo, "min") : alo ? attr_float(n, "min", 0) : -3.4e38;
	double hi = vhi ? known_scalar(I, vhi, "max") : ahi ? attr_float(n, "max", 0) : 3.4e38;
	copy_shape(out, x);
	const char *a = operand(I, x, false, -1);
	if (!has_lo && !has_hi) {
		alias(I, out, x, "no bounds: nothing to clip");
		return;
	}
	if (lo == 0 && !has_hi)
		define(I, out, str_fmt("relu(%s)", a), x->nns);
	else
		define(I, out, str_fmt("clip(%s, %s, %s)", a, bound_text(vlo, lo), bound_text(vhi, hi)),
		       x->nns);
}

/* ---- spatial */

/* "k" or "(a, b)": a spatial argument of the language. */
static const char *pair(int64_t a, int64_t b)
{
	return a == b ? str_fmt("%lld", (long long)a) : str_fmt("(%lld, %lld)", (long long)a, (long long)b);
}

static const char *pad_text(const int64_t p[4])
{
	if (p[0] == p[1] && p[1] == p[2] && p[2] == p[3])
		return str_fmt("%lld", (long long)p[0]);
	if (p[0] == p[2] && p[1] == p[3])
		return pair(p[0], p[1]);
	return str_fmt("(%lld, %lld, %lld, %lld)", (long long)p[0], (long long)p[1],
		       (long long)p[2], (long long)p[3]);
}

/* The window of a Conv or pool: kernel, strides, pads, dilations, with
 * auto_pad resolved; the output's H and W into ho, wo. */
typedef struct OWindow {
	int64_t k[2], s[2], p[4], d[2];
} OWindow;

static void window(Imp *I, const ONode *n, const Val *x, OWindow *w, int64_t *ho, int64_t *wo)
{
	int64_t v[4];
	w->s[0] = w->s[1] = w->d[0] = w->d[1] = 1;
	w->p[0] = w->p[1] = w->p[2] = w->p[3] = 0;
	int c;
	if ((c = attr_ints(I, n, "strides", v, 2)) >= 0) {
		if (c != 2)
			node_fail(I, "strides must have 2 values (gradc convolves and pools in 2-D)");
		w->s[0] = v[0], w->s[1] = v[1];
	}
	if ((c = attr_ints(I, n, "dilations", v, 2)) >= 0) {
		if (c != 2)
			node_fail(I, "dilations must have 2 values");
		w->d[0] = v[0], w->d[1] = v[1];
	}
	if ((c = attr_ints(I, n, "pads", v, 4)) >= 0) {
		if (c != 4)
			node_fail(I, "pads must have 4 values");
		memcpy(w->p, v, sizeof w->p); /* ONNX: begins (H, W), then ends */
	}
	for (int k = 0; k < 2; k++)
		if (w->s[k] < 1 || w->d[k] < 1 || w->k[k] < 1 || w->p[k] < 0 || w->p[k + 2] < 0)
			node_fail(I, "a kernel, stride or dilation below 1 or a negative padding");
	OAttr *ap = onnx_attr(n, "auto_pad");
	const char *mode = ap && ap->s ? ap->s : "NOTSET";
	if (!strcmp(mode, "VALID")) {
		memset(w->p, 0, sizeof w->p);
	} else if (!strcmp(mode, "SAME_UPPER") || !strcmp(mode, "SAME_LOWER")) {
		for (int k = 0; k < 2; k++) {
			int64_t in = x->dim[1 + k], o = (in + w->s[k] - 1) / w->s[k];
			int64_t total = (o - 1) * w->s[k] + (w->k[k] - 1) * w->d[k] + 1 - in;
			total = total > 0 ? total : 0;
			int64_t small = total / 2, big = total - small;
			bool upper = !strcmp(mode, "SAME_UPPER");
			w->p[k] = upper ? small : big;
			w->p[k + 2] = upper ? big : small;
		}
	} else if (strcmp(mode, "NOTSET")) {
		node_fail(I, "auto_pad '%s' (supported: NOTSET, VALID, SAME_UPPER, SAME_LOWER)", mode);
	}
	int64_t *out[2] = {ho, wo};
	for (int k = 0; k < 2; k++) {
		int64_t span = x->dim[1 + k] + w->p[k] + w->p[k + 2] - w->d[k] * (w->k[k] - 1) - 1;
		if (span < 0)
			node_fail(I, "the window is larger than the padded input %s", full_text(x));
		*out[k] = span / w->s[k] + 1;
	}
}

/* The spatial input: batched [C, H, W] (a pending Pad taken into 'extra'). */
static Val *spatial_in(Imp *I, int64_t extra[4])
{
	Val *x = batched_in(I, 0);
	memset(extra, 0, sizeof(int64_t) * 4);
	if (x->pad) {
		memcpy(extra, x->pads, sizeof(int64_t) * 4);
		x = x->base;
	}
	if (x->rank != 3)
		node_fail(I, "input '%s' is %s; gradc convolves and pools [B, C, H, W] (2-D)",
			  x->onnx, full_text(x));
	return x;
}

void tr_conv(Imp *I, const ONode *n)
{
	int64_t extra[4];
	Val *x = spatial_in(I, extra), *w = need_in(I, 1), *b = in_val(I, 2), *out = out_val(I, 0);
	if (!w->c || w->c->rank != 4)
		node_fail(I, "the weight '%s' must be a constant [Cout, Cin / group, kh, kw]", w->onnx);
	int64_t g = attr_int(n, "group", 1), ks[2];
	int64_t cout = w->c->dim[0], cin = x->dim[0];
	if (g < 1 || cin % g || cout % g || w->c->dim[1] != cin / g)
		node_fail(I, "input '%s' %s, weight [%s] and group %lld do not match", x->onnx,
			  full_text(x), dims_text(w->c->dim, 4), (long long)g);
	OWindow win;
	win.k[0] = w->c->dim[2], win.k[1] = w->c->dim[3];
	if (attr_ints(I, n, "kernel_shape", ks, 2) >= 0 && (ks[0] != win.k[0] || ks[1] != win.k[1]))
		node_fail(I, "kernel_shape [%s] differs from the weight's [%s]", dims_text(ks, 2),
			  dims_text(win.k, 2));
	Val padded = *x;
	padded.dim[1] += extra[0] + extra[2], padded.dim[2] += extra[1] + extra[3];
	int64_t ho, wo;
	window(I, n, &padded, &win, &ho, &wo);
	for (int k = 0; k < 4; k++)
		win.p[k] += extra[k];
	Buf e = {0};
	buf_printf(&e, "conv2d(%s, %s", operand(I, x, false, -1), operand(I, w, false, 4));
	if (win.s[0] != 1 || win.s[1] != 1)
		buf_printf(&e, ", stride = %s", pair(win.s[0], win.s[1]));
	if (win.p[0] || win.p[1] || win.p[2] || win.p[3])
		buf_printf(&e, ", padding = %s", pad_text(win.p));
	if (win.d[0] != 1 || win.d[1] != 1)
		buf_printf(&e, ", dilation = %s", pair(win.d[0], win.d[1]));
	if (g != 1)
		buf_printf(&e, ", groups = %lld", (long long)g);
	buf_printf(&e, ")");
	if (b) {
		if (!b->c || b->c->n != cout)
			node_fail(I, "the bias '%s' must be a constant of %lld values", b->onnx,
				  (long long)cout);
		buf_printf(&e, " + %s", param_shaped(I, b, (Shape){3, {cout, 1, 1}}));
	}
	Shape s = {3, {cout, ho, wo}};
	set_shape(out, s);
	define(I, out, e.s, s);
}

void tr_pool(Imp *I, const ONode *n)
{
	bool max = !strcmp(n->op, "MaxPool");
	int64_t extra[4];
	Val *x = spatial_in(I, extra), *out = out_val(I, 0);
	OWindow win;
	if (attr_ints(I, n, "kernel_shape", win.k, 2) != 2)
		node_fail(I, "kernel_shape must have 2 values (gradc pools in 2-D)");
	if (attr_int(n, "ceil_mode", 0))
		node_fail(I, "ceil_mode = 1 is not supported (supported: ceil_mode = 0, PyTorch's "
			     "default)");
	int64_t cip = attr_int(n, "count_include_pad", 0);
	(void)attr_int(n, "storage_order", 0); /* only the Indices output depends on it */
	Val padded = *x;
	padded.dim[1] += extra[0] + extra[2], padded.dim[2] += extra[1] + extra[3];
	int64_t ho, wo;
	window(I, n, &padded, &win, &ho, &wo);
	if (win.d[0] != 1 || win.d[1] != 1)
		node_fail(I, "dilations [%s] (supported: 1, 1)", dims_text(win.d, 2));
	bool own = win.p[0] || win.p[1] || win.p[2] || win.p[3];
	bool folded = extra[0] || extra[1] || extra[2] || extra[3];
	if (folded && max)
		node_fail(I, "reads the zero padding of Pad '%s'; gradc's max pooling pads with "
			     "-infinity, so the two cannot be folded",
			  need_in(I, 0)->pad->name);
	if (folded && own && !cip)
		node_fail(I, "zero padding of Pad '%s' and count_include_pad = 0 cannot be folded "
			     "into one padding",
			  need_in(I, 0)->pad->name);
	if (folded)
		cip = 1;
	for (int k = 0; k < 4; k++)
		win.p[k] += extra[k];
	Buf e = {0};
	buf_printf(&e, "%s(%s, %s", max ? "maxpool2d" : "avgpool2d", value_of(I, x),
		   pair(win.k[0], win.k[1]));
	if (win.s[0] != win.k[0] || win.s[1] != win.k[1])
		buf_printf(&e, ", stride = %s", pair(win.s[0], win.s[1]));
	if (own || folded)
		buf_printf(&e, ", padding = %s", pad_text(win.p));
	if (!max && (own || folded) && !cip)
		buf_printf(&e, ", count_include_pad = 0");
	buf_printf(&e, ")");
	Shape s = {3, {x->dim[0], ho, wo}};
	set_shape(out, s);
	define(I, out, e.s, s);
}

void tr_gap(Imp *I, const ONode *n)
{
	(void)n;
	int64_t extra[4];
	Val *x = spatial_in(I, extra), *out = out_val(I, 0);
	if (extra[0] || extra[1] || extra[2] || extra[3])
		node_fail(I, "reads the output of a Pad (not supported)");
	out->batched = true;
	out->rank = 3;
	out->dim[0] = x->dim[0], out->dim[1] = out->dim[2] = 1;
	define(I, out, str_fmt("global_avgpool(%s)", value_of(I, x)), (Shape){1, {x->dim[0]}});
}

void tr_pad(Imp *I, const ONode *n)
{
	Val *x = batched_in(I, 0), *out = out_val(I, 0);
	OAttr *mode = onnx_attr(n, "mode");
	if (mode && mode->s && strcmp(mode->s, "constant"))
		node_fail(I, "mode '%s' (supported: constant, with zeros)", mode->s);
	int64_t p[2 * ONNX_MAX_RANK];
	int r = x->rank + 1, c;
	Val *vp = in_val(I, 1), *vv = in_val(I, 2);
	if (in_val(I, 3))
		node_fail(I, "the axes input is not supported");
	c = vp ? known_ints(I, vp, p, 2 * ONNX_MAX_RANK, "pads")
	       : attr_ints(I, n, "pads", p, 2 * ONNX_MAX_RANK);
	double value = vv ? known_scalar(I, vv, "constant_value") : attr_float(n, "value", 0);
	if (c != 2 * r)
		node_fail(I, "pads has %d values; %s needs %d", c, full_text(x), 2 * r);
	if (value != 0)
		node_fail(I, "pads with %g (supported: zeros)", value);
	if (r != 4 || p[0] || p[1] || p[r] || p[r + 1])
		node_fail(I, "pads %s as [%s]: gradc pads H and W of [B, C, H, W] only", full_text(x),
			  dims_text(p, c));
	for (int k = 0; k < c; k++)
		if (p[k] < 0 || p[k] > MAX_BYTES)
			node_fail(I, "a padding of %lld is not supported%s", (long long)p[k],
				  p[k] < 0 ? " (cropping)" : "");
	if (x->pad)
		node_fail(I, "pads the output of another Pad (not supported)");
	copy_shape(out, x);
	out->dim[1] += p[2] + p[6], out->dim[2] += p[3] + p[7];
	if (!p[2] && !p[3] && !p[6] && !p[7]) {
		alias(I, out, x, "pads nothing");
		return;
	}
	out->pad = n;
	out->base = x;
	out->pads[0] = p[2], out->pads[1] = p[3], out->pads[2] = p[6], out->pads[3] = p[7];
}

/* ---- BatchNormalization */

/* Per-channel scale and shift of node 'n': s = gamma / sqrt(var + eps),
 * t = beta - mean s; false if its parameters are not all known. */
static bool bn_params(Imp *I, const ONode *n, double **s, double **t, int64_t *c)
{
	Val *v[4];
	for (int k = 0; k < 4; k++)
		if (k + 1 >= n->n_in || !(v[k] = find_val(I, n->in[k + 1])) || !v[k]->c
		    || !v[k]->c->f || v[k]->c->rank != 1 || v[k]->c->n != v[0]->c->n)
			return false;
	double eps = attr_float(n, "epsilon", 1e-5);
	*c = v[0]->c->n;
	*s = alloc(sizeof(double) * (size_t)*c);
	*t = alloc(sizeof(double) * (size_t)*c);
	for (int64_t i = 0; i < *c; i++) {
		(*s)[i] = v[0]->c->f[i] / sqrt(v[3]->c->f[i] + eps);
		(*t)[i] = v[1]->c->f[i] - v[2]->c->f[i] * (*s)[i];
	}
	return true;
}

/* A known copy of 'v' under the name of 'hint'. */
static Val *derived(Imp *I, const Val *v, const char *hint, const char *origin, OTensor *t)
{
	Val *d = new_val(I, str_fmt("%s#%lld", v->onnx, (long long)I->n_v));
	d->hint = hint;
	set_known(d, t);
	d->origin = origin;
	return d;
}

/* Fold the BatchNormalization 'bn' into 'p' (a Conv or Gemm), if it can. */
static void fold_one(Imp *I, ONode *bn, ONode *p)
{
	bool conv = !strcmp(p->op, "Conv");
	Val *w = p->n_in > 1 ? find_val(I, p->in[1]) : NULL;
	Val *b = p->n_in > 2 && *p->in[2] ? find_val(I, p->in[2]) : NULL;
	if (!w || !w->c || !w->c->f || (p->n_in > 2 && *p->in[2] && (!b || !b->c || !b->c->f)))
		return;
	if (attr_int(bn, "training_mode", 0))
		return;
	bool tb = false;
	if (!conv) {
		tb = attr_int(p, "transB", 0);
		if (attr_float(p, "alpha", 1) != 1 || attr_float(p, "beta", 1) != 1
		    || attr_int(p, "transA", 0) || w->c->rank != 2)
			return;
	} else if (w->c->rank != 4) {
		return;
	}
	double *s, *t;
	int64_t c;
	int64_t cout = conv || tb ? w->c->dim[0] : w->c->dim[1];
	if (!bn_params(I, bn, &s, &t, &c) || c != cout || (b && b->c->n != cout))
		return;
	OTensor *nw = new_tensor(w->c->dtype, w->c->rank, w->c->dim);
	int64_t inner = w->c->n / cout;
	for (int64_t e = 0; e < nw->n; e++) {
		int64_t o = conv || tb ? e / inner : e % cout;
		nw->f[e] = w->c->f[e] * s[o];
	}
	OTensor *nb = new_tensor(w->c->dtype, 1, &cout);
	for (int64_t o = 0; o < cout; o++)
		nb->f[o] = (b ? b->c->f[o] : 0) * s[o] + t[o];
	Val *bias_src = b ? b : find_val(I, bn->in[2]);
	const char **in = alloc(sizeof(char *) * 3);
	in[0] = p->in[0];
	in[1] = derived(I, w, w->onnx, w->origin, nw)->onnx;
	in[2] = derived(I, bias_src, bias_src->onnx, bias_src->origin, nb)->onnx;
	p->in = in;
	p->n_in = 3;
	if (I->n_folded == I->cap_folded) {
		int64_t nc = I->cap_folded ? 2 * I->cap_folded : 8;
		I->folded = alloc_grow(I->folded, sizeof(ONode *) * (size_t)I->cap_folded,
				       sizeof(ONode *) * (size_t)nc);
		I->folded_into = alloc_grow(I->folded_into, sizeof(ONode *) * (size_t)I->cap_folded,
					    sizeof(ONode *) * (size_t)nc);
		I->cap_folded = nc;
	}
	I->folded[I->n_folded] = bn;
	I->folded_into[I->n_folded++] = p;
}

void fold_batchnorms(Imp *I)
{
	const OModel *m = I->m;
	for (int64_t k = 0; k < m->n_node; k++) {
		ONode *bn = &m->node[k];
		if (strcmp(bn->op, "BatchNormalization") || bn->n_in < 5 || !*bn->in[0])
			continue;
		if (uses_of(I, bn->in[0]) != 1)
			continue;
		for (int64_t j = 0; j < k; j++) {
			ONode *p = &m->node[j];
			if (p->n_out >= 1 && !strcmp(p->out[0], bn->in[0])
			    && (!strcmp(p->op, "Conv") || !strcmp(p->op, "Gemm"))) {
				I->node = p;
				fold_one(I, bn, p);
			}
		}
	}
}

void tr_batchnorm(Imp *I, const ONode *n)
{
	for (int64_t k = 0; k < I->n_folded; k++)
		if (I->folded[k] == n) {
			const ONode *p = I->folded_into[k];
			alias(I, out_val(I, 0), need_in(I, 0),
			      str_fmt("folded into node '%s' (%s)", *p->name ? p->name : p->out[0],
				      p->op));
			return;
		}
	if (attr_int(n, "training_mode", 0))
		node_fail(I, "training_mode = 1 (supported: inference, training_mode = 0)");
	Val *x = batched_in(I, 0), *out = out_val(I, 0);
	double *s, *t;
	int64_t c;
	if (!bn_params(I, n, &s, &t, &c))
		node_fail(I, "scale, B, mean and var must be constant vectors of one length");
	if (x->rank < 1 || x->dim[0] != c)
		node_fail(I, "input %s does not have %lld channels", full_text(x), (long long)c);
	Shape ps = {x->rank, {c, 1, 1, 1}};
	OTensor *ts = new_tensor(ONNX_FLOAT, 1, &c), *tt = new_tensor(ONNX_FLOAT, 1, &c);
	Val *sc = need_in(I, 1), *sh = need_in(I, 2);
	ts->dtype = tt->dtype = sc->c->dtype;
	memcpy(ts->f, s, sizeof(double) * (size_t)c);
	memcpy(tt->f, t, sizeof(double) * (size_t)c);
	const char *a = param_shaped(I, derived(I, sc, sc->onnx, sc->origin, ts), ps);
	const char *b = param_shaped(I, derived(I, sh, sh->onnx, sh->origin, tt), ps);
	copy_shape(out, x);
	define(I, out, str_fmt("%s * %s + %s", value_of(I, x), a, b), val_shape(x));
}
