/* select.c: choose how each kernel is computed, for the target.
 *
 * Requires: an optimized graph (Node.fuse, Matmul.pack), its Target.
 * Fills:    Matmul.form (and the packed form's panel, Matmul.mb/kc) of
 *           every product; Node.side of a product that also sums the
 *           squares of the weights it loads, with the note on that sumsq.
 *           The emitter prints what is chosen here and decides nothing.
 *
 * 1. Product forms (emit/gemm.lua prints each; V = the target's vector
 *    in elements):
 *      simple  one scalar dot or one row of V accumulators per row: small
 *              or repeated products, and every product of an unfused
 *              build (the naive baseline);
 *      xt      C = X W^T with Matmul.pack (optimize.c): packed X^T blocks;
 *      packed  C = L R^T with a short k (<= 128), 16+ rows, 8+ columns and
 *              a panel of KC x V plus MB x V elements within the target's
 *              stack (not with --no-pack), on 32 vector registers;
 *      panel   the same on 16 registers (AVX2), where the packed form's
 *              partial sums spill: k x 2+ vectors of R^T packed to the
 *              stack whole, then the tile form over every row (panel_tile;
 *              with fewer than 2 vectors of columns, blocks of X^T and
 *              the xt form's tiles instead), else the lane form (digits
 *              AVX2 1.07x / 1.52x OpenBLAS with the lane form, 0.76x /
 *              0.85x panel);
 *      lane    C = L R^T otherwise with k >= V (batch 1 and small batches);
 *      tile    C = L R or L^T R with k == 1 or 512+ multiply-adds; L^T R
 *              with rows of L 2 KiB apart or more by blocks of L^T copied
 *              to the stack (lt_block: wide64's dW on AVX2 2.7x -> 1.15x).
 *    and, for each register shape of the target (target_variants), the
 *    register tile (Matmul.tile: choose_tile); portable carries three.
 * 0. Pointwise convolutions (a 1x1 kernel, stride 1, no padding, one
 *    group) are matrix products per sample: W [Co, Ci] times x [Ci, H W].
 *    Such a conv2d and its two gradients become OP_MATMUL nodes here, so
 *    the product forms below compute them (issue 15: "pointwise forms of
 *    their own").
 * 2. Side sums.  A lane product with one row (batch 1) loads every weight
 *    of a parameter R exactly once; a later sumsq(R) (the L2 penalty) is
 *    then summed in its registers (Node.side = that sumsq), and the sumsq
 *    kernel only stores the total.  The scheduler keeps it after the
 *    product.
 */
#include "gradc.h"

/* The largest divisor of n in [lo, hi], or 0. */
static int64_t divisor(int64_t n, int64_t lo, int64_t hi)
{
	for (int64_t d = n < hi ? n : hi; d >= (lo > 1 ? lo : 1); d--)
		if (n % d == 0)
			return d;
	return 0;
}

enum { PACK_MR = 8 };  /* rows of the packed form's register tile */
enum { XT_L1 = 32768 };  /* bytes of xt block a tile reads from L1 (xt_tile) */

/* The packed form's panel: MB rows of C and KC values of k per block, both
 * stored in V-element vectors within the target's stack.  false: none. */
static bool pack_shape(const Target *t, struct Tile *tl, const Matmul *mm, int64_t V, int64_t es)
{
	int64_t cap = t->stack_bytes / es / V;  /* KC + MB vectors */
	int64_t mb = mm->m <= cap / 2 ? mm->m : divisor(mm->m, cap / 4, cap / 2);
	int64_t kc = divisor(mm->k, cap / 4, cap / 2);
	if (!mb || !kc || mb % PACK_MR)
		return false;
	tl->mb = mb;
	tl->kc = kc;
	tl->mr = PACK_MR;
	return true;
}

/* The panel form's R^T panel: k values by two vectors at least, within
 * the target's stack (with one vector, GCC 12 unrolls the tile's lane
 * loop early and vectorizes the loop over k through shuffles instead). */
static bool panel_fits(const Target *t, const Matmul *mm, int64_t V, int64_t es)
{
	return (mm->n >= 2 * V || mm->m >= 2 * V) && mm->k * 2 * V * es <= t->stack_bytes;
}

/* The form of a product on the target's first register shape (portable:
 * x86-64-v4's, which also decides the arena's scratch); es: the bytes of
 * one element of the product. */
static Form product_form(const Target *t, Matmul *mm, struct Tile *tl, int64_t es, bool fuse,
                         bool pack)
{
	int64_t V = tile_lanes(t, es);
	/* summed over the batch (a pointwise convolution's dW): the lane form,
	 * its steps over k once per sample (dscnn's four dW at 55% of a
	 * training step in the simple form's scalar dots) */
	if (fuse && mm->nb > 1 && mm->acc && !mm->ta && mm->tb && mm->k >= V)
		return FORM_LANE;
	if (!fuse || mm->nb > 1 || (mm->ta && mm->tb))
		return FORM_SIMPLE;
	if (mm->pack > 0)
		return FORM_XT;
	bool shortk = V > 1 && !mm->ta && mm->tb && mm->m >= 16 && mm->n >= 8 && mm->k <= 128 &&
	              pack;
	if (shortk && t->vec_regs >= 32 && pack_shape(t, tl, mm, V, es))
		return FORM_PACKED;
	if (shortk && t->vec_regs < 32 && panel_fits(t, mm, V, es))
		return FORM_PANEL;
	if (!mm->ta && (mm->tb || mm->n == 1))
		return mm->k >= V ? FORM_LANE : FORM_SIMPLE;
	if (!mm->tb && mm->n > 1 && (mm->k == 1 || mm->m * mm->n * mm->k >= 512))
		return FORM_TILE;
	return FORM_SIMPLE;
}

/* The tile of 16 vector registers (AVX2) for the tile form and the xt
 * form with a long k: RT_MR rows by 2 vectors, 12 accumulators.  Eight
 * (the 4 x 2 tile before) are just the FMAs in flight at two a cycle
 * and 4 cycles each, with none to spare; 12 is BLIS's and OpenBLAS's
 * Haswell kernel (6 x 16).  They fit only in this order (Tile.rows):
 * the 2 vectors of R loaded first, then each row's broadcast and its 2
 * FMAs (15 registers); with the broadcasts first, as the other tiles
 * load them, GCC spills (6 x 2: wide64 training 1.37x OpenBLAS).  Wide64
 * AVX2 training 1.04x -> 0.95x, deep32 1.0x -> 0.86x.  false: fewer than
 * 2 vectors of columns, or not 16 vector registers. */
enum { RT_MR = 6 };
static bool rows_tile(struct Tile *tl, const Target *t, int64_t m, int64_t n)
{
	if (tl->v <= 1 || t->vec_regs != 16 || n < 2 * tl->v)
		return false;
	tl->mr = m < RT_MR ? m : RT_MR;
	tl->nr = 2;
	tl->rows = true;
	return true;
}

/* The register tile of tl->form on register shape t.  A tile holds about
 * half the registers in accumulators (the rest: operands; AVX-512 16,
 * AVX2 8, a scalar FPU 16 single floats) and loads each operand once into
 * a register for several multiply-adds:
 *   lane     MR rows of L by NR rows of R, V lanes each: MR = 2 on vectors
 *            (4 on a scalar FPU, where a "lane" is one float and the tile is
 *            the 4 x 4 dot product), NR up to the rest, at most 8 (a single
 *            row on a scalar FPU: 6, as gemm.lua loads two values of k at
 *            a time there and GCC spills 8);
 *   tile/xt  MR rows by NR vectors of V columns, rank-1 updates: MR up to
 *            half the accumulators (on a scalar FPU 3 to 5 rows dividing
 *            m, else 4, by 4 columns: 5 x 4 takes 29 of the 32 registers),
 *            NR vectors filling the rest, at most 4, within the columns;
 *            on 16 registers with 2 vectors of columns or more (the tile
 *            and panel forms, the xt form with a long k), 6 x 2 row by
 *            row instead (rows_tile, Tile.rows);
 *   packed   MR rows (a quarter of the registers, at most 8) of one
 *            vector of the first shape's lanes (the panel: pack_shape; on
 *            AVX2 4 rows of 16 lanes, two registers each).
 * m, n: the rows and columns of the view the tile covers (xt: C^T). */
static void choose_tile(struct Tile *tl, const Target *t, int64_t es, int64_t m, int64_t n)
{
	int64_t V = tl->v = tile_lanes(t, es);
	int64_t acc = t->vec_regs / 2;
	tl->kernels = t->kernels;
	if (tl->form == FORM_LANE) {
		int64_t mrmax = V == 1 ? 4 : 2;
		tl->mr = m >= mrmax ? mrmax : m >= 2 ? 2 : 1;
		int64_t nrmax = acc / tl->mr < 8 ? acc / tl->mr : 8;
		if (V == 1 && tl->mr == 1)  /* a row: two values of k a step, 2 registers each */
			nrmax = 6;
		tl->nr = divisor(n, (5 * nrmax + 7) / 8, nrmax);
		if (!tl->nr)
			tl->nr = n < nrmax ? n : nrmax;
	} else if ((tl->form == FORM_TILE || tl->form == FORM_PANEL) && rows_tile(tl, t, m, n)) {
		return;
	} else if (tl->form == FORM_TILE || tl->form == FORM_XT || tl->form == FORM_PANEL) {
		/* with 16 registers the xt form takes 2 rows by 4 vectors: its
		 * rows are broadcasts from rows of W, k apart, and fewer such
		 * streams win there (mnist32 AVX2 inference 1.5x to 1.0x
		 * OpenBLAS); the tile form keeps 4 x 2 (4 x 4 and 8 x 2 spill) */
		int64_t mrmax = V == 1 ? 4 : tl->form == FORM_XT && t->vec_regs < 32 ? acc / 4 : acc / 2;
		tl->mr = V == 1 ? divisor(m, 3, 5) : divisor(m, mrmax / 2, mrmax);
		if (!tl->mr)
			tl->mr = m < mrmax ? m : mrmax;
		int64_t g = (acc + tl->mr - 1) / tl->mr;
		tl->nr = g < 1 ? 1 : g > 4 ? 4 : g;
		if (n < tl->nr * V)
			tl->nr = n / V > 1 ? n / V : 1;
	}
}

/* The tile form's block of L^T (C = L^T R, the weight gradient dz^T x):
 * row q of L^T's tile is L[q][i0..], m elements apart, so with m * es
 * of 2 KiB or more the k values of one tile fall in a few L1 sets (4 KiB
 * apart: one set; wide64's dW on AVX2 ran 2.7x OpenBLAS).  Then blocks of
 * MB rows of C (a multiple of MR; k MB elements within the stack) are
 * copied to the stack first, and the tiles read them MB apart. */
static void lt_block(struct Tile *tl, const Target *t, int64_t es, const Matmul *mm)
{
	int64_t cap = t->stack_bytes / (mm->k * es);
	if (tl->v <= 1 || !mm->ta || mm->m * es < 2048 || mm->k < 16 || cap < 2 * tl->mr)
		return;
	int64_t mb = cap / tl->mr * tl->mr;
	for (int64_t d = mb; d >= 2 * tl->mr; d -= tl->mr)
		if (mm->m % d == 0) {
			mb = d;
			break;
		}
	tl->mb = mb;
}

/* The tile form on a scalar FPU (f32, L unit-stride along k, no block of
 * L^T): two values of k a step, each row's pair of L one 64-bit load
 * (GRADC_LOAD2), so that a 4 x 4 tile loads 4 + 8 values for 32
 * multiply-adds instead of 16 for 16.  It fits the 32 registers only
 * without GCC's first scheduling pass, which hoists the multiplications
 * ahead of their additions (gradc_rt.h's GRADC_KERNEL_FILE turns it off):
 * the Cortex-M4F loop 2.69 -> 2.47 instructions per multiply-add
 * (vww_mobilenet's pointwise layers; with the pass on, 2.94). */
static void k2_tile(struct Tile *tl, int64_t es, const Matmul *mm)
{
	tl->k2 = tl->form == FORM_TILE && tl->v == 1 && es == 4 && !mm->ta && !tl->mb && mm->k >= 2;
}

/* The xt form's tile, over blocks of mm->pack rows of X (optimize.c, the
 * first shape's); on 16 registers, a long k (the block past 32 KiB, an L1
 * cache: each tile streams it from L2) takes blocks of fewer rows within
 * the same scratch (Tile.mb) and the rows tile, else MR rows by what is
 * left of the accumulators.  A block of 2 vectors already (--target
 * x86-64-v3: its own pack, 16 rows) takes the rows tile too: it kept a
 * 2 x 2 tile before, 6x (wide64) to 10x OpenBLAS. */
static void xt_tile(struct Tile *tl, const Target *t, int64_t es, const Matmul *mm)
{
	int64_t V = t->tile_bytes / es, P = mm->pack;
	bool longk = t->vec_regs < 32 && V > 1 && mm->k * P * es > XT_L1;
	tl->mb = 0;
	while (longk && P > 2 * V && P % 2 == 0 && mm->k * P * es > XT_L1)
		P /= 2;
	choose_tile(tl, t, es, mm->n, P);
	if (P != mm->pack)
		tl->mb = P;
	/* a block of 2 vectors: the rows tile whatever k (GCC 12 vectorizes
	 * the 2 x 2 tile's k loop through shuffles: deep32's z2 at --target
	 * x86-64-v3 ran 5x OpenBLAS) */
	if ((longk || P == 2 * V) && rows_tile(tl, t, mm->n, P))
		return;
	if (!longk)
		return;
	int64_t mr = t->vec_regs / 2 / tl->nr;
	tl->mr = divisor(mm->n, mr / 2, mr) ? divisor(mm->n, mr / 2, mr) : mr;
}

/* The panel form's tile: the tile form's, its columns (the panel, k by
 * NR vectors) within the stack; kc: the panel's k (all of it). */
static void panel_tile(struct Tile *tl, const Target *t, int64_t es, const Matmul *mm)
{
	int64_t V = t->tile_bytes / es;
	tl->kc = mm->k;
	tl->mb = 0;
	if (mm->n < 2 * V) {  /* few columns: blocks of X^T (the xt form on the stack) */
		int64_t mb = mm->m / V * V < 4 * V ? mm->m / V * V : 4 * V;
		while (mb > 2 * V && mm->k * mb * es > t->stack_bytes)
			mb -= V;
		tl->form = FORM_XT;
		choose_tile(tl, t, es, mm->n, mb);
		tl->form = FORM_PANEL;
		tl->mb = mb;
		return;
	}
	choose_tile(tl, t, es, mm->m, mm->n);
	while (tl->nr > 2 && mm->k * tl->nr * tl->v * es > t->stack_bytes)
		tl->nr--;
}

/* Every register shape's kernel of product mm: the first's form, except
 * that a scalar shape computes the packed forms (no vectors to pack for)
 * as 4 x 4 dot products in place (the xt form's scratch goes unused), and
 * a shape of 16 registers the packed form as the lane form. */
static void select_tiles(const Graph *g, Matmul *mm, int64_t es, bool fuse, bool pack)
{
	const Target *v[MAX_VARIANTS];
	mm->n_tile = target_variants(g->target, v);
	struct Tile *t0 = &mm->tile[0];
	*t0 = (struct Tile){0};
	t0->form = product_form(v[0], mm, t0, es, fuse, pack);
	t0->v = tile_lanes(v[0], es);
	for (int i = 0; i < mm->n_tile; i++) {
		struct Tile *tl = &mm->tile[i];
		int64_t reg = tile_lanes(v[i], es);
		if (i > 0) {
			*tl = (struct Tile){.form = t0->form, .mb = t0->mb, .kc = t0->kc, .mr = t0->mr};
			if (v[i]->tile_bytes <= es && (tl->form == FORM_PACKED || tl->form == FORM_XT))
				tl->form = FORM_LANE;
			if (tl->form == FORM_PACKED && v[i]->vec_regs < 32)  /* see product_form */
				tl->form = panel_fits(v[i], mm, reg, es) ? FORM_PANEL : FORM_LANE;
		}
		if (tl->form == FORM_XT) {
			xt_tile(tl, v[i], es, mm);
		} else if (tl->form == FORM_PANEL) {
			panel_tile(tl, v[i], es, mm);
		} else if (tl->form != FORM_PACKED) {
			choose_tile(tl, v[i], es, mm->m, mm->n);
			tl->mb = tl->kc = 0;
			if (tl->form == FORM_TILE && mm->k > 1)
				lt_block(tl, v[i], es, mm);
			k2_tile(tl, es, mm);
		} else {  /* the first shape's panel and lanes, MR rows within the registers */
			tl->v = t0->v;
			tl->mr = v[i]->vec_regs / 4 < PACK_MR ? v[i]->vec_regs / 4 : PACK_MR;
			tl->kernels = v[i]->kernels;
		}
		tl->reg = reg;
	}
	mm->form = t0->form;
	mm->mb = t0->mb;
	mm->kc = t0->kc;
	mm->mr = t0->mr;
}

/* Step 2: the unfused sumsq of parameter R that product p may sum, or -1. */
static int side_sumsq(const Graph *g, int p, const bool *taken)
{
	const Matmul *mm = &g->node[p].mm;
	int r = g->node[p].in[1];
	if (mm->form != FORM_LANE || mm->m != 1 || !mm->tb || g->node[r].op != OP_PARAM)
		return -1;
	for (int s = 0; s < g->n_node; s++)
		if (g->node[s].op == OP_SUMSQ && g->node[s].in[0] == r && g->node[s].fuse < 0 &&
		    !taken[s])
			return s;
	return -1;
}

/* Step 0: a pointwise convolution (or gradient) as the matrix product it
 * is, per sample of its batch: y = W x, dx = W^T dy, dW = sum_b dy x^T. */
static void pointwise(const Graph *g, Node *n)
{
	const Window *w = &n->win;
	if (!op_is(n->op, F_CONTRACT) || n->op == OP_MATMUL || w->kh != 1 || w->kw != 1 ||
	    w->sh != 1 || w->sw != 1 || w->pt || w->pl || w->pb || w->pr || w->groups != 1)
		return;
	const Node *y = n->op == OP_CONV2D ? n : &g->node[n->in[0]];  /* the forward output */
	const Node *x = n->op == OP_CONV2D_DX ? n : &g->node[n->in[n->op == OP_CONV2D ? 0 : 1]];
	int64_t co = y->shape.dim[0], ci = x->shape.dim[0];
	int64_t hw = y->shape.dim[1] * y->shape.dim[2], nb = y->batched ? g->batch : 1;
	int a = n->in[0], b = n->in[1];
	switch (n->op) {
	case OP_CONV2D:  /* (x, W): C[Co, HW] = W x */
		n->mm = (Matmul){.m = co, .n = hw, .k = ci, .nb = nb, .sr = ci * hw, .sc = co * hw};
		n->in[0] = b, n->in[1] = a;
		break;
	case OP_CONV2D_DX:  /* (dy, W): C[Ci, HW] = W^T dy */
		n->mm = (Matmul){.m = ci, .n = hw, .k = co, .ta = true, .nb = nb, .sr = co * hw,
		                 .sc = ci * hw};
		n->in[0] = b, n->in[1] = a;
		break;
	default:  /* conv2d_dw (dy, x): C[Co, Ci] = sum over the batch of dy x^T */
		n->mm = (Matmul){.m = co, .n = ci, .k = hw, .tb = true, .nb = nb, .sl = co * hw,
		                 .sr = ci * hw, .acc = nb > 1};
	}
	n->op = OP_MATMUL;
}

void select_kernels(Graph *g, bool fuse, bool pack)
{
	bool *taken = alloc(sizeof(bool) * (size_t)(g->n_node + 1));
	for (int i = 0; i < g->n_node; i++) {
		Node *n = &g->node[i];
		n->side = -1;
		pointwise(g, n);
		if (n->op == OP_MATMUL)
			select_tiles(g, &n->mm, dt_bytes(n->dtype), fuse, pack);
	}
	for (int i = 0; fuse && i < g->n_node; i++) {
		if (g->node[i].op != OP_MATMUL)
			continue;
		int s = side_sumsq(g, i, taken);
		if (s < 0)
			continue;
		taken[s] = true;
		g->node[i].side = s;
		g->node[s].note = str_fmt("summed in the kernel of %s, which loads every element of %s",
		                          node_label(g, exec_step(g, i)),
		                          node_label(g, g->node[s].in[0]));
	}
}
