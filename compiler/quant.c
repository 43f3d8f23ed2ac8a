/* quant.c: post-training int8 quantization (SPEC 4 "int8"): the decisions.
 *
 * Requires: the inference graph of the model (quant_graph: autodiff
 *           MODE_INFER, statistics applied, parameter values in Node.value)
 *           at the build's batch, and the same graph at the calibration
 *           batch with the calibration inputs.
 * Makes:    a QModel: a list of layers over int8 and float values, every
 *           number the generated code uses decided here (emit/int8.lua
 *           prints it, quant_eval runs it).
 *
 * 1. Calibration: the f64 evaluator runs the graph on the calibration
 *    inputs; each value's range is its minimum and maximum over them (with
 *    0 inside, so zero is exact).  Min/max, not a percentile: it is what
 *    TFLite's converter does, it never clips a value the calibration saw,
 *    and on the digits models it already stays within a point of float
 *    (README, "int8 inference"); a percentile was not tried.
 * 2. Activations: asymmetric int8, scale = (max - min) / 255, zero point
 *    -128 - min / scale rounded.  Weights: symmetric int8 per output
 *    channel, scale max|W[o,:]| / 127.  Biases: int32 at scale
 *    s_x * s_w[o], with -zp_x * sum_i W[o,i] folded in (CMSIS-NN does the
 *    same), so the kernel's inner loop is a plain int8 dot product.
 *    Requantization: multiplier s_x s_w[o] / s_y as (m, shift), TFLite's
 *    QuantizeMultiplier; relu and clip become the output's clamp.
 * 3. Layers, walking the graph in order: a product of a baked weight and an
 *    activation vector, its bias add and relu/clip -> one Q_FC; an add of
 *    two activations (and its relu) -> Q_ADD; relu/clip alone -> Q_CLAMP
 *    (same scale); reshape/flatten -> the same value; conv2d (any groups,
 *    stride, padding, dilation) with its bias and relu/clip -> Q_CONV;
 *    maxpool2d/avgpool2d (global_avgpool) -> a pool in the input's scale;
 *    concat -> each input requantized to the output's scale.  Every other
 *    operator with a float form (elementwise, softmax, the standardization
 *    of the inputs) runs in float between a dequantize and a quantize,
 *    noted in QModel.notes.  Quantize and dequantize layers are inserted
 *    where a value is needed in the other type.
 * 4. Kernel shapes: products and pointwise convolutions compute four output
 *    channels per load of the input (QLayer.block); a float elementwise layer
 *    read only by the next quantize is computed inside its loop
 *    (QLayer.fused: the standardized input never needs a float buffer).
 * 5. Arena: one interval per arena value, planned by live.c's
 *    plan_intervals (int8 values take 1 byte an element; float-fallback
 *    layers and clamps write over a dying input).
 *
 * Limits: products only of a weight [M, K] (or [K, N]) with a per-sample
 * vector, convolutions only with a parameter as the weight; operators
 * without an int8 or a float form here (transpose, the losses) are an
 * error naming them.
 */
#include "quant.h"
#include "gradc_q8.h"

#include <math.h>
#include <string.h>

/* ---- numbers */

bool quant_multiplier(double r, int32_t *m, int32_t *shift)
{
	*m = 0;
	*shift = 0;
	if (!(r > 0))
		return r == 0;
	int e;
	double f = frexp(r, &e); /* r = f 2^e, f in [0.5, 1) */
	int64_t q = (int64_t)llround(f * (double)(1ll << 31));
	if (q == (1ll << 31)) {
		q /= 2;
		e++;
	}
	if (e < -31)
		return true; /* rounds to 0 */
	if (e > 30)
		return false;
	*m = (int32_t)q;
	*shift = e;
	return true;
}

/* Scale and zero point of the range [lo, hi] (0 made part of it). */
static void choose_qparams(double lo, double hi, float *scale, int32_t *zp)
{
	lo = lo < 0 ? lo : 0;
	hi = hi > 0 ? hi : 0;
	double s = (hi - lo) / 255;
	if (!(s > 1e-30))
		s = 1.0 / 255; /* a value that is always 0 */
	*scale = (float)s;
	double z = -128 - lo / (double)*scale;
	z = z < -128 ? -128 : z > 127 ? 127 : z;
	*zp = (int32_t)lround(z);
}

/* The activation range [lo, hi] of op relu/clip (attr c) in (scale, zp). */
static void act_range(Op op, const double c[2], float s, int32_t zp, int32_t *lo, int32_t *hi)
{
	*lo = -128;
	*hi = 127;
	if (op == OP_RELU)
		*lo = zp > -128 ? zp : -128;
	if (op == OP_CLIP) {
		double a = zp + round(c[0] / s), b = zp + round(c[1] / s);
		*lo = a > -128 ? (a < 127 ? (int32_t)a : 127) : -128;
		*hi = b < 127 ? (b > -128 ? (int32_t)b : -128) : 127;
	}
}

/* ---- the builder */

typedef struct QB {
	QModel *q;
	const Graph *g;
	double *lo, *hi;  /* calibrated range per node id */
	int *fval, *qval; /* per node id: its float / int8 value, or -1 */
	int *alias;       /* reshape: the node whose value it is, else itself */
	int *uses;        /* consumers, outputs counting */
	bool *done;       /* absorbed into a layer of an earlier node */
	int cap_val, cap_layer;
} QB;

static int new_val(QB *b, bool i8, int64_t numel)
{
	QModel *q = b->q;
	if (q->n_val == b->cap_val) {
		int nc = b->cap_val ? 2 * b->cap_val : 32;
		q->val = alloc_grow(q->val, sizeof *q->val * (size_t)b->cap_val,
				    sizeof *q->val * (size_t)nc);
		b->cap_val = nc;
	}
	QVal *v = &q->val[q->n_val];
	*v = (QVal){.i8 = i8, .numel = numel, .input = -1, .output = -1, .first = -1,
		    .last = -1};
	return q->n_val++;
}

static QLayer *new_layer(QB *b, QKind kind, const Node *n, const char *what)
{
	QModel *q = b->q;
	if (q->n_layer == b->cap_layer) {
		int nc = b->cap_layer ? 2 * b->cap_layer : 32;
		q->layer = alloc_grow(q->layer, sizeof *q->layer * (size_t)b->cap_layer,
				      sizeof *q->layer * (size_t)nc);
		b->cap_layer = nc;
	}
	QLayer *l = &q->layer[q->n_layer++];
	*l = (QLayer){.kind = kind, .node = n, .what = what, .out = -1};
	return l;
}

static int root(const QB *b, int id)
{
	while (b->alias[id] != id)
		id = b->alias[id];
	return id;
}

/* The int8 value of node 'id' with its calibrated scale (quantized now
 * from its float value if it has none). */
static int val_q(QB *b, int id)
{
	id = root(b, id);
	if (b->qval[id] >= 0)
		return b->qval[id];
	const Node *n = &b->g->node[id];
	if (b->fval[id] < 0)
		die("quant: node %d has no value", id);
	int v = new_val(b, true, shape_numel(n->shape));
	choose_qparams(b->lo[id], b->hi[id], &b->q->val[v].scale, &b->q->val[v].zp);
	QLayer *l = new_layer(b, Q_QUANTIZE, n, "quantize");
	l->in[0] = b->fval[id];
	l->n_in = 1;
	l->out = v;
	return b->qval[id] = v;
}

/* The float value of node 'id' (dequantized now if it has none). */
static int val_f(QB *b, int id)
{
	id = root(b, id);
	if (b->fval[id] >= 0)
		return b->fval[id];
	if (b->qval[id] < 0)
		die("quant: node %d has no value", id);
	const Node *n = &b->g->node[id];
	int v = new_val(b, false, shape_numel(n->shape));
	QLayer *l = new_layer(b, Q_DEQUANTIZE, n, "dequantize");
	l->in[0] = b->qval[id];
	l->n_in = 1;
	l->out = v;
	return b->fval[id] = v;
}

/* The values of an unbatched operand (a parameter or a literal), or NULL. */
static const double *const_values(const Graph *g, int id, int64_t *n)
{
	const Node *c = &g->node[id];
	*n = shape_numel(c->shape);
	if (c->op == OP_PARAM)
		return c->value;
	if (c->op == OP_CONST || c->op == OP_FILL) {
		double *v = alloc(sizeof(double) * (size_t)*n);
		for (int64_t i = 0; i < *n; i++)
			v[i] = c->attr[0];
		return v;
	}
	return NULL;
}

/* The single consumer of node 'id' if it has exactly one and is no output. */
static int only_consumer(const QB *b, int id)
{
	if (b->uses[id] != 1)
		return -1;
	for (int k = 0; k < b->g->n_out; k++)
		if (b->g->out[k] == id)
			return -1;
	for (int i = id + 1; i < b->g->n_node; i++)
		for (int k = 0; !b->done[i] && k < b->g->node[i].n_in; k++)
			if (b->g->node[i].in[k] == id)
				return i;
	return -1;
}

static NORETURN void no_form(const Graph *g, const Node *n, const char *why)
{
	(void)g;
	error_at(n->loc, "--quantize int8: '%s' %s", op_name[n->op], why);
}

/* What follows node 'id' (rows channels, the first axis) that its kernel
 * folds in: a bias add of an unbatched operand with one value per channel
 * (or one), then relu or clip.  Returns the last node folded; *bias
 * (per channel, or NULL), *act (OP_ADD: none) and actc set. */
static int fold_tail(QB *b, int id, int64_t rows, const double **bias, Op *act, double actc[2])
{
	const Graph *g = b->g;
	int last = id;
	*bias = NULL;
	*act = OP_ADD;
	int c = only_consumer(b, last);
	if (c >= 0 && g->node[c].op == OP_ADD) {
		int o = g->node[c].in[0] == last ? g->node[c].in[1] : g->node[c].in[0];
		int64_t nb = 0;
		const double *bv = g->node[o].batched ? NULL : const_values(g, o, &nb);
		bool per_channel = nb == 1 || (nb == rows && g->node[o].shape.dim[0] == rows);
		if (bv && per_channel && shape_eq(g->node[c].shape, g->node[id].shape)) {
			double *full = alloc(sizeof(double) * (size_t)rows);
			for (int64_t r = 0; r < rows; r++)
				full[r] = bv[nb == 1 ? 0 : r];
			*bias = full;
			b->done[c] = true;
			last = c;
		}
	}
	c = only_consumer(b, last);
	if (c >= 0 && (g->node[c].op == OP_RELU || g->node[c].op == OP_CLIP)) {
		*act = g->node[c].op;
		memcpy(actc, g->node[c].attr, sizeof(double) * 2);
		b->done[c] = true;
		last = c;
	}
	return last;
}

static const char *layer_name(const char *base, bool bias, Op act)
{
	return str_fmt("%s%s%s", base, bias ? " + bias" : "",
		       act == OP_RELU ? " + relu" : act == OP_CLIP ? " + clip" : "");
}

/* l's int8 weights from W (rows x cols; element (r, k) at r * cols + k if
 * 'wrows', else k * rows + r), per-channel scales, the int32 bias (with
 * -zp_x sum(w) folded in if 'fold'), multipliers and shifts; node n for
 * messages. */
static void quant_weights(QB *b, QLayer *l, const Node *n, const double *W, bool wrows,
			  const double *bias, QVal xv, QVal yv, bool fold)
{
	int64_t rows = l->rows, cols = l->cols;
	if (cols * 128 * 128 >= INT32_MAX / 2)
		no_form(b->g, n, "sums too many products for an int32 accumulator");
	l->w = alloc((size_t)(rows * cols));
	l->wscale = alloc(sizeof(float) * (size_t)rows);
	l->bias = alloc(sizeof(int32_t) * (size_t)rows);
	l->mult = alloc(sizeof(int32_t) * (size_t)rows);
	l->shift = alloc(sizeof(int32_t) * (size_t)rows);
	for (int64_t r = 0; r < rows; r++) {
		double amax = 0;
		for (int64_t k = 0; k < cols; k++) {
			double v = W[wrows ? r * cols + k : k * rows + r];
			amax = fabs(v) > amax ? fabs(v) : amax;
		}
		float ws = (float)(amax > 0 ? amax / 127 : 1.0);
		l->wscale[r] = ws;
		int64_t sum = 0;
		for (int64_t k = 0; k < cols; k++) {
			double v = W[wrows ? r * cols + k : k * rows + r];
			long q = lround(v / (double)ws);
			q = q < -127 ? -127 : q > 127 ? 127 : q;
			l->w[r * cols + k] = (int8_t)q;
			sum += q;
		}
		double bs = (double)xv.scale * (double)ws;
		double bq = bias ? round(bias[r] / bs) : 0;
		double full = bq - (fold ? (double)xv.zp * (double)sum : 0);
		if (!(fabs(full) < (double)INT32_MAX / 2))
			no_form(b->g, n, "has a bias too large for int32 at its scale");
		l->bias[r] = (int32_t)full;
		if (!quant_multiplier(bs / (double)yv.scale, &l->mult[r], &l->shift[r]))
			no_form(b->g, n, "needs a requantization multiplier out of range");
	}
	b->q->weight_bytes += rows * cols + 3 * 4 * rows;
}

/* Node 'id' = W @ x or x @ W with a baked weight: one Q_FC, with the bias
 * add and relu/clip that follow folded in. */
static void build_fc(QB *b, int id)
{
	const Graph *g = b->g;
	const Node *n = &g->node[id];
	const Node *L = &g->node[n->in[0]], *R = &g->node[n->in[1]];
	bool wleft = L->op == OP_PARAM && R->batched && R->shape.rank == 1 && L->shape.rank == 2;
	bool wright = R->op == OP_PARAM && L->batched && L->shape.rank == 1 && R->shape.rank == 2;
	if ((!wleft && !wright) || n->shape.rank != 1)
		no_form(g, n, "has an int8 form only as W @ x or x @ W with a parameter W and a "
			      "per-sample vector x");
	const Node *W = wleft ? L : R;
	int x = wleft ? n->in[1] : n->in[0];
	int64_t rows = n->shape.dim[0];
	int64_t cols = g->node[x].shape.dim[0];
	/* W stored [rows, cols] (else [cols, rows]): Node.mm says which */
	bool wrows = wleft ? !n->mm.ta : n->mm.tb;
	if (W->shape.dim[0] != (wrows ? rows : cols))
		die("quant: weight '%s' %s for [%lld] -> [%lld]", W->name, shape_str(W->shape),
		    (long long)cols, (long long)rows);
	if (!W->value)
		die("quant: parameter '%s' without values", W->name);
	const double *bias;
	Op act;
	double actc[2] = {0, 0};
	int last = fold_tail(b, id, rows, &bias, &act, actc);
	int xin = val_q(b, x);
	QVal xv = b->q->val[xin];
	int out = new_val(b, true, rows);
	QVal *yv = &b->q->val[out];
	choose_qparams(b->lo[last], b->hi[last], &yv->scale, &yv->zp);
	QLayer *l = new_layer(b, Q_FC, &g->node[last], layer_name("fully connected", bias, act));
	l->in[0] = xin;
	l->n_in = 1;
	l->out = out;
	l->rows = rows;
	l->cols = cols;
	l->block = 4;
	l->dot4 = cols % 4 == 0;
	act_range(act, actc, yv->scale, yv->zp, &l->lo, &l->hi);
	quant_weights(b, l, n, W->value, wrows, bias, xv, *yv, true);
	b->qval[last] = out;
}

/* The geometry of spatial node n (its input x) into l. */
static void set_geometry(const Graph *g, QLayer *l, const Node *n, const Node *x)
{
	l->win = n->win;
	l->c = x->shape.dim[0], l->h = x->shape.dim[1], l->w_ = x->shape.dim[2];
	l->co = n->shape.dim[0], l->ho = n->shape.dim[1], l->wo = n->shape.dim[2];
	int64_t gr = n->win.groups > 0 ? n->win.groups : 1;
	l->cg = l->c / gr, l->og = l->co / gr;
	(void)g;
}

/* Node 'id' = conv2d(x, W) with a baked W: one Q_CONV, bias and relu/clip
 * folded in. */
static void build_conv(QB *b, int id)
{
	const Graph *g = b->g;
	const Node *n = &g->node[id];
	const Node *W = &g->node[n->in[1]];
	if (W->op != OP_PARAM || !g->node[n->in[0]].batched)
		no_form(g, n, "has an int8 form only with a parameter as its weight");
	const double *bias;
	Op act;
	double actc[2] = {0, 0};
	int64_t rows = n->shape.dim[0];
	int last = fold_tail(b, id, rows, &bias, &act, actc);
	int xin = val_q(b, n->in[0]);
	QVal xv = b->q->val[xin];
	int out = new_val(b, true, shape_numel(n->shape));
	QVal *yv = &b->q->val[out];
	choose_qparams(b->lo[last], b->hi[last], &yv->scale, &yv->zp);
	QLayer *l = new_layer(b, Q_CONV, &g->node[last],
			      layer_name(n->win.groups > 1 ? "conv2d (grouped)" : "conv2d", bias, act));
	l->in[0] = xin;
	l->n_in = 1;
	l->out = out;
	set_geometry(g, l, n, &g->node[n->in[0]]);
	l->xzp = xv.zp;
	l->rows = rows;
	l->cols = l->cg * n->win.kh * n->win.kw;
	const Window *k = &n->win;
	l->pointwise = k->kh == 1 && k->kw == 1 && k->sh == 1 && k->sw == 1 && k->pt == 0
		       && k->pl == 0 && k->pb == 0 && k->pr == 0 && l->cg == l->c;
	l->block = 4;
	act_range(act, actc, yv->scale, yv->zp, &l->lo, &l->hi);
	quant_weights(b, l, n, W->value, true, bias, xv, *yv, false);
	b->qval[last] = out;
}

/* Node 'id' = maxpool2d or avgpool2d of an activation: int8 in the input's
 * scale (max and mean commute with the affine map). */
static void build_pool(QB *b, int id)
{
	const Graph *g = b->g;
	const Node *n = &g->node[id];
	int xin = val_q(b, n->in[0]);
	QVal xv = b->q->val[xin];
	int out = new_val(b, true, shape_numel(n->shape));
	b->q->val[out].scale = xv.scale;
	b->q->val[out].zp = xv.zp;
	QLayer *l = new_layer(b, n->op == OP_MAXPOOL2D ? Q_MAXPOOL : Q_AVGPOOL, n, op_name[n->op]);
	l->in[0] = xin;
	l->n_in = 1;
	l->out = out;
	l->xzp = xv.zp;
	set_geometry(g, l, n, &g->node[n->in[0]]);
	b->qval[id] = out;
}

/* Node 'id' = concat of activations: each requantized to the output's scale. */
static void build_concat(QB *b, int id)
{
	const Graph *g = b->g;
	const Node *n = &g->node[id];
	int ins[MAX_IN];
	for (int k = 0; k < n->n_in; k++) {
		if (!g->node[n->in[k]].batched)
			no_form(g, n, "joins a parameter: no int8 form for that");
		ins[k] = val_q(b, n->in[k]);
	}
	int out = new_val(b, true, shape_numel(n->shape));
	QVal *yv = &b->q->val[out];
	choose_qparams(b->lo[id], b->hi[id], &yv->scale, &yv->zp);
	QLayer *l = new_layer(b, Q_CONCAT, n, "concat");
	l->n_in = n->n_in;
	l->out = out;
	for (int k = 0; k < n->n_in; k++) {
		l->in[k] = ins[k];
		QVal xv = b->q->val[ins[k]];
		if (!quant_multiplier((double)xv.scale / (double)yv->scale, &l->cmult[k],
				      &l->cshift[k]))
			no_form(g, n, "needs a requantization multiplier out of range");
	}
	b->qval[id] = out;
}

/* Node 'id' = a + b of two activations of one shape: Q_ADD (relu folded). */
static void build_add(QB *b, int id)
{
	const Graph *g = b->g;
	const Node *n = &g->node[id];
	int last = id;
	Op act = OP_ADD;
	double actc[2] = {0, 0};
	int c = only_consumer(b, id);
	if (c >= 0 && (g->node[c].op == OP_RELU || g->node[c].op == OP_CLIP)) {
		act = g->node[c].op;
		memcpy(actc, g->node[c].attr, sizeof actc);
		b->done[c] = true;
		last = c;
	}
	int a0 = val_q(b, n->in[0]), a1 = val_q(b, n->in[1]);
	QVal va = b->q->val[a0], vb = b->q->val[a1];
	int out = new_val(b, true, shape_numel(n->shape));
	QVal *yv = &b->q->val[out];
	choose_qparams(b->lo[last], b->hi[last], &yv->scale, &yv->zp);
	QLayer *l = new_layer(b, Q_ADD, &g->node[last], layer_name("add", false, act));
	l->node = n;
	l->in[0] = a0;
	l->in[1] = a1;
	l->n_in = 2;
	l->out = out;
	act_range(act, actc, yv->scale, yv->zp, &l->lo, &l->hi);
	double twice = 2 * (va.scale > vb.scale ? (double)va.scale : (double)vb.scale);
	int32_t m, s;
	bool ok = quant_multiplier(va.scale / twice, &m, &s);
	l->add[0] = va.zp, l->add[1] = m, l->add[2] = s;
	ok = ok && quant_multiplier(vb.scale / twice, &m, &s);
	l->add[3] = vb.zp, l->add[4] = m, l->add[5] = s;
	ok = ok && quant_multiplier(twice / ((double)(1 << 20) * yv->scale), &m, &s);
	l->add[6] = yv->zp, l->add[7] = m, l->add[8] = s;
	if (!ok)
		no_form(g, n, "needs a requantization multiplier out of range");
	b->qval[last] = out;
}

/* Node 'id' in float: its inputs dequantized, a note in the report. */
static void build_float(QB *b, int id)
{
	const Graph *g = b->g;
	const Node *n = &g->node[id];
	OpKind k = op_kind[n->op];
	bool ok = k == K_UNARY || k == K_ROW || k == K_BINARY;
	if (!ok || (k == K_ROW && n->n_in != 1))
		no_form(g, n, "has no int8 form yet (and no float fallback in an int8 build)");
	/* the inputs first: a dequantize they need comes before the layer */
	QLayer t = {.kind = Q_FLOAT, .node = n, .what = op_name[n->op], .op = n->op};
	memcpy(t.attr, n->attr, sizeof t.attr);
	if (k == K_ROW)
		t.row = n->shape.rank ? n->shape.dim[n->shape.rank - 1] : 1;
	if (k == K_BINARY) {
		const Node *a = &g->node[n->in[0]], *c = &g->node[n->in[1]];
		if (a->batched && c->batched) {
			if (!shape_eq(a->shape, c->shape))
				no_form(g, n, "broadcasts two activations: no int8 build of that yet");
			t.in[0] = val_f(b, n->in[0]);
			t.in[1] = val_f(b, n->in[1]);
			t.n_in = 2;
		} else {
			t.pside = a->batched ? 1 : 0;
			int act = n->in[1 - t.pside], cid = n->in[t.pside];
			const double *v = const_values(g, cid, &t.pn);
			if (!v || !g->node[act].batched
			    || (t.pn != 1 && !shape_eq(g->node[cid].shape, g->node[act].shape)))
				no_form(g, n, "combines values of shapes the int8 build does not "
					      "broadcast yet");
			t.pv = alloc(sizeof(float) * (size_t)t.pn);
			for (int64_t i = 0; i < t.pn; i++)
				t.pv[i] = (float)v[i];
			b->q->weight_bytes += 4 * t.pn;
			t.in[0] = val_f(b, act);
			t.n_in = 1;
		}
	} else {
		t.in[0] = val_f(b, n->in[0]);
		t.n_in = 1;
	}
	QLayer *l = new_layer(b, Q_FLOAT, n, op_name[n->op]);
	*l = t;
	l->out = new_val(b, false, shape_numel(n->shape));
	b->fval[id] = l->out;
	buf_printf(&b->q->notes, "%s:%d: '%s' (%s) runs in float between a dequantize and a "
				 "quantize\n",
		   g->src ? g->src->path : "model", n->loc.line, node_label(g, id), op_name[n->op]);
}

static void build_node(QB *b, int id)
{
	const Graph *g = b->g;
	const Node *n = &g->node[id];
	switch (n->op) {
	case OP_INPUT:
		if (!b->uses[id])
			return; /* not an argument of the entry point (the label) */
		if (dt_is_int(n->dtype))
			error_at(n->loc, "--quantize int8: the inference uses int input '%s'", n->name);
		b->fval[id] = new_val(b, false, shape_numel(n->shape));
		b->q->val[b->fval[id]].input = b->q->n_in;
		b->q->in_name[b->q->n_in] = n->name;
		b->q->in_shape[b->q->n_in++] = n->shape;
		return;
	case OP_PARAM: case OP_CONST: case OP_FILL:
		return; /* operands, baked where used */
	case OP_MATMUL:
		build_fc(b, id);
		return;
	case OP_RESHAPE:
		b->alias[id] = n->in[0];
		return;
	case OP_CONV2D:
		build_conv(b, id);
		return;
	case OP_MAXPOOL2D: case OP_AVGPOOL2D:
		build_pool(b, id);
		return;
	case OP_CONCAT:
		build_concat(b, id);
		return;
	case OP_ADD:
		if (g->node[n->in[0]].batched && g->node[n->in[1]].batched
		    && shape_eq(g->node[n->in[0]].shape, g->node[n->in[1]].shape)) {
			build_add(b, id);
			return;
		}
		break;
	case OP_RELU: case OP_CLIP: {
		int x = root(b, n->in[0]);
		if (b->qval[x] >= 0 && b->fval[x] < 0) {
			QVal xv = b->q->val[b->qval[x]];
			int out = new_val(b, true, shape_numel(n->shape));
			b->q->val[out].scale = xv.scale;
			b->q->val[out].zp = xv.zp;
			QLayer *l = new_layer(b, Q_CLAMP, n, op_name[n->op]);
			l->in[0] = b->qval[x];
			l->n_in = 1;
			l->out = out;
			act_range(n->op, n->attr, xv.scale, xv.zp, &l->lo, &l->hi);
			b->qval[id] = out;
			return;
		}
		break;
	}
	default:
		break;
	}
	if (!n->batched)
		no_form(g, n, "computes on parameters alone: no int8 form for that");
	build_float(b, id);
}

/* ---- calibration ranges */

static void calibrate(QB *b, const Graph *cal, const Data *cd)
{
	Eval *e = new_eval(cal);
	for (int i = 0; i < cal->n_node; i++) {
		const Node *n = &cal->node[i];
		if (n->op == OP_PARAM && n->value)
			memcpy(e->val[i], n->value, sizeof(double) * (size_t)shape_numel(n->shape));
		if (n->op == OP_INPUT && cd->v[i])
			memcpy(e->val[i], cd->v[i], sizeof(double) * (size_t)node_numel(cal, n));
	}
	eval_run(e);
	for (int i = 0; i < cal->n_node; i++) {
		double lo = INFINITY, hi = -INFINITY;
		for (int64_t k = 0, c = node_numel(cal, &cal->node[i]); k < c; k++) {
			double v = e->val[i][k];
			lo = v < lo ? v : lo;
			hi = v > hi ? v : hi;
		}
		b->lo[i] = lo;
		b->hi[i] = hi;
	}
}

/* ---- the arena */

/* The value layer s may write over its input (elementwise, same type and
 * size, the input dead after it), or -1. */
static int in_place(const QModel *q, int s)
{
	const QLayer *l = &q->layer[s];
	if (l->kind != Q_FLOAT && l->kind != Q_CLAMP)
		return -1;
	const QVal *x = &q->val[l->in[0]], *y = &q->val[l->out];
	bool arena = x->input < 0 && x->output < 0;
	return arena && x->i8 == y->i8 && x->numel == y->numel && x->last == s ? l->in[0] : -1;
}

static void plan_values(QModel *q)
{
	Interval *iv = alloc(sizeof *iv * (size_t)(q->n_val + 1));
	int *of = alloc(sizeof(int) * (size_t)(q->n_val + 1));
	int *at = alloc(sizeof(int) * (size_t)(q->n_val + 1));
	int n = 0;
	for (int v = 0; v < q->n_val; v++) {
		QVal *x = &q->val[v];
		at[v] = -1;
		if (x->input >= 0 || x->output >= 0)
			continue;
		if (x->first < 0)
			die("quant: value %d is never written", v);
		if (q->layer[x->first].fused)
			continue;
		int src = in_place(q, x->first);
		iv[n] = (Interval){.bytes = x->numel * q->batch * (x->i8 ? 1 : 4),
				   .first = x->first,
				   .last = x->last > x->first ? x->last : x->first,
				   .alias = src >= 0 ? at[src] : -1};
		at[v] = n;
		of[n++] = v;
	}
	int64_t lb;
	q->arena_bytes = n ? plan_intervals(iv, n, 16, &lb) : 0;
	verify_intervals(iv, n, 16, q->arena_bytes);
	for (int k = 0; k < n; k++)
		q->val[of[k]].offset = iv[k].offset;
}

/* A float elementwise layer of one activation whose value only the next
 * layer reads, that layer a quantize or another such: computed inside the
 * next layer's loop (the standardization of the inputs becomes part of the
 * entry's quantize).  The same float operations in the same order. */
static void fuse_float(QModel *q)
{
	int *readers = alloc(sizeof(int) * (size_t)(q->n_val + 1));
	for (int s = 0; s < q->n_layer; s++)
		for (int k = 0; k < q->layer[s].n_in; k++)
			readers[q->layer[s].in[k]]++;
	for (int s = 0; s + 1 < q->n_layer; s++) {
		QLayer *l = &q->layer[s], *next = &q->layer[s + 1];
		bool ew = l->kind == Q_FLOAT && op_kind[l->op] != K_ROW && l->n_in == 1;
		bool into = next->kind == Q_QUANTIZE
			    || (next->kind == Q_FLOAT && op_kind[next->op] != K_ROW && next->n_in == 1);
		if (ew && into && readers[l->out] == 1 && next->in[0] == l->out
		    && q->val[l->out].output < 0)
			l->fused = true;
	}
}

QModel *quantize(const Graph *g, const Graph *cal, const Data *cd, const Options *o)
{
	if (cal->n_node != g->n_node)
		die("quant: calibration graph differs");
	QModel *q = alloc(sizeof *q);
	q->prefix = o->name ? o->name : g->model;
	q->model = g->model_name;
	q->path = g->src ? g->src->path : "";
	q->batch = g->batch;
	q->calib_n = cd->n;
	QB b = {.q = q, .g = g};
	int nn = g->n_node;
	b.lo = alloc(sizeof(double) * (size_t)nn);
	b.hi = alloc(sizeof(double) * (size_t)nn);
	b.fval = alloc(sizeof(int) * (size_t)nn);
	b.qval = alloc(sizeof(int) * (size_t)nn);
	b.alias = alloc(sizeof(int) * (size_t)nn);
	b.uses = alloc(sizeof(int) * (size_t)nn);
	b.done = alloc((size_t)nn);
	/* what the outputs need (the graph keeps every definition), and uses */
	bool *need = alloc((size_t)nn);
	for (int k = 0; k < g->n_out; k++)
		need[g->out[k]] = true;
	for (int i = nn - 1; i >= 0; i--)
		for (int k = 0; need[i] && k < g->node[i].n_in; k++)
			need[g->node[i].in[k]] = true;
	for (int i = 0; i < nn; i++) {
		b.fval[i] = b.qval[i] = -1;
		b.alias[i] = i;
		b.done[i] = !need[i];
		for (int k = 0; need[i] && k < g->node[i].n_in; k++)
			b.uses[g->node[i].in[k]]++;
	}
	for (int k = 0; k < g->n_out; k++)
		b.uses[g->out[k]]++;
	calibrate(&b, cal, cd);
	for (int i = 0; i < nn; i++)
		if (!b.done[i])
			build_node(&b, i);
	/* the outputs: dequantized (or copied) into the caller's arrays */
	for (int k = 0; k < g->n_out; k++) {
		int id = root(&b, g->out[k]);
		const Node *n = &g->node[g->out[k]];
		int src = b.qval[id] >= 0 ? b.qval[id] : b.fval[id];
		if (src < 0)
			die("quant: output %d has no value", k);
		int out = new_val(&b, false, shape_numel(n->shape));
		q->val[out].output = q->n_out;
		q->out_name[q->n_out] = g->out_name[k];
		q->out_shape[q->n_out++] = n->shape;
		QLayer *l = new_layer(&b, Q_DEQUANTIZE, n, q->val[src].i8 ? "dequantize" : "copy");
		l->in[0] = src;
		l->n_in = 1;
		l->out = out;
	}
	fuse_float(q);
	/* live ranges in layer steps */
	for (int s = 0; s < q->n_layer; s++) {
		QLayer *l = &q->layer[s];
		q->val[l->out].first = s;
		q->val[l->out].last = s;
		for (int k = 0; k < l->n_in; k++)
			q->val[l->in[k]].last = s;
	}
	plan_values(q);
	return q;
}
