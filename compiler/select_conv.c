/* select_conv.c: the register tiles of the convolutions, for the target.
 *
 * Requires: select_kernels (pointwise convolutions are products by then).
 * Fills:    for a conv2d, conv2d_dx and conv2d_dw computed in the tile
 *           form, one kernel record per register shape of the target in
 *           Node.mm.tile (n_tile; form FORM_TILE, lanes v, register tile
 *           mr x nr, mb 1: read in place, kc: rows buffered, the
 *           GRADC_KERNELS it is compiled under).  n_tile 0: the row form.
 *           emit/conv.lua prints what is chosen here and decides nothing.
 *
 * The tile form is an implicit GEMM on one output row at a time: the
 * input rows that row reads (C_in x kh of them) are copied once into a
 * zero-padded stack buffer, split by stride phase so that every tap reads
 * unit-stride vectors; then tiles of MR output channels by NR vectors of V
 * output columns keep MR x NR accumulators in registers over the whole
 * reduction (c, u, v): each step broadcasts MR weights and loads NR
 * vectors of the buffer, MR x NR multiply-adds, no clipping, no
 * horizontal sums.  The input gradient of a stride-1 convolution is the
 * same form: a convolution of dy by the transposed, flipped weights (read
 * in place, no copy), padded kh - 1 - pt above (and so on).  The weight
 * gradient (conv2d_dw) sums over pixels: tiles of MR output channels by
 * the kw taps of one (c, u), V lanes along the output row, a padded input
 * row on the stack; MR = (registers - 1) / (kw + 1) on vectors (AVX-512
 * 7 for 3x3, AVX2 3: MR x kw sums, MR values of dy and one of the row in
 * registers; AVX2 was 2, 20% slower), half the registers / kw on a scalar
 * FPU (5).
 *
 * On a vector shape the weight gradient buffers all ho rows of a sample
 * (kc = ho) where they fit twice the shape's stack, so that no row is
 * read right after its copy (a store-forwarding stall on x86).
 *
 * The input gradient of a strided or dilated convolution is its own tile
 * (strided_dx_tiles, emit/conv_dx.lua): a stride-phase decomposition, each
 * dx column phase a stride-1 correlation of dy with its sub-kernel.
 *
 * On a scalar FPU (V = 1) the forward and stride-1 dx tiles read their
 * input in place (mb = 1, emit/conv_scalar.lua): no buffer (scalar loads
 * take any stride or offset), so every layer has the tile form there.
 *
 * Chosen when the kernel is fused (not --no-fuse), has one group (the
 * depthwise ones, one input channel per group, take depthwise_tiles'
 * form below; grouped ones with several keep the row form) and the buffer
 * fits twice the shape's stack (8 KiB on x86, 2 KiB on the Cortex-M rows;
 * a shape where it does not keeps the row form, FORM_SIMPLE in its
 * record).  Tiles (accumulators: half the registers):
 *   vectors (V > 1)  MR = 8 channels by NR = 2 vectors on 32 registers
 *                    (AVX-512), 4 by 2 on 16 (AVX2); NR no more than the
 *                    row's vectors;
 *   scalar FPU       MR = 3 to 5 channels (a divisor of C_out, else 4) by
 *                    NR = 4 columns: 20 accumulators of the 32 single
 *                    registers at most, the 4 + 4 operands beside them.
 */
#include "gradc.h"

/* The register tile on shape t of a convolution with co output channels
 * and rows of wo columns. */
static void conv_tile(struct Tile *tl, const Target *t, int64_t es, int64_t co, int64_t wo)
{
	int64_t V = tile_lanes(t, es);
	int64_t acc = t->vec_regs / 2;
	*tl = (struct Tile){.form = FORM_TILE, .v = V, .reg = V, .kernels = t->kernels};
	if (V == 1) {
		tl->mr = 4;
		for (int64_t d = 5; d >= 3; d--)
			if (co % d == 0) {
				tl->mr = d;
				break;
			}
		tl->nr = 4;
		tl->mb = 1;  /* reads its input in place: no buffer */
	} else {
		tl->mr = acc / 2;
		int64_t vecs = (wo + V - 1) / V;
		tl->nr = vecs < 2 ? vecs : 2;
	}
	if (tl->mr > co)
		tl->mr = co;
}

/* conv2d_dw: MR output channels by the kernel's kw columns of V-lane
 * accumulators, within half the registers (its buffer is one padded row) */
static void weight_tiles(const Graph *g, Node *n, const Target **v, int nv)
{
	const Window *w = &n->win;
	const Node *dy = &g->node[n->in[0]], *x = &g->node[n->in[1]];
	int64_t es = dt_bytes(n->dtype), co = dy->shape.dim[0], ho = dy->shape.dim[1];
	int64_t row = (x->shape.dim[2] + w->pl + w->pr + w->sw - 1) / w->sw * w->sw;
	for (int k = 0; k < nv; k++) {
		int64_t V = tile_lanes(v[k], es);
		/* vectors: MR x kw accumulators, MR values of dy and one of the
		 * row in the registers; a scalar FPU: half its registers */
		int64_t mr = V > 1 ? (v[k]->vec_regs - 1) / (n->win.kw + 1) : v[k]->vec_regs / 2 / n->win.kw;
		mr = mr < 1 ? 1 : mr > co ? co : mr;
		n->mm.tile[k] = (struct Tile){.form = FORM_TILE, .v = V, .reg = V, .mr = mr, .nr = 1,
		                              .kernels = v[k]->kernels};
		/* vectors: a sample's ho padded rows buffered at once (kc), so no
		 * row is read right after its copy (a store-forwarding stall on
		 * x86), where they fit within twice the shape's stack */
		if (V > 1 && ho * row * es <= 2 * v[k]->stack_bytes)
			n->mm.tile[k].kc = ho;
	}
	n->mm.n_tile = nv;
}

/* The strided input gradient's geometry (conv2d_dx with a stride or a
 * dilation other than 1; emit/conv_dx.lua computes the same): dx column
 * wi = sw m - pl + r for phase r < sw and m in [mlo, mhi); tap v feeds
 * phase v dw % sw from dy column m - v dw / sw.  The buffer holds, for
 * each of the co channels of dy, nu rows of dy (the most taps u any dx
 * row takes: u dh = hi + pt mod sh) padded p zeros left: row = p +
 * max(wo, mhi) elements. */
static int64_t strided_dx_row(const Window *w, int64_t wi_, int64_t wo, int64_t *nu)
{
	int64_t mlo = w->pl / w->sw, mhi = (wi_ + w->pl + w->sw - 1) / w->sw;
	int64_t smax = (int64_t)(w->kw - 1) * w->dw / w->sw;
	int64_t p = smax > mlo ? smax - mlo : 0;
	*nu = 0;
	for (int t = 0; t < w->sh; t++) {
		int64_t k = 0;
		for (int u = 0; u < w->kh; u++)
			k += (t - (int64_t)u * w->dh) % w->sh == 0;
		if (k > *nu)
			*nu = k;
	}
	return p + (wo > mhi ? wo : mhi);
}

/* conv2d_dx with a stride or a dilation (the stride-phase tile,
 * emit/conv_dx.lua): each tap adds to one of the sw column phases, so the
 * tile is MR input channels by sw phases by NR vectors (columns on a
 * scalar FPU) of each phase: vectors NR = 1 and MR = half the registers /
 * sw (AVX-512 8 for stride 2, AVX2 4); scalar NR = 4 / sw columns (at
 * least 1) and MR = 3-5 (a divisor of C_in), within 20 accumulators.
 * The buffer (co x nu padded rows of dy) within twice the shape's stack,
 * else the row form on that shape.  Returns whether any shape has it. */
static bool strided_dx_tiles(const Graph *g, Node *n, const Target **v, int nv)
{
	const Node *dy = &g->node[n->in[0]];
	int64_t es = dt_bytes(n->dtype), sw = n->win.sw;
	int64_t c = n->shape.dim[0], co = dy->shape.dim[0], nu;
	int64_t row = strided_dx_row(&n->win, n->shape.dim[2], dy->shape.dim[2], &nu);
	bool any = false;
	for (int k = 0; k < nv; k++) {
		struct Tile *tl = &n->mm.tile[k];
		int64_t V = tile_lanes(v[k], es);
		*tl = (struct Tile){.form = FORM_SIMPLE, .kernels = v[k]->kernels};
		if (co * nu * row * es > 2 * v[k]->stack_bytes)
			continue;
		*tl = (struct Tile){.form = FORM_TILE, .v = V, .reg = V, .nr = 1,
		                    .kernels = v[k]->kernels};
		if (V > 1) {
			tl->mr = v[k]->vec_regs / 2 / sw;
		} else {
			tl->nr = 4 / sw > 1 ? 4 / sw : 1;
			int64_t cols = sw * tl->nr;
			tl->mr = 20 / cols < 4 ? 20 / cols : 4;
			for (int64_t d = 5; d >= 3; d--)
				if (c % d == 0 && d * cols <= 20) {
					tl->mr = d;
					break;
				}
		}
		tl->mr = tl->mr < 1 ? 1 : tl->mr > c ? c : tl->mr;
		any = true;
	}
	return any;
}

/* The depthwise tile form (groups == C_in: one input channel per group;
 * emit/dwconv.lua prints it).  Channels are independent, so a tile is
 * one channel's outputs: the channel's input is copied, a band of MB
 * output rows at a time, into a zero-padded stack buffer split by stride
 * phase (sh x sw planes of rows Wq wide: Wq = W + max(pl, pr) with
 * stride 1, the padding between two rows shared; else ceil((W + pl + pr)
 * / sw)), so that output (i, j) of the band is flat position f = i Wq + j
 * and tap (u, v) reads plane (u dh % sh, v dw % sw) at f + (u dh / sh) Wq
 * + v dw / sw: unit stride, no clipping.
 *   vectors (V > 1)  NR vectors of V flat positions (the Wq - Wo columns
 *                    between rows are computed and dropped: dscnn's 25x5
 *                    maps waste 1/6 instead of 11/16 of a vector along a
 *                    5-wide row), one weight broadcast per tap, half the
 *                    registers in accumulators; the sums go to a flat
 *                    stack row, the epilogue reads them back;
 *   scalar FPU       MR rows by NR columns of (i, j), no dropped columns,
 *                    the kh kw weights in registers beside the 16 or
 *                    fewer accumulators: each input value is loaded once
 *                    per tile for every tap that reads it.
 * The weight gradient sums dy (copied to a flat row with zeros between
 * rows) times the buffer over the flat positions: kh kw accumulators of V
 * lanes.  The input gradient of a stride-1 depthwise convolution is the
 * forward form on dy with the flipped kernel.  MB: the most rows whose
 * buffers fit twice the shape's stack (vww_mobilenet's 48 x 48 maps on
 * the Cortex-M rows: bands of 8 rows); none: the row form. */
/* Wq: the buffer's row stride (a plane's, when strided) */
static int64_t dw_row(const Window *w, int64_t wd)
{
	return w->sw == 1 ? wd + (w->pl > w->pr ? w->pl : w->pr)
	                  : (wd + w->pl + w->pr + w->sw - 1) / w->sw;
}

static int64_t dw_bytes(int64_t rb, const Window *w, int64_t wd, int64_t wo, int64_t span,
                        int64_t es, bool flat)
{
	int64_t wq = dw_row(w, wd);
	int64_t rows = (rb - 1) * w->sh + (w->kh - 1) * w->dh + 1;
	int64_t hq = (rows + w->sh - 1) / w->sh;
	int64_t f = (rb - 1) * wq + wo, fpad = (f + span - 1) / span * span;
	int64_t maxoff = (w->kh - 1) * w->dh / w->sh * wq + (w->kw - 1) * w->dw / w->sw;
	int64_t ps = hq * wq > fpad + maxoff ? hq * wq : fpad + maxoff;
	return es * (w->sh * w->sw * ps + (flat ? fpad : 0));  /* flat: yf or dyf */
}

static void depthwise_tiles(const Graph *g, Node *n, const Target **v, int nv)
{
	Window w = n->win;
	const Node *x = &g->node[n->in[n->op == OP_CONV2D_DW ? 1 : 0]];
	const Node *y = n->op == OP_CONV2D_DW ? &g->node[n->in[0]] : n;
	if (n->op == OP_CONV2D_DX) {  /* the forward form on dy: stride 1 */
		if (w.sh != 1 || w.sw != 1 || x->shape.dim[0] != y->shape.dim[0])
			return;
		Window f = w;
		f.pt = (w.kh - 1) * w.dh - w.pt;
		f.pl = (w.kw - 1) * w.dw - w.pl;
		f.pb = (int)(y->shape.dim[1] - x->shape.dim[1]) + (w.kh - 1) * w.dh - f.pt;
		f.pr = (int)(y->shape.dim[2] - x->shape.dim[2]) + (w.kw - 1) * w.dw - f.pl;
		if (f.pt < 0 || f.pl < 0 || f.pb < 0 || f.pr < 0)
			return;
		w = f;
	}
	int64_t es = dt_bytes(n->dtype), taps = (int64_t)w.kh * w.kw;
	int64_t wd = x->shape.dim[2], ho = y->shape.dim[1], wo = y->shape.dim[2];
	bool any = false;
	for (int k = 0; k < nv; k++) {
		struct Tile *tl = &n->mm.tile[k];
		int64_t V = tile_lanes(v[k], es);
		*tl = (struct Tile){.form = FORM_TILE, .v = V, .reg = V, .mr = 1, .nr = 1,
		                    .kernels = v[k]->kernels};
		if (V == 1 && n->op != OP_CONV2D_DW) {  /* MR x NR of (i, j) beside the taps */
			int64_t acc = 28 - taps < 16 ? 28 - taps : 16;
			acc = acc < 4 ? 4 : acc;
			tl->nr = wo <= 6 ? wo : 4;
			for (int64_t d = 6; wo > 6 && d >= 3; d--)
				if (wo % d == 0 && d <= acc) {
					tl->nr = d;
					break;
				}
			tl->mr = acc / tl->nr < 1 ? 1 : acc / tl->nr;
			if (tl->mr > ho)
				tl->mr = ho;
		}
		bool flat = V > 1 || n->op == OP_CONV2D_DW;
		int64_t rb = ho;
		while (rb > 1 && dw_bytes(rb, &w, wd, wo, V, es, flat) > 2 * v[k]->stack_bytes)
			rb--;
		if (rb < ho && rb > tl->mr)
			rb -= rb % tl->mr;
		if (dw_bytes(rb, &w, wd, wo, V, es, flat) > 2 * v[k]->stack_bytes) {
			*tl = (struct Tile){.form = FORM_SIMPLE, .kernels = v[k]->kernels};
			continue;
		}
		if (V > 1 && n->op != OP_CONV2D_DW) {  /* NR vectors of the band's flat run */
			int64_t wq = dw_row(&w, wd);
			int64_t nvec = ((rb - 1) * wq + wo + V - 1) / V, most = v[k]->vec_regs / 2;
			int64_t nt = (nvec + most - 1) / most;
			tl->nr = (nvec + nt - 1) / nt;
		}
		tl->mb = rb;
		any = true;
	}
	n->mm.n_tile = any ? nv : 0;
}

void select_conv(Graph *g, bool fuse)
{
	const Target *v[MAX_VARIANTS];
	int nv = target_variants(g->target, v);
	for (int i = 0; i < g->n_node; i++) {
		Node *n = &g->node[i];
		const Window *w = &n->win;
		if (n->op != OP_CONV2D && n->op != OP_CONV2D_DX && n->op != OP_CONV2D_DW)
			continue;
		n->mm.n_tile = 0;
		if (!fuse)
			continue;
		if (w->groups != 1) {
			/* one input channel per group: the depthwise tile form */
			const Node *x = &g->node[n->in[n->op == OP_CONV2D_DW ? 1 : 0]];
			const Node *cx = n->op == OP_CONV2D_DX ? n : x;
			if (cx->shape.dim[0] == w->groups)
				depthwise_tiles(g, n, v, nv);
			continue;
		}
		if (n->op == OP_CONV2D_DW) {
			weight_tiles(g, n, v, nv);
			continue;
		}
		/* x: the tile form's input (conv2d_dx: dy), y: its output */
		const Node *x = &g->node[n->in[0]], *y = n;
		int64_t sw = w->sw, pl = w->pl, pr = w->pr;
		int64_t kh = w->kh;
		if (n->op == OP_CONV2D_DX) {
			if (w->sh != 1 || w->sw != 1 || w->dh != 1 || w->dw != 1) {
				n->mm.n_tile = strided_dx_tiles(g, n, v, nv) ? nv : 0;
				continue;
			}
			/* padded as the transposed convolution: kw - 1 - pl left and the
			 * rest right, so that the output is dx's width */
			pl = w->kw - 1 - w->pl;
			pr = y->shape.dim[2] - 1 + w->kw - x->shape.dim[2] - pl;
			int64_t pt = w->kh - 1 - w->pt;
			int64_t pb = y->shape.dim[1] - 1 + w->kh - x->shape.dim[1] - pt;
			if (pl < 0 || pr < 0 || pt < 0 || pb < 0)
				continue;
		}
		int64_t es = dt_bytes(n->dtype);
		int64_t cin = x->shape.dim[0], win = x->shape.dim[2];
		int64_t np = (win + pl + pr + sw - 1) / sw;  /* per phase */
		int64_t buf = cin * kh * sw * np * es;
		int64_t co = y->shape.dim[0], wo = y->shape.dim[2];
		bool any = false;
		for (int k = 0; k < nv; k++) {
			struct Tile *tl = &n->mm.tile[k];
			if (buf <= 2 * v[k]->stack_bytes || v[k]->tile_bytes <= es) {
				conv_tile(tl, v[k], es, co, wo);
				any = true;
			} else {  /* the row form on this shape */
				*tl = (struct Tile){.form = FORM_SIMPLE, .kernels = v[k]->kernels};
			}
		}
		n->mm.n_tile = any ? nv : 0;
	}
}
