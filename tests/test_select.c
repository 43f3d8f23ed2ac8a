/* test_select.c: the decisions the C passes make for the emitter, which
 * the generated C then only prints.
 *
 * optimize's step 0 (the SGD one-factor step, the L2 term folded out of
 * the gradient, textbook steps without fusion), select.c's product forms
 * and side sums (ordered by the scheduler), the target row they read, and
 * kernel.c's loop nests of elementwise groups.
 */
#include "testutil.h"

static const char *const seed =
	"model t\nbatch 32\ninput x[64]\ninput y int\nparam W1[32, 64] ~ he\n"
	"param W2[10, 32] ~ xavier\nconst lambda = 1e-4\nz = W1 @ x\nh = relu(z)\n"
	"o = W2 @ h\nL = cross_entropy(o, y)\ns = lambda / 2 * (sumsq(W1) + sumsq(W2))\n"
	"J = L + s\noutput o\nminimize J with sgd(lr = 0.1)\n";

/* The planned graph of 'mode', as pipeline.c builds it. */
static Graph *built(const char *text, Mode mode, Options o)
{
	Graph *f = lowered_model(text, &o);
	const char *volatile msg = NULL;
	Graph *volatile g = NULL;
	CATCH_ERROR(msg, g = build_mode(f, mode, &o));
	ck_assert_msg(!msg, "%s", msg ? msg : "");
	return g;
}

static int update_of(const Graph *g, const char *param)
{
	for (int i = 0; i < g->n_node; i++)
		if (op_is(g->node[i].op, F_UPDATE) &&
		    !strcmp(g->node[g->node[i].in[0]].name, param))
			return i;
	ck_abort_msg("no update of %s", param);
	return -1;
}

START_TEST(decay_folded)
{
	Graph *g = built(seed, MODE_TRAIN, (Options){0});
	for (int k = 0; k < 2; k++) {
		const Node *u = &g->node[update_of(g, k ? "W2" : "W1")];
		ck_assert(u->attr[1] == 1);          /* the one-factor form */
		ck_assert(u->attr[0] == 1e-4);       /* lambda W, out of the gradient */
		ck_assert_int_eq(g->node[u->in[1]].op, OP_MATMUL);  /* G alone */
		ck_assert_ptr_nonnull(strstr(u->deriv, "(1 - lr 0.0001)"));
	}
	for (int i = 0; i < g->n_node; i++)  /* the add and scale of the L2 term died */
		ck_assert(g->node[i].op != OP_SCALE || g->node[i].batched ||
		          g->node[i].shape.rank == 0);
}
END_TEST

START_TEST(decay_textbook_unfused)
{
	Graph *g = built(seed, MODE_TRAIN, (Options){.no_fuse = true});
	const Node *u = &g->node[update_of(g, "W1")];
	ck_assert(u->attr[0] == 0 && u->attr[1] == 0);
	ck_assert_int_eq(g->node[u->in[1]].op, OP_ADD);  /* dJ/dW1 = G + lambda W1 */
}
END_TEST

START_TEST(decay_not_with_momentum)
{
	char *text = str_fmt("%.*s with sgd(lr = 0.1, momentum = 0.9)\n",
	                     (int)(strstr(seed, " with") - seed), seed);
	Graph *g = built(text, MODE_TRAIN, (Options){0});
	const Node *u = &g->node[update_of(g, "W1")];
	ck_assert(u->attr[0] == 0 && u->attr[1] == 0);
}
END_TEST

START_TEST(forms)
{
	Graph *g = built(seed, MODE_TRAIN, (Options){0});
	int n = 0;
	for (int i = 0; i < g->n_node; i++) {
		const Matmul *mm = &g->node[i].mm;
		if (g->node[i].op != OP_MATMUL)
			continue;
		n++;
		if (mm->pack)
			ck_assert_int_eq(mm->form, FORM_XT);
		if (mm->form == FORM_PACKED)
			ck_assert(mm->mb > 0 && mm->kc > 0 && mm->mr > 0 && mm->mb % mm->mr == 0);
	}
	ck_assert_int_eq(n, 5);  /* z, o, dh, dW2, dW1 */
	g = built(seed, MODE_TRAIN, (Options){.no_fuse = true});
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].op == OP_MATMUL)
			ck_assert_int_eq(g->node[i].mm.form, FORM_SIMPLE);  /* the baseline */
}
END_TEST

/* At batch 1 the forward products load every weight once: the L2 sums of
 * those weights ride along (Node.side), scheduled after the product. */
START_TEST(side_sums)
{
	for (Mode m = MODE_TRAIN; m <= MODE_GRAD; m++) {
		Graph *g = built(seed, m, (Options){.batch = 1});
		int sides = 0;
		for (int i = 0; i < g->n_node; i++) {
			int s = g->node[i].side;
			if (s < 0)
				continue;
			sides++;
			ck_assert_int_eq(g->node[i].mm.form, FORM_LANE);
			ck_assert_int_eq(g->node[s].op, OP_SUMSQ);
			ck_assert_int_eq(g->node[s].in[0], g->node[i].in[1]);
			ck_assert_int_gt(s, exec_step(g, i));
			ck_assert_ptr_nonnull(g->node[s].note);
		}
		ck_assert_int_eq(sides, 2);
		verify_schedule(g);
	}
	Graph *g = built(seed, MODE_TRAIN, (Options){.batch = 1, .no_fuse = true});
	for (int i = 0; i < g->n_node; i++)
		ck_assert_int_eq(g->node[i].side, -1);
}
END_TEST

/* The planner aligns by the target's row. */
START_TEST(target_row)
{
	const char *names;
	ck_assert_ptr_null(find_target("cortex-a53", &names));
	ck_assert_ptr_nonnull(strstr(names, "portable"));
	const Target *t = find_target("x86-64-v4", NULL);
	ck_assert_ptr_nonnull(t);
	Graph *g = built(seed, MODE_TRAIN, (Options){.target = "x86-64-v4"});
	ck_assert_ptr_eq(g->target, t);
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].sto == STO_ARENA)
			ck_assert_int_eq(g->node[i].offset % t->align, 0);
	ck_assert_int_eq(pack_rows(t, DT_F32), 2 * t->vec_bytes / 4);
	g = built(seed, MODE_TRAIN, (Options){.target = "cortex-m4"});
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].sto == STO_ARENA)
			ck_assert_int_eq(g->node[i].offset % 8, 0);
	ck_assert_int_eq(g->target->align, 8);
}
END_TEST

/* Each register shape gets its own tile, from the row's fields: portable
 * carries three (AVX-512, scalar FPU, AVX2), the first its forms; a row
 * carries its own; a scalar FPU never packs and tiles 3-5 x 4 scalars; AVX2
 * holds half the accumulators of AVX-512. */
START_TEST(tiles)
{
	const char *rows[] = {"portable", "x86-64-v4", "x86-64-v3", "cortex-m4", "native"};
	for (int r = 0; r < 5; r++) {
		const Target *tv[MAX_VARIANTS];
		int nv = target_variants(find_target(rows[r], NULL), tv);
		Graph *g = built(seed, MODE_TRAIN, (Options){.target = rows[r]});
		for (int i = 0; i < g->n_node; i++) {
			const Matmul *mm = &g->node[i].mm;
			if (g->node[i].op != OP_MATMUL)
				continue;
			ck_assert_int_eq(mm->n_tile, nv);
			ck_assert_int_eq(mm->tile[0].form, mm->form);
			for (int k = 0; k < nv; k++) {
				const struct Tile *t = &mm->tile[k];
				ck_assert_int_eq(t->kernels, tv[k]->kernels);
				ck_assert_int_gt(t->kernels, 0);
				if (tv[k]->tile_bytes == 4) {  /* scalar */
					ck_assert(t->form != FORM_PACKED && t->form != FORM_XT);
					ck_assert_int_eq(t->v, 1);
				}
				if (t->form == FORM_TILE || t->form == FORM_XT || t->form == FORM_LANE) {
					ck_assert_int_ge(t->mr, 1);
					ck_assert_int_ge(t->nr, 1);
					ck_assert_int_le(t->mr * t->nr, tv[k]->vec_regs / 2 + 4);
				}
				/* rows tiles: 16 registers, 2 vectors and a broadcast free */
				if (t->rows) {
					ck_assert_int_eq(tv[k]->vec_regs, 16);
					ck_assert_int_eq(t->nr, 2);
					ck_assert_int_le(t->mr * t->nr + t->nr + 1, tv[k]->vec_regs);
				}
			}
		}
	}
	ck_assert_int_eq(pack_rows(find_target("cortex-m4", NULL), DT_F32), 0);
}
END_TEST

/* AVX2 (16 registers): the seed's forward products (k 64 and 32, batch
 * 32) take the panel form, their panel (k x NR vectors, or X^T's block of
 * MB rows for the 10-column o) within the stack, the 10 x 32 product as
 * the xt form's tile; AVX-512 keeps the packed form; with no packing
 * (--no-pack) the lane form.  A wide layer's weight gradient dz^T x (rows
 * of dz 4 KiB apart) copies blocks of dz^T first (Tile.mb, a multiple of
 * MR, k MB within the stack), on every vector shape, never the scalar. */
START_TEST(panels)
{
	const Target *v3 = find_target("x86-64-v3", NULL);
	Graph *g = built(seed, MODE_INFER, (Options){.target = "portable"});
	int n_panel = 0;
	for (int i = 0; i < g->n_node; i++) {
		const Matmul *mm = &g->node[i].mm;
		if (g->node[i].op != OP_MATMUL)
			continue;
		ck_assert_int_eq(mm->tile[0].form, FORM_PACKED);
		const struct Tile *t = &mm->tile[2];  /* the AVX2 shape */
		ck_assert_int_eq(t->kernels, 2);
		ck_assert_int_eq(t->form, FORM_PANEL);
		ck_assert_int_eq(t->kc, mm->k);
		if (mm->n >= 16) {
			ck_assert_int_eq(t->mb, 0);
			ck_assert_int_ge(t->nr, 2);
			ck_assert_int_le(mm->k * t->nr * t->v * 4, v3->stack_bytes);
		} else {
			ck_assert_int_eq(t->mb, 32);
			ck_assert_int_le(mm->k * t->mb * 4, v3->stack_bytes);
		}
		/* 2 vectors of columns: the rows tile (12 accumulators, 2
		 * vectors loaded, one broadcast); else at most half the registers */
		if (t->rows)
			ck_assert_int_le(t->mr * t->nr + t->nr + 1, v3->vec_regs);
		else
			ck_assert_int_le(t->mr * t->nr, v3->vec_regs / 2);
		n_panel++;
	}
	ck_assert_int_eq(n_panel, 2);
	g = built(seed, MODE_INFER, (Options){.target = "x86-64-v3", .no_pack = true});
	for (int i = 0; i < g->n_node; i++)
		if (g->node[i].op == OP_MATMUL)
			ck_assert_int_eq(g->node[i].mm.form, FORM_LANE);
	const char *wide =
		"model w\nbatch 64\ninput x[784]\ninput y int\nparam W1[1024, 784] ~ he\n"
		"param W2[10, 1024] ~ xavier\nz = W1 @ x\nh = relu(z)\no = W2 @ h\n"
		"L = cross_entropy(o, y)\noutput o\nminimize L with sgd(lr = 0.1)\n";
	g = built(wide, MODE_TRAIN, (Options){.target = "portable"});
	int blocked = 0;
	for (int i = 0; i < g->n_node; i++) {
		const Matmul *mm = &g->node[i].mm;
		if (g->node[i].op != OP_MATMUL || !mm->ta || mm->m != 1024)
			continue;
		for (int k = 0; k < mm->n_tile; k++) {
			const struct Tile *t = &mm->tile[k];
			ck_assert_int_eq(t->form, FORM_TILE);
			if (t->v == 1) {
				ck_assert_int_eq(t->mb, 0);
				continue;
			}
			ck_assert_int_gt(t->mb, 0);
			ck_assert_int_eq(t->mb % t->mr, 0);
			/* AVX2's rows tile, 6 rows: blocks of 12 and a tail of 4 */
			if (t->rows)
				ck_assert(t->mr == 6 && t->nr == 2 && t->mb == 12);
			else
				ck_assert_int_eq(mm->m % t->mb, 0);
			ck_assert_int_le(mm->k * t->mb * 4, 4096);
			blocked++;
		}
	}
	ck_assert_int_eq(blocked, 2);  /* dW1 on AVX-512 and AVX2 */
	/* AVX2's forward z = x W1^T (k 784): xt blocks of 16 rows (2
	 * vectors) and the rows tile; AVX-512 keeps its tile */
	int xt = 0;
	for (int i = 0; i < g->n_node; i++) {
		const Matmul *mm = &g->node[i].mm;
		if (g->node[i].op != OP_MATMUL || mm->form != FORM_XT || mm->k != 784)
			continue;
		ck_assert(!mm->tile[0].rows);
		const struct Tile *t = &mm->tile[2];
		ck_assert(t->form == FORM_XT && t->rows && t->mb == 16 && t->mr == 6 && t->nr == 2);
		xt++;
	}
	ck_assert_int_eq(xt, 1);
	/* the same on --target x86-64-v3, whose own pack is the 16 rows
	 * already (no smaller block): the rows tile too */
	g = built(wide, MODE_INFER, (Options){.target = "x86-64-v3"});
	xt = 0;
	for (int i = 0; i < g->n_node; i++) {
		const Matmul *mm = &g->node[i].mm;
		if (g->node[i].op != OP_MATMUL || mm->form != FORM_XT || mm->k != 784)
			continue;
		const struct Tile *t = &mm->tile[0];
		ck_assert(mm->pack == 16 && t->rows && t->mb == 0 && t->mr == 6 && t->nr == 2);
		xt++;
	}
	ck_assert_int_eq(xt, 1);
}
END_TEST

/* select_conv.c's depthwise_tiles: a depthwise layer's forward, weight
 * gradient and stride-1 input gradient get a tile record per shape
 * (vectors: NR vectors within half the registers; scalar: MR x NR
 * outputs within 16 accumulators), bands of rows whose buffer fits twice
 * the shape's stack (a 48 x 48 map on the Cortex-M rows: bands of 8); a
 * strided input gradient and a grouped layer (2 input channels per group)
 * none; and a pointwise dW at batch > 1 the lane form. */
START_TEST(depthwise)
{
	const char *dw =
		"model d\nbatch 2\ninput x[4, 48, 48]\ninput t[4]\nparam Wd[4, 1, 3, 3] ~ he\n"
		"param We[4, 1, 3, 3] ~ he\nparam Ws[4, 1, 3, 3] ~ he\nparam Wg[4, 2, 3, 3] ~ he\n"
		"param Wp[4, 4, 1, 1] ~ he\nd = conv2d(x, Wd, padding = 1, groups = 4)\n"
		"e = conv2d(d, We, padding = 1, groups = 4)\n"
		"s = conv2d(e, Ws, stride = 2, padding = 1, groups = 4)\n"
		"g = conv2d(s, Wg, padding = 1, groups = 2)\np = conv2d(g, Wp)\n"
		"E = mse(global_avgpool(p), t)\nminimize E with sgd(lr = 0.1)\n";
	const Target *tv[MAX_VARIANTS];
	int nv = target_variants(find_target("portable", NULL), tv);
	Graph *g = built(dw, MODE_TRAIN, (Options){.target = "portable"});
	int tiled = 0, lane = 0;
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (n->op == OP_MATMUL && n->mm.nb > 1 && n->mm.acc) {
			ck_assert_int_eq(n->mm.form, FORM_LANE);
			lane++;
		}
		if (n->op != OP_CONV2D && n->op != OP_CONV2D_DX && n->op != OP_CONV2D_DW)
			continue;
		bool grouped = n->win.groups == 2, strided_dx = n->op == OP_CONV2D_DX && n->win.sh > 1;
		if (grouped || strided_dx) {
			ck_assert_int_eq(n->mm.n_tile, 0);
			continue;
		}
		ck_assert_int_eq(n->mm.n_tile, nv);
		for (int k = 0; k < nv; k++) {
			const struct Tile *t = &n->mm.tile[k];
			ck_assert_int_eq(t->form, FORM_TILE);
			ck_assert_int_eq(t->kernels, tv[k]->kernels);
			ck_assert_int_ge(t->mb, 1);
			int64_t ho = (n->op == OP_CONV2D_DW ? &g->node[n->in[0]] : n)->shape.dim[1];
			ck_assert_int_le(t->mb, ho);
			if (t->v > 1) {
				ck_assert_int_le(t->nr, tv[k]->vec_regs / 2);
			} else if (n->op != OP_CONV2D_DW) {
				ck_assert_int_le(t->mr * t->nr, 16);
				if (ho == 48)
					ck_assert_int_eq(t->mb, 8);
			}
		}
		tiled++;
	}
	/* d (on the input): forward, dW; e: forward, dW, dx; s: forward, dW */
	ck_assert_int_eq(tiled, 7);
	ck_assert_int_eq(lane, 1);
}
END_TEST

/* Every node carries its element type: the build's float type, i32 labels;
 * sizes follow it. */
/* The scalar FPU's tile form reads L two values of k a step (Tile.k2) in
 * f32 when L is unit-stride along k: a pointwise convolution's forward
 * product W x (k = C_in) on the cortex-m4 row and portable's scalar shape,
 * not its input gradient W^T dy (L^T), not f64, never a vector shape. */
START_TEST(scalar_k2)
{
	const char *pw =
		"model p\nbatch 1\ninput x[8, 6, 6]\ninput t[16]\nparam Wa[8, 8, 3, 3] ~ he\n"
		"param Wp[16, 8, 1, 1] ~ he\na = relu(conv2d(x, Wa, padding = 1))\n"
		"p = conv2d(a, Wp)\nE = mse(global_avgpool(p), t)\nminimize E with sgd(lr = 0.1)\n";
	const char *rows[] = {"cortex-m4", "portable"};
	for (int r = 0; r < 2; r++)
		for (int f64 = 0; f64 < 2; f64++) {
			const Target *tv[MAX_VARIANTS];
			int nv = target_variants(find_target(rows[r], NULL), tv);
			Graph *g = built(pw, MODE_TRAIN, (Options){.target = rows[r], .f64 = f64});
			int fwd = 0, dx = 0;
			for (int i = 0; i < g->n_node; i++) {
				const Matmul *mm = &g->node[i].mm;
				if (g->node[i].op != OP_MATMUL || mm->n != 36 || mm->nb != 1)
					continue;
				for (int k = 0; k < nv; k++) {
					bool scalar = tv[k]->tile_bytes == 4;
					ck_assert_int_eq(mm->tile[k].k2, scalar && !f64 && !mm->ta);
					if (scalar && !mm->ta)
						ck_assert_int_eq(mm->tile[k].form, FORM_TILE);
				}
				fwd += !mm->ta, dx += mm->ta;
			}
			ck_assert_int_eq(fwd, 1);
			ck_assert_int_eq(dx, 1);
		}
}
END_TEST

START_TEST(dtypes)
{
	for (int f64 = 0; f64 < 2; f64++) {
		Graph *g = built(seed, MODE_TRAIN, (Options){.f64 = f64});
		for (int i = 0; i < g->n_node; i++) {
			const Node *n = &g->node[i];
			bool label = n->op == OP_INPUT && !strcmp(n->name, "y");
			ck_assert_int_eq(n->dtype, label ? DT_I32 : f64 ? DT_F64 : DT_F32);
			ck_assert_int_eq(node_bytes(g, n), node_numel(g, n) * (label || !f64 ? 4 : 8));
		}
	}
}
END_TEST

/* kernel.c's loop nests: a broadcast operand keeps its dimensions apart,
 * contiguous ones merge, a short innermost loop is unrolled. */
START_TEST(ew_loop_nests)
{
	const char *text = "model t\nbatch 4\ninput x[3, 5]\nparam b[5] ~ zeros\n"
	                   "y = relu(x + b)\nz = exp(x)\noutput y, z\n";
	Graph *g = built(text, MODE_INFER, (Options){.infer_only = true, .no_fuse = true});
	int64_t loop[MAX_RANK + 1];
	bool unroll;
	int lanes = g->target->vec_bytes / 4, seen = 0;
	for (int i = 0; i < g->n_node; i++) {
		Op op = g->node[i].op;
		if (op == OP_ADD) {  /* x + b: [4, 3, 5], b strides (0, 0, 1) */
			ck_assert_int_eq(ew_loops(g, i, i, lanes, loop, &unroll), 2);
			ck_assert(loop[0] == 12 && loop[1] == 5 && unroll);
			seen++;
		}
		if (op == OP_EXP || op == OP_RELU) {  /* one contiguous loop of 60 */
			ck_assert_int_eq(ew_loops(g, i, i, lanes, loop, &unroll), 1);
			ck_assert(loop[0] == 60 && !unroll);
			seen++;
		}
	}
	ck_assert_int_eq(seen, 3);
}
END_TEST

static Suite *select_suite(void)
{
	Suite *s = suite_create("select");
	TCase *tc = tcase_create("decisions");
	add_arena_fixture(tc);
	tcase_add_test(tc, decay_folded);
	tcase_add_test(tc, decay_textbook_unfused);
	tcase_add_test(tc, decay_not_with_momentum);
	tcase_add_test(tc, forms);
	tcase_add_test(tc, side_sums);
	tcase_add_test(tc, target_row);
	tcase_add_test(tc, tiles);
	tcase_add_test(tc, panels);
	tcase_add_test(tc, depthwise);
	tcase_add_test(tc, scalar_k2);
	tcase_add_test(tc, dtypes);
	tcase_add_test(tc, ew_loop_nests);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(select_suite)
