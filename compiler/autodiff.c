/* autodiff.c: derive the backward graph and the optimizer step.
 *
 * Requires: a lowered forward graph (Node.mm filled).
 * Makes:    a new graph per mode; TRAIN and GRAD append the batch mean of
 *           the objective (Graph.loss) and of each tracked scalar, then the
 *           backward pass, and TRAIN one update node per trainable parameter.
 *           Sets Node.backward/fwd/deriv on what it adds and Node.grad on
 *           each trainable parameter.
 *
 * Algorithm (reverse mode, as ggml_compute_backward and micrograd):
 *   1. Mark the nodes on a path from a trainable parameter to the objective;
 *      only they get adjoints, so a frozen layer costs no backward work.
 *   2. Seed dJ with 1/B per sample (the trained quantity is the batch mean;
 *      a parameter-only objective gets 1).
 *   3. Visit the marked nodes in reverse order.  A node's adjoint is complete
 *      when visited (every consumer has a larger id); its rule below adds a
 *      contribution to each marked input, reduced back to the input's shape
 *      where the forward op broadcast it.  Constructors fold literals, so the
 *      1/B seed and the L2 penalty's constants end as one SCALE, never as a
 *      multiplication by one.
 *   4. Append each parameter's update (TRAIN).  It depends only on that
 *      parameter and its gradient; the scheduler orders it after every read
 *      of the old value.
 *
 * Limits: first-order only; the graph rules assume the forward ops of
 * ops.def (backward ops are never differentiated).
 */
#include "gradc.h"

#include <string.h>

typedef struct AD {
	Graph *g;
	int n_fwd;    /* nodes before the backward pass */
	int *grad;    /* adjoint of each forward node, or -1 */
	bool *path;   /* on a path trainable param -> objective */
	int cur;      /* forward node whose rule is running */
	const char *J; /* the objective's name */
} AD;

/* "dJ/dh", the name of node x's adjoint in comments. */
static const char *dname(AD *ad, int x)
{
	Node *n = &ad->g->node[x];
	if (n->name)
		return str_fmt("d%s/d%s", ad->J, n->name);
	return str_fmt("d%s/d(%s)", ad->J, node_label(ad->g, x));
}

static const char *label(AD *ad, int x)
{
	return node_label(ad->g, x);
}

/* Sum v down to the shape of node x (the adjoint of a broadcast). */
static int reduce_to(AD *ad, int v, int x)
{
	Graph *g = ad->g;
	Node *nv = &g->node[v], *nx = &g->node[x];
	if (shape_eq(nv->shape, nx->shape) && nv->batched == nx->batched)
		return v;
	if (nv->op == OP_FILL || nv->op == OP_CONST) {
		double ratio = (double)node_numel(g, nv) / (double)node_numel(g, nx);
		return new_fill(g, nv->attr[0] * ratio, nx->shape, nx->batched);
	}
	return new_grad(g, OP_REDUCE_TO, 1, &v, nx->shape, nx->batched);
}

/* Is 'c' a multiple of a parameter (the L2 penalty's lambda W)? */
static bool is_decay(const Graph *g, int c)
{
	const Node *n = &g->node[c];
	return n->op == OP_SCALE && g->node[n->in[0]].op == OP_PARAM;
}

/* Add contribution 'c' (whose math is 'expr') to the adjoint of 'x'. */
static void accumulate(AD *ad, int x, int c, const char *expr)
{
	if (x >= ad->n_fwd || !ad->path[x])
		return;
	Graph *g = ad->g;
	c = reduce_to(ad, c, x);
	if (is_decay(g, c))  /* its rule's text may name folded constants */
		expr = str_fmt("%g %s", g->node[c].attr[0], label(ad, g->node[c].in[0]));
	if (c >= ad->n_fwd && !g->node[c].deriv)
		g->node[c].deriv = expr;
	if (ad->grad[x] < 0) {
		ad->grad[x] = c;
		return;
	}
	int prev = ad->grad[x];
	const char *pe = g->node[prev].deriv ? g->node[prev].deriv : label(ad, prev);
	/* the weight-decay term reads last, as in dJ/dW = dJ/do h^T + lambda W */
	bool swap = is_decay(g, prev) && !is_decay(g, c);
	int sum = swap ? new_binary(g, OP_ADD, c, prev, (Loc){0})
	               : new_binary(g, OP_ADD, prev, c, (Loc){0});
	if (sum >= ad->n_fwd && !g->node[sum].deriv)
		g->node[sum].deriv = swap ? str_fmt("%s + %s", expr, pe) : str_fmt("%s + %s", pe, expr);
	ad->grad[x] = sum;
}

static int grad2(AD *ad, Op op, int a, int b, Shape s, bool batched)
{
	int in[2] = {a, b};
	return new_grad(ad->g, op, 2, in, s, batched);
}

/* Gradient of C = op(L) op(R) (Matmul in gradc.h) with respect to L. */
static int matmul_dl(AD *ad, Node *n, int dc)
{
	Node *l = &ad->g->node[n->in[0]];
	Matmul f = n->mm, mm = {.nb = f.nb, .acc = f.nb > 1 && f.sl == 0};
	if (!f.ta) {  /* dL[M,K] = dC[M,N] op(R)^T */
		mm = (Matmul){.m = f.m, .n = f.k, .k = f.n, .ta = false, .tb = !f.tb,
		                .nb = f.nb, .sl = f.sc, .sr = f.sr, .sc = f.sl, .acc = mm.acc};
		return new_matmul(ad->g, dc, n->in[1], mm, l->shape, l->batched);
	}
	/* dL[K,M] = op(R)[K,N] dC^T */
	mm = (Matmul){.m = f.k, .n = f.m, .k = f.n, .ta = f.tb, .tb = true,
	                .nb = f.nb, .sl = f.sr, .sr = f.sc, .sc = f.sl, .acc = mm.acc};
	return new_matmul(ad->g, n->in[1], dc, mm, l->shape, l->batched);
}

/* Gradient of C = op(L) op(R) with respect to R. */
static int matmul_dr(AD *ad, Node *n, int dc)
{
	Node *r = &ad->g->node[n->in[1]];
	Matmul f = n->mm;
	bool acc = f.nb > 1 && f.sr == 0;
	if (!f.tb) {  /* dR[K,N] = op(L)^T dC */
		Matmul mm = {.m = f.k, .n = f.n, .k = f.m, .ta = !f.ta, .tb = false,
		                .nb = f.nb, .sl = f.sl, .sr = f.sc, .sc = f.sr, .acc = acc};
		return new_matmul(ad->g, n->in[0], dc, mm, r->shape, r->batched);
	}
	/* dR[N,K] = dC^T op(L) */
	Matmul mm = {.m = f.n, .n = f.k, .k = f.m, .ta = true, .tb = f.ta,
	                .nb = f.nb, .sl = f.sc, .sr = f.sl, .sc = f.sr, .acc = acc};
	return new_matmul(ad->g, dc, n->in[0], mm, r->shape, r->batched);
}

/* The rule of forward node 'id' with complete adjoint 'dy'. */
static void backprop(AD *ad, int id, int dy)
{
	Graph *g = ad->g;
	Node n = g->node[id];  /* a copy: constructors may move the array */
	int a = n.in[0], b = n.in[1];
	const char *gy = dname(ad, id), *la = n.n_in > 0 ? label(ad, a) : "";
	const char *lb = n.n_in > 1 ? label(ad, b) : "";
	Loc nl = {0};
	switch (n.op) {
	case OP_INPUT: case OP_PARAM: case OP_CONST: case OP_FILL:
		break;
	case OP_ADD:  /* y = a + b: da = dy, db = dy */
		accumulate(ad, a, dy, gy);
		accumulate(ad, b, dy, gy);
		break;
	case OP_SUB:  /* y = a - b: da = dy, db = -dy */
		accumulate(ad, a, dy, gy);
		if (b < ad->n_fwd && ad->path[b])
			accumulate(ad, b, new_unary(g, OP_NEG, dy, 0, nl), str_fmt("-%s", gy));
		break;
	case OP_MUL:  /* y = a * b: da = dy * b, db = dy * a */
		if (ad->path[a])
			accumulate(ad, a, new_binary(g, OP_MUL, dy, b, nl), str_fmt("%s * %s", gy, lb));
		if (ad->path[b])
			accumulate(ad, b, new_binary(g, OP_MUL, dy, a, nl), str_fmt("%s * %s", gy, la));
		break;
	case OP_DIV:  /* y = a / b: da = dy / b, db = -dy * y / b */
		if (ad->path[a])
			accumulate(ad, a, new_binary(g, OP_DIV, dy, b, nl), str_fmt("%s / %s", gy, lb));
		if (ad->path[b]) {
			int t = new_binary(g, OP_DIV, new_binary(g, OP_MUL, dy, id, nl), b, nl);
			accumulate(ad, b, new_unary(g, OP_NEG, t, 0, nl),
			           str_fmt("-%s * %s / %s", gy, label(ad, id), lb));
		}
		break;
	case OP_NEG:  /* y = -a: da = -dy */
		accumulate(ad, a, new_unary(g, OP_NEG, dy, 0, nl), str_fmt("-%s", gy));
		break;
	case OP_SCALE:  /* y = c a: da = c dy */
		accumulate(ad, a, new_unary(g, OP_SCALE, dy, n.attr[0], nl),
		           str_fmt("%g %s", n.attr[0], gy));
		break;
	case OP_RELU:  /* y = relu(a): da = dy * (y > 0), the output's mask */
		accumulate(ad, a, grad2(ad, OP_RELU_GRAD, dy, id, n.shape, n.batched),
		           str_fmt("%s * relu'(%s)", gy, la));
		break;
	case OP_LEAKY_RELU: {  /* da = dy * (a > 0 ? 1 : alpha); y > 0 iff a > 0 when alpha > 0 */
		int s = n.attr[0] > 0 ? id : a;
		int d = grad2(ad, OP_LEAKY_RELU_GRAD, dy, s, n.shape, n.batched);
		g->node[d].attr[0] = n.attr[0];
		accumulate(ad, a, d, str_fmt("%s * leaky_relu'(%s)", gy, la));
		break;
	}
	case OP_SIGMOID:  /* da = dy * y * (1 - y) */
		accumulate(ad, a, grad2(ad, OP_SIGMOID_GRAD, dy, id, n.shape, n.batched),
		           str_fmt("%s * %s (1 - %s)", gy, label(ad, id), label(ad, id)));
		break;
	case OP_TANH:  /* da = dy * (1 - y^2) */
		accumulate(ad, a, grad2(ad, OP_TANH_GRAD, dy, id, n.shape, n.batched),
		           str_fmt("%s * (1 - %s^2)", gy, label(ad, id)));
		break;
	case OP_EXP:  /* da = dy * y */
		accumulate(ad, a, new_binary(g, OP_MUL, dy, id, nl),
		           str_fmt("%s * %s", gy, label(ad, id)));
		break;
	case OP_LOG:  /* da = dy / a */
		accumulate(ad, a, new_binary(g, OP_DIV, dy, a, nl), str_fmt("%s / %s", gy, la));
		break;
	case OP_SQRT:  /* da = dy / (2 y) */
		accumulate(ad, a, grad2(ad, OP_SQRT_GRAD, dy, id, n.shape, n.batched),
		           str_fmt("%s / (2 %s)", gy, label(ad, id)));
		break;
	case OP_ABS:  /* da = dy * sign(a) */
		accumulate(ad, a, grad2(ad, OP_ABS_GRAD, dy, a, n.shape, n.batched),
		           str_fmt("%s * sign(%s)", gy, la));
		break;
	case OP_SOFTMAX:  /* da = y * (dy - sum(dy * y)) */
		accumulate(ad, a, grad2(ad, OP_SOFTMAX_GRAD, dy, id, n.shape, n.batched),
		           str_fmt("%s * (%s - sum(%s * %s))", label(ad, id), gy, gy, label(ad, id)));
		break;
	case OP_LOG_SOFTMAX:  /* da = dy - exp(y) * sum(dy) */
		accumulate(ad, a, grad2(ad, OP_LOG_SOFTMAX_GRAD, dy, id, n.shape, n.batched),
		           str_fmt("%s - softmax(%s) sum(%s)", gy, la, gy));
		break;
	case OP_SUM: case OP_MEAN: {  /* da = dy broadcast (mean: / n) */
		Node *x = &g->node[a];
		int e = new_grad(g, OP_EXPAND, 1, &dy, x->shape, n.batched);
		if (g->node[dy].op == OP_FILL || g->node[dy].op == OP_CONST)
			e = new_fill(g, g->node[dy].attr[0], x->shape, n.batched);
		if (n.op == OP_MEAN)
			e = new_unary(g, OP_SCALE, e, 1.0 / (double)shape_numel(x->shape), nl);
		accumulate(ad, a, e, n.op == OP_SUM ? gy : str_fmt("%s / %lld", gy,
		           (long long)shape_numel(g->node[a].shape)));
		break;
	}
	case OP_SUMSQ:  /* da = 2 a dy */
		accumulate(ad, a, new_binary(g, OP_MUL, a, new_unary(g, OP_SCALE, dy, 2, nl), nl),
		           str_fmt("2 %s %s", gy, la));
		break;
	case OP_TRANSPOSE:  /* da = dy^T */
		accumulate(ad, a, new_unary(g, OP_TRANSPOSE, dy, 0, nl), str_fmt("%s^T", gy));
		break;
	case OP_MATMUL: {  /* C = a @ b per sample: da = dC b^T, db = a^T dC */
		/* lower swapped the operands of [m,k]@[k] (the only forward tb) */
		const char *pa = label(ad, n.mm.tb ? b : a), *pb = label(ad, n.mm.tb ? a : b);
		const char *ea = str_fmt("%s %s^T", gy, pb), *eb = str_fmt("%s^T %s", pa, gy);
		if (ad->path[a])
			accumulate(ad, a, matmul_dl(ad, &n, dy), n.mm.tb ? eb : ea);
		if (ad->path[b])
			accumulate(ad, b, matmul_dr(ad, &n, dy), n.mm.tb ? ea : eb);
		break;
	}
	case OP_CROSS_ENTROPY: {  /* dlogits = dy (softmax(logits) - onehot(y)) */
		/* L itself is an input: L + logits[y] is the row's logsumexp, so
		 * the softmax costs one exp per logit, not a second max and sum */
		int in[4] = {dy, a, b, id};
		Node *x = &g->node[a];
		accumulate(ad, a, new_grad(g, OP_CE_GRAD, 4, in, x->shape, n.batched),
		           str_fmt("%s (softmax(%s) - onehot(%s))", gy, la, lb));
		break;
	}
	case OP_MSE: {  /* da = dy 2 (a - b) / n, db = -da */
		int in[3] = {dy, a, b};
		Shape s = g->node[a].shape;
		int d = new_grad(g, OP_MSE_GRAD, 3, in, s, n.batched);
		const char *e = str_fmt("2 %s (%s - %s) / %lld", gy, la, lb, (long long)shape_numel(s));
		accumulate(ad, a, d, e);
		if (ad->path[b])
			accumulate(ad, b, new_unary(g, OP_NEG, d, 0, nl), str_fmt("-%s", e));
		break;
	}
	case OP_CLIP: {  /* da = dy * (lo <= a <= hi), as torch.clamp */
		int d = grad2(ad, OP_CLIP_GRAD, dy, a, n.shape, n.batched);
		g->node[d].attr[0] = n.attr[0];
		g->node[d].attr[1] = n.attr[1];
		accumulate(ad, a, d, str_fmt("%s * (%g <= %s <= %g)", gy, n.attr[0], la, n.attr[1]));
		break;
	}
	case OP_CONV2D: {  /* y = conv2d(a, W = b): da = conv2d^T(dy, W), dW = dy (*) a */
		Node *x = &g->node[a], *w = &g->node[b];
		Shape xs = x->shape, ws = w->shape;
		bool xb = x->batched;
		if (ad->path[a])
			accumulate(ad, a, new_window_grad(g, OP_CONV2D_DX, 2, (int[2]){dy, b}, &n, xs, xb),
			           str_fmt("conv2d^T(%s, %s)", gy, lb));
		if (ad->path[b])
			accumulate(ad, b, new_window_grad(g, OP_CONV2D_DW, 2, (int[2]){dy, a}, &n, ws, false),
			           str_fmt("sum over b, ho, wo of %s %s (a correlation)", gy, la));
		break;
	}
	case OP_MAXPOOL2D: {  /* dy to the first maximum of each window */
		Shape xs = g->node[a].shape;
		accumulate(ad, a, new_window_grad(g, OP_MAXPOOL2D_GRAD, 2, (int[2]){dy, a}, &n, xs,
		                                  n.batched),
		           str_fmt("%s routed to the first maximum of each window of %s", gy, la));
		break;
	}
	case OP_AVGPOOL2D: {  /* dy / count spread over each window */
		Shape xs = g->node[a].shape;
		accumulate(ad, a, new_window_grad(g, OP_AVGPOOL2D_GRAD, 1, &dy, &n, xs, n.batched),
		           str_fmt("%s spread over each window of %s", gy, la));
		break;
	}
	case OP_RESHAPE:  /* da = dy in a's shape */
		accumulate(ad, a, new_reshape(g, dy, g->node[a].shape, nl),
		           str_fmt("%s as %s", gy, shape_str(g->node[a].shape)));
		break;
	case OP_CONCAT: {  /* each input's channels of dy */
		int64_t off = 0, ch = 0;
		for (int k = 0; k < n.n_in; k++) {
			int x = n.in[k];
			Shape xs = g->node[x].shape;
			Node *d = &g->node[dy];
			if (x < ad->n_fwd && ad->path[x]) {
				int s = d->op == OP_FILL ? new_fill(g, d->attr[0], xs, d->batched)
				                         : new_grad(g, OP_SLICE, 1, &dy, xs, d->batched);
				if (g->node[s].op == OP_SLICE)
					g->node[s].attr[0] = (double)off;
				accumulate(ad, x, s, str_fmt("%s[%lld:%lld] (channels)", gy, (long long)ch,
				                             (long long)(ch + xs.dim[0])));
			}
			off += shape_numel(xs);
			ch += xs.dim[0];
		}
		break;
	}
	/* the ops autodiff itself makes are never differentiated */
	case OP_SLICE: case OP_CLIP_GRAD: case OP_CONV2D_DX: case OP_CONV2D_DW:
	case OP_MAXPOOL2D_GRAD: case OP_AVGPOOL2D_GRAD:
	case OP_EXPAND: case OP_REDUCE_TO: case OP_BATCH_MEAN: case OP_RELU_GRAD:
	case OP_LEAKY_RELU_GRAD: case OP_SIGMOID_GRAD: case OP_TANH_GRAD: case OP_SQRT_GRAD:
	case OP_ABS_GRAD: case OP_SOFTMAX_GRAD: case OP_LOG_SOFTMAX_GRAD: case OP_CE_GRAD:
	case OP_MSE_GRAD: case OP_SGD_STEP: case OP_ADAM_STEP: case N_OP:
		die("no gradient rule for %s", n.op < N_OP ? op_name[n.op] : "?");
	}
}

/* Mark the nodes that depend on a trainable parameter and reach 'obj'. */
static void mark_path(AD *ad, int obj)
{
	Graph *g = ad->g;
	bool *dep = alloc(sizeof(bool) * (size_t)ad->n_fwd);
	bool *reach = alloc(sizeof(bool) * (size_t)ad->n_fwd);
	for (int i = 0; i < ad->n_fwd; i++) {
		Node *n = &g->node[i];
		dep[i] = n->op == OP_PARAM && !n->frozen;
		for (int k = 0; k < n->n_in; k++)
			dep[i] |= dep[n->in[k]];
	}
	reach[obj] = true;
	for (int i = obj; i >= 0; i--)
		if (reach[i])
			for (int k = 0; k < g->node[i].n_in; k++)
				reach[g->node[i].in[k]] = true;
	for (int i = 0; i < ad->n_fwd; i++)
		ad->path[i] = dep[i] && reach[i];
}

/* The batch mean of per-sample scalar 'x', or x itself when unbatched. */
static int batch_mean(Graph *g, int x)
{
	if (!g->node[x].batched)
		return x;
	int m = new_grad(g, OP_BATCH_MEAN, 1, &x, (Shape){0}, false);
	g->node[m].loc = g->node[x].loc;
	g->node[m].text = g->node[x].text;
	g->node[m].name = g->node[x].name ? str_fmt("mean_%s", g->node[x].name) : NULL;
	return m;
}

static void add_updates(AD *ad)
{
	Graph *g = ad->g;
	int n = g->n_node;
	for (int p = 0; p < n; p++) {
		Node *pn = &g->node[p];
		if (pn->op != OP_PARAM || pn->grad < 0)
			continue;
		int in[2] = {p, pn->grad};
		Op op = g->opt.kind == OPT_ADAM ? OP_ADAM_STEP : OP_SGD_STEP;
		int u = new_grad(g, op, 2, in, g->node[p].shape, false);
		Node *un = &g->node[u];
		un->backward = true;
		un->fwd = p;
		un->loc = g->opt.loc;
		un->name = str_fmt("update_%s", g->node[p].name);
		un->deriv = str_fmt("%s -= %s step(d%s/d%s)", g->node[p].name,
		                    g->opt.kind == OPT_ADAM ? "adam" : "sgd", ad->J, g->node[p].name);
	}
}

Graph *autodiff(const Graph *fwd, Mode mode)
{
	Graph *g = copy_graph(fwd);
	g->mode = mode;
	if (mode == MODE_INFER || mode == MODE_FWD)
		return g;
	if (g->objective < 0)
		die("autodiff without an objective");
	g->n_out = 0;  /* a training step returns the loss and tracks, not outputs */
	g->loss = batch_mean(g, g->objective);
	for (int i = 0; i < g->n_track; i++)
		g->track_mean[i] = g->track[i] == g->objective ? g->loss : batch_mean(g, g->track[i]);

	AD ad = {.g = g, .n_fwd = g->n_node, .J = g->node[g->objective].name};
	if (!ad.J)
		ad.J = "J";
	ad.grad = alloc(sizeof(int) * (size_t)ad.n_fwd);
	ad.path = alloc(sizeof(bool) * (size_t)ad.n_fwd);
	for (int i = 0; i < ad.n_fwd; i++)
		ad.grad[i] = -1;
	mark_path(&ad, g->objective);
	if (!ad.path[g->objective])
		error_at(g->min_loc, "no trainable parameter reaches the objective '%s'", ad.J);

	Node *obj = &g->node[g->objective];
	int seed = new_fill(g, obj->batched ? 1.0 / g->batch : 1.0, obj->shape, obj->batched);
	g->node[seed].backward = true;
	g->node[seed].fwd = g->objective;
	g->node[seed].name = str_fmt("d%s", ad.J);
	g->node[seed].deriv = obj->batched ? "1/B (the objective is the batch mean)" : "1";
	ad.grad[g->objective] = seed;
	for (int id = g->objective; id >= 0; id--) {
		int dy = ad.grad[id];
		if (!ad.path[id] || dy < 0)
			continue;
		Node *dn = &g->node[dy];
		if (dy > seed && !dn->name && g->node[id].name) {
			dn->name = str_fmt("d%s", g->node[id].name);
			dn->deriv = str_fmt("%s = %s", dname(&ad, id), dn->deriv ? dn->deriv : "1");
		}
		if (g->node[id].op == OP_PARAM) {
			g->node[id].grad = dy;
			continue;
		}
		int before = g->n_node;
		ad.cur = id;
		backprop(&ad, id, dy);
		for (int k = before; k < g->n_node; k++) {
			Node *bn = &g->node[k];
			bn->backward = true;
			bn->fwd = id;
			bn->loc = g->node[id].loc;
			bn->text = g->node[id].text;
		}
	}
	if (mode == MODE_TRAIN)
		add_updates(&ad);
	return g;
}
