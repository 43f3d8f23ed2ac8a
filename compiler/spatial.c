/* spatial.c: the operators on images -- conv2d, the pools, reshape,
 * concat and clip (SPEC 1, second table): their constructors (shapes and
 * diagnostics), their multiply-adds and their reference loops.
 *
 * Layout: per sample [C, H, W], row-major (PyTorch's NCHW without the N);
 * a convolution's weight is [Cout, Cin / groups, kh, kw].  Output size per
 * axis: floor((H + pad_before + pad_after - dilation (k - 1) - 1) / stride)
 * + 1.  A window's taps in the padding read nothing: a convolution adds
 * zero for them, max pooling skips them (padding never wins), average
 * pooling counts them (count_include_pad = 1, Window.count_pad) or not.
 *
 * Gradients (autodiff.c makes them; their nodes keep the forward's Window):
 *   conv2d_dx(dy, W)        dx[c, i, j] = sum of W dy over the taps reading x[c, i, j]
 *   conv2d_dw(dy, x)        dW[o, c, u, v] = sum over b, ho, wo of dy x
 *   maxpool2d_grad(dy, x)   each window's dy to its first maximal element
 *   avgpool2d_grad(dy)      each window's dy / count to its elements
 *   reshape and slice carry the gradients of reshape and concat; clip's is
 *   the elementwise clip_grad.
 * The reference loops visit the taps of every output element in one order,
 * (b, o, ho, wo, c, u, v); the generated kernels (emit/conv.lua) sum each
 * output element over (c, u, v) in that order too.
 */
#include "gradc.h"

#include <math.h>
#include <string.h>

/* ---- shapes */

static void need_image(Graph *g, int x, const char *op, Loc loc)
{
	check_float(g, x, loc);
	Shape s = g->node[x].shape;
	if (s.rank != 3)
		error_at(loc, "'%s' expects an input [C, H, W] (channels, height, width), got %s%s",
		         op, shape_str(s),
		         s.rank == 2 ? ": reshape(x, 1, H, W) makes one channel" : "");
}

/* Output size along one axis of 'n' input elements, or a diagnostic. */
static int64_t out_size(const char *op, Loc loc, const char *axis, int64_t n, int before,
                        int after, int k, int dil, int stride)
{
	int64_t span = (int64_t)dil * (k - 1) + 1, padded = n + before + after;
	if (span > padded) {
		if (dil > 1)
			error_at(loc,
			         "'%s': the kernel (%d %s, dilated to %lld) is larger than the padded "
			         "input (%lld %s = %lld + padding %d + %d)",
			         op, k, axis, (long long)span, (long long)padded, axis, (long long)n,
			         before, after);
		error_at(loc,
		         "'%s': the kernel (%d %s) is larger than the padded input (%lld %s = %lld + "
		         "padding %d + %d)",
		         op, k, axis, (long long)padded, axis, (long long)n, before, after);
	}
	return (padded - span) / stride + 1;
}

int new_window_grad(Graph *g, Op op, int n_in, const int *in, const Node *f, Shape s,
                    bool batched)
{
	Window w = f->win;  /* f may live in g's node array, which may move */
	int id = new_grad(g, op, n_in, in, s, batched);
	g->node[id].win = w;
	return id;
}

int new_conv2d(Graph *g, int x, int w, Window win, Loc loc)
{
	need_image(g, x, "conv2d", loc);
	check_float(g, w, loc);
	Node *xn = &g->node[x], *wn = &g->node[w];
	Shape xs = xn->shape, ws = wn->shape;
	if (ws.rank != 4)
		error_at(loc, "'conv2d' expects a weight [Cout, Cin / groups, kh, kw], got %s",
		         shape_str(ws));
	if (wn->batched)
		error_at(loc,
		         "the weight '%s' of 'conv2d' depends on an input (per-sample weights are "
		         "not supported): use a param",
		         node_label(g, w));
	int64_t c = xs.dim[0], co = ws.dim[0], gr = win.groups;
	if (c % gr)
		error_at(loc, "'conv2d': groups = %lld does not divide the %lld input channels of %s",
		         (long long)gr, (long long)c, shape_str(xs));
	if (co % gr)
		error_at(loc,
		         "'conv2d': groups = %lld does not divide the %lld output channels of the "
		         "weight %s",
		         (long long)gr, (long long)co, shape_str(ws));
	if (ws.dim[1] != c / gr)
		error_at(loc,
		         "'conv2d': the weight %s has %lld input channels per group; the input %s "
		         "with groups = %lld needs %lld: the weight must be [%lld, %lld, %lld, %lld]",
		         shape_str(ws), (long long)ws.dim[1], shape_str(xs), (long long)gr,
		         (long long)(c / gr), (long long)co, (long long)(c / gr),
		         (long long)ws.dim[2], (long long)ws.dim[3]);
	if (ws.dim[2] > INT32_MAX / 2 || ws.dim[3] > INT32_MAX / 2)
		error_at(loc, "size overflow: the kernel of 'conv2d' %s is too large", shape_str(ws));
	win.kh = (int)ws.dim[2];
	win.kw = (int)ws.dim[3];
	int64_t ho = out_size("conv2d", loc, "rows", xs.dim[1], win.pt, win.pb, win.kh, win.dh,
	                      win.sh);
	int64_t wo = out_size("conv2d", loc, "columns", xs.dim[2], win.pl, win.pr, win.kw, win.dw,
	                      win.sw);
	int id = new_shaped(g, OP_CONV2D, 2, (int[2]){x, w}, shape_of(3, co, ho, wo), xn->batched,
	                    loc);
	g->node[id].win = win;
	return id;
}

int new_pool(Graph *g, Op op, int x, Window win, Loc loc)
{
	const char *name = op_name[op];
	need_image(g, x, name, loc);
	Node *xn = &g->node[x];
	Shape xs = xn->shape;
	int pads[4] = {win.pt, win.pl, win.pb, win.pr};
	for (int k = 0; k < 4; k++) {
		int kk = k % 2 ? win.kw : win.kh;
		if (2 * pads[k] > kk)
			error_at(loc,
			         "'%s': padding %d is more than half the kernel (%d): a window could "
			         "hold nothing but padding",
			         name, pads[k], kk);
	}
	int64_t ho = out_size(name, loc, "rows", xs.dim[1], win.pt, win.pb, win.kh, 1, win.sh);
	int64_t wo = out_size(name, loc, "columns", xs.dim[2], win.pl, win.pr, win.kw, 1, win.sw);
	win.dh = win.dw = win.groups = 1;
	int id = new_shaped(g, op, 1, &x, shape_of(3, xs.dim[0], ho, wo), xn->batched, loc);
	g->node[id].win = win;
	return id;
}

int new_global_avgpool(Graph *g, int x, Loc loc)
{
	need_image(g, x, "global_avgpool", loc);
	Shape xs = g->node[x].shape;
	if (xs.dim[1] > INT32_MAX / 2 || xs.dim[2] > INT32_MAX / 2)
		error_at(loc, "size overflow: 'global_avgpool' of %s", shape_str(xs));
	Window w = {.kh = (int)xs.dim[1], .kw = (int)xs.dim[2], .sh = (int)xs.dim[1],
	            .sw = (int)xs.dim[2], .count_pad = true};
	int p = new_pool(g, OP_AVGPOOL2D, x, w, loc);
	return new_reshape(g, p, shape_of(1, xs.dim[0]), loc);
}

int new_reshape(Graph *g, int x, Shape s, Loc loc)
{
	check_float(g, x, loc);
	Node *xn = &g->node[x];
	if (shape_numel(s) != shape_numel(xn->shape))
		error_at(loc, "'reshape' cannot make %s (%lld elements) of %s (%lld elements)",
		         shape_str(s), (long long)shape_numel(s), shape_str(xn->shape),
		         (long long)shape_numel(xn->shape));
	if (shape_eq(s, xn->shape))
		return x;
	if (xn->op == OP_FILL || xn->op == OP_CONST)
		return new_fill(g, xn->attr[0], s, xn->batched);
	if (xn->op == OP_RESHAPE)  /* a reshape of a reshape reads the first's input */
		x = xn->in[0];
	return new_shaped(g, OP_RESHAPE, 1, &x, s, g->node[x].batched, loc);
}

int new_concat(Graph *g, int n, const int *in, Loc loc)
{
	if (n == 1)
		return in[0];
	if (n > MAX_IN) {  /* concat(a, b, ..., z) = concat(concat(a, ..., h), i, ..., z) */
		int rest[MAX_IN];
		rest[0] = new_concat(g, MAX_IN, in, loc);
		for (int k = MAX_IN; k < n; k++)
			rest[k - MAX_IN + 1] = in[k];
		return new_concat(g, n - MAX_IN + 1, rest, loc);
	}
	Shape s = g->node[in[0]].shape;
	bool batched = false;
	for (int k = 0; k < n; k++) {
		check_float(g, in[k], loc);
		Node *a = &g->node[in[k]];
		batched |= a->batched;
		if (a->shape.rank == 0)
			error_at(loc, "'concat' joins along the first axis: its argument %d is a scalar",
			         k + 1);
		Shape t = a->shape;
		bool same = t.rank == s.rank;
		for (int d = 1; same && d < t.rank; d++)
			same = t.dim[d] == s.dim[d];
		if (!same)
			error_at(loc,
			         "shape mismatch in 'concat': %s and %s (all axes but the first must "
			         "be equal)",
			         shape_str(g->node[in[0]].shape), shape_str(t));
		if (k > 0)
			s.dim[0] += t.dim[0];
	}
	return new_shaped(g, OP_CONCAT, n, in, s, batched, loc);
}

int new_clip(Graph *g, int x, double lo, double hi, Loc loc)
{
	check_float(g, x, loc);
	if (!(lo <= hi))
		error_at(loc, "'clip' needs lo <= hi, got lo = %g, hi = %g", lo, hi);
	Node *xn = &g->node[x];
	const double c[2] = {lo, hi};
	if (xn->op == OP_FILL || xn->op == OP_CONST)
		return new_fill(g, apply_ew(OP_CLIP, xn->attr[0], 0, c), xn->shape, xn->batched);
	int id = new_unary(g, OP_CLIP, x, lo, loc);
	g->node[id].attr[1] = hi;
	return id;
}

/* ---- geometry */

/* A window's geometry: input [c, h, w], output [co, ho, wo] per sample, of
 * nb samples; cg input and og output channels per group. */
typedef struct Geo {
	int64_t nb, c, h, w, co, ho, wo, cg, og;
	Window k;
} Geo;

static Geo geometry(const Graph *g, const Node *n)
{
	const Node *in = n, *out = n;  /* the forward op's input and output */
	switch (n->op) {
	case OP_CONV2D: case OP_MAXPOOL2D: case OP_AVGPOOL2D:
		in = &g->node[n->in[0]];
		break;
	case OP_CONV2D_DW:
		in = &g->node[n->in[1]];
		out = &g->node[n->in[0]];
		break;
	case OP_CONV2D_DX: case OP_MAXPOOL2D_GRAD: case OP_AVGPOOL2D_GRAD:
		out = &g->node[n->in[0]];
		break;
	default:
		die("geometry: %s", op_name[n->op]);
	}
	Geo q = {.nb = out->batched ? g->batch : 1, .k = n->win};
	q.c = in->shape.dim[0], q.h = in->shape.dim[1], q.w = in->shape.dim[2];
	q.co = out->shape.dim[0], q.ho = out->shape.dim[1], q.wo = out->shape.dim[2];
	int64_t gr = n->win.groups > 0 ? n->win.groups : 1;
	q.cg = q.c / gr, q.og = q.co / gr;
	return q;
}

int64_t conv_macs(const Graph *g, const Node *n)
{
	Geo q = geometry(g, n);
	return q.nb * q.co * q.ho * q.wo * q.cg * q.k.kh * q.k.kw;
}

/* ---- reference loops */

/* conv2d, conv2d_dx, conv2d_dw: one loop over the taps, three products. */
static void conv_ref(const Geo *q, Op op, const double *a, const double *b, double *y, int64_t ny)
{
	const Window *k = &q->k;
	memset(y, 0, sizeof(double) * (size_t)ny);
	for (int64_t s = 0; s < q->nb; s++)
		for (int64_t o = 0; o < q->co; o++)
			for (int64_t i = 0; i < q->ho; i++)
				for (int64_t j = 0; j < q->wo; j++) {
					int64_t oi = ((s * q->co + o) * q->ho + i) * q->wo + j;
					int64_t c0 = o / q->og * q->cg;
					for (int64_t c = 0; c < q->cg; c++)
						for (int u = 0; u < k->kh; u++)
							for (int v = 0; v < k->kw; v++) {
								int64_t hi = i * k->sh - k->pt + u * k->dh;
								int64_t wi = j * k->sw - k->pl + v * k->dw;
								if (hi < 0 || hi >= q->h || wi < 0 || wi >= q->w)
									continue;
								int64_t xi = ((s * q->c + c0 + c) * q->h + hi) * q->w + wi;
								int64_t wk = ((o * q->cg + c) * k->kh + u) * k->kw + v;
								if (op == OP_CONV2D)  /* a = x, b = W */
									y[oi] += a[xi] * b[wk];
								else if (op == OP_CONV2D_DX)  /* a = dy, b = W */
									y[xi] += b[wk] * a[oi];
								else  /* a = dy, b = x */
									y[wk] += a[oi] * b[xi];
							}
				}
}

/* The pools and their gradients (x: the input, or dy for the gradients;
 * x2: maxpool2d_grad's forward input). */
static void pool_ref(const Geo *q, Op op, const double *x, const double *x2, double *y,
                     int64_t ny)
{
	const Window *k = &q->k;
	bool grad = op == OP_MAXPOOL2D_GRAD || op == OP_AVGPOOL2D_GRAD;
	if (grad)
		memset(y, 0, sizeof(double) * (size_t)ny);
	for (int64_t s = 0; s < q->nb; s++)
		for (int64_t c = 0; c < q->c; c++)
			for (int64_t i = 0; i < q->ho; i++)
				for (int64_t j = 0; j < q->wo; j++) {
					int64_t oi = ((s * q->c + c) * q->ho + i) * q->wo + j;
					int64_t base = (s * q->c + c) * q->h * q->w;
					int64_t h0 = i * k->sh - k->pt, w0 = j * k->sw - k->pl;
					int64_t best = -1, count = 0;
					double sum = 0;
					for (int64_t hi = h0; hi < h0 + k->kh; hi++)
						for (int64_t wi = w0; wi < w0 + k->kw; wi++) {
							if (hi < 0 || hi >= q->h || wi < 0 || wi >= q->w)
								continue;
							int64_t xi = base + hi * q->w + wi;
							const double *v = op == OP_MAXPOOL2D_GRAD ? x2 : x;
							if (best < 0 || v[xi] > v[best])
								best = xi;
							sum += grad ? 0 : x[xi];
							count++;
						}
					double div = (double)(k->count_pad ? (int64_t)k->kh * k->kw : count);
					switch (op) {
					case OP_MAXPOOL2D: y[oi] = x[best]; break;
					case OP_AVGPOOL2D: y[oi] = sum / div; break;
					case OP_MAXPOOL2D_GRAD: y[best] += x[oi]; break;
					default:  /* avgpool2d_grad */
						for (int64_t hi = h0; hi < h0 + k->kh; hi++)
							for (int64_t wi = w0; wi < w0 + k->kw; wi++)
								if (hi >= 0 && hi < q->h && wi >= 0 && wi < q->w)
									y[base + hi * q->w + wi] += x[oi] / div;
					}
				}
}

void eval_spatial(const Graph *g, const Node *n, const double *const *x, double *y)
{
	int64_t ny = node_numel(g, n), nb = n->batched ? g->batch : 1;
	int64_t m = shape_numel(n->shape);
	switch (n->op) {
	case OP_CONV2D: case OP_CONV2D_DX: case OP_CONV2D_DW: {
		Geo q = geometry(g, n);
		conv_ref(&q, n->op, x[0], x[1], y, ny);
		break;
	}
	case OP_MAXPOOL2D: case OP_AVGPOOL2D: case OP_MAXPOOL2D_GRAD: case OP_AVGPOOL2D_GRAD: {
		Geo q = geometry(g, n);
		pool_ref(&q, n->op, x[0], n->n_in > 1 ? x[1] : NULL, y, ny);
		break;
	}
	case OP_RESHAPE:
		memcpy(y, x[0], sizeof(double) * (size_t)ny);
		break;
	case OP_CONCAT:
		for (int64_t s = 0, off = 0; s < nb; s++)
			for (int k = 0; k < n->n_in; k++) {
				const Node *a = &g->node[n->in[k]];
				int64_t ma = shape_numel(a->shape);
				memcpy(y + off, x[k] + (a->batched ? s * ma : 0), sizeof(double) * (size_t)ma);
				off += ma;
			}
		break;
	case OP_SLICE: {
		const Node *a = &g->node[n->in[0]];
		int64_t ma = shape_numel(a->shape), from = (int64_t)n->attr[0];
		for (int64_t s = 0; s < nb; s++)
			memcpy(y + s * m, x[0] + (a->batched ? s * ma : 0) + from,
			       sizeof(double) * (size_t)m);
		break;
	}
	default:
		die("eval_spatial: %s", op_name[n->op]);
	}
}
