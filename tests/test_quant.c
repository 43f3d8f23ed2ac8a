/* test_quant.c: int8 inference (quant.c, runtime/gradc_q8.h).
 *
 * - the requantization helpers against values worked by hand: rounding
 *   ties (gemmlowp's high multiply rounds ties up, its rounding shift away
 *   from zero), negative values, saturation, shifts 0 and 31;
 * - quant_multiplier (TFLite's QuantizeMultiplier) on exact powers of two,
 *   a value rounding up to 2^31, underflow and overflow;
 * - per-channel weight scales and the folded relu of a hand-set product,
 *   and the int8 program against the f64 evaluator (within two output
 *   steps) and against its own arithmetic worked by hand for one element;
 * - the calibration data refused: no samples, NaN.
 */
#include <math.h>

#include "gradc_q8.h"
#include "quant.h"
#include "testutil.h"

START_TEST(srdhm_values)
{
	ck_assert_int_eq(gradc_q8_srdhm(INT32_MIN, INT32_MIN), INT32_MAX); /* saturation */
	ck_assert_int_eq(gradc_q8_srdhm(1 << 30, 1 << 30), 1 << 29);     /* 2^29 + 1/2: down */
	ck_assert_int_eq(gradc_q8_srdhm(3, 1 << 30), 2);                 /* 1.5 -> 2 */
	ck_assert_int_eq(gradc_q8_srdhm(-3, 1 << 30), -1);               /* -1.5 -> -1 (up) */
	ck_assert_int_eq(gradc_q8_srdhm(-5, 1 << 30), -2);               /* -2.5 -> -2 */
	ck_assert_int_eq(gradc_q8_srdhm(7, 1 << 29), 2);                 /* 1.75 -> 2 */
	ck_assert_int_eq(gradc_q8_srdhm(INT32_MAX, INT32_MAX), 2147483646);
	ck_assert_int_eq(gradc_q8_srdhm(0, 12345), 0);
}
END_TEST

START_TEST(rdbpot_values)
{
	ck_assert_int_eq(gradc_q8_rdbpot(5, 1), 3);   /* 2.5 -> 3 */
	ck_assert_int_eq(gradc_q8_rdbpot(-5, 1), -3); /* -2.5 -> -3: away from zero */
	ck_assert_int_eq(gradc_q8_rdbpot(-3, 1), -2);
	ck_assert_int_eq(gradc_q8_rdbpot(7, 2), 2);   /* 1.75 */
	ck_assert_int_eq(gradc_q8_rdbpot(5, 2), 1);   /* 1.25 */
	ck_assert_int_eq(gradc_q8_rdbpot(-6, 2), -2); /* -1.5 */
	ck_assert_int_eq(gradc_q8_rdbpot(-5, 2), -1); /* -1.25 */
	ck_assert_int_eq(gradc_q8_rdbpot(42, 0), 42);
	ck_assert_int_eq(gradc_q8_rdbpot(INT32_MIN, 31), -1);
	ck_assert_int_eq(gradc_q8_rdbpot(INT32_MAX, 31), 1);
	ck_assert_int_eq(gradc_q8_rdbpot(1 << 30, 31), 1); /* 0.5 -> 1 */
	ck_assert_int_eq(gradc_q8_rdbpot((1 << 30) - 1, 31), 0);
}
END_TEST

START_TEST(mbqm_values)
{
	ck_assert_int_eq(gradc_q8_mbqm(100, 1 << 30, 0), 50);  /* x * 0.5 */
	ck_assert_int_eq(gradc_q8_mbqm(100, 1 << 30, -1), 25); /* x * 0.25 */
	ck_assert_int_eq(gradc_q8_mbqm(100, 1 << 30, 2), 200); /* x * 2 */
	ck_assert_int_eq(gradc_q8_mbqm(-7, 1 << 30, -1), -2);  /* -1.75 */
	ck_assert_int_eq(gradc_q8_mbqm(6, 1 << 30, -2), 1);    /* 0.75 */
	ck_assert_int_eq(gradc_q8_mbqm(INT32_MAX, INT32_MAX, 1), 2147483646); /* left shift saturates */
	/* requant: + zero point, clamped to the activation range */
	ck_assert_int_eq(gradc_q8_requant(1000, 1 << 30, 0, 10, -128, 127), 127);
	ck_assert_int_eq(gradc_q8_requant(-1000, 1 << 30, 0, 10, -128, 127), -128);
	ck_assert_int_eq(gradc_q8_requant(20, 1 << 30, 0, -5, -5, 127), 5);
	ck_assert_int_eq(gradc_q8_requant(-20, 1 << 30, 0, -5, -5, 127), -5); /* relu */
}
END_TEST

START_TEST(entry_exit)
{
	ck_assert_int_eq(gradc_q8_quantize(0.25f, 0.5f, 0), 1);   /* 0.5 away from zero */
	ck_assert_int_eq(gradc_q8_quantize(-0.25f, 0.5f, 0), -1);
	ck_assert_int_eq(gradc_q8_quantize(0.74f, 0.5f, 3), 4);   /* 1.48 -> 1, + 3 */
	ck_assert_int_eq(gradc_q8_quantize(1e30f, 0.5f, 0), 127);
	ck_assert_int_eq(gradc_q8_quantize(-1e30f, 0.5f, 0), -128);
	ck_assert_int_eq(gradc_q8_quantize(NAN, 0.5f, 0), -128);
	ck_assert(gradc_q8_dequantize(7, -3, 0.5f) == 5.0f);
	/* add: a = 0.5 (q 1, zp 0, s 0.5), b = 1 (q 2, zp 0, s 0.5), out s 0.25 zp 0 -> 6 */
	int32_t p[9];
	double twice = 1.0;
	ck_assert(quant_multiplier(0.5 / twice, &p[1], &p[2]));
	ck_assert(quant_multiplier(0.5 / twice, &p[4], &p[5]));
	ck_assert(quant_multiplier(twice / ((1 << 20) * 0.25), &p[7], &p[8]));
	p[0] = p[3] = p[6] = 0;
	ck_assert_int_eq(gradc_q8_add(1, 2, p, -128, 127), 6);
	ck_assert_int_eq(gradc_q8_add(-1, -2, p, -128, 127), -6);
	ck_assert_int_eq(gradc_q8_add(100, 100, p, -128, 127), 127);
}
END_TEST

START_TEST(multipliers)
{
	int32_t m, s;
	ck_assert(quant_multiplier(0.5, &m, &s));
	ck_assert_int_eq(m, 1 << 30);
	ck_assert_int_eq(s, 0);
	ck_assert(quant_multiplier(0.25, &m, &s));
	ck_assert_int_eq(m, 1 << 30);
	ck_assert_int_eq(s, -1);
	ck_assert(quant_multiplier(1.0, &m, &s));
	ck_assert_int_eq(m, 1 << 30);
	ck_assert_int_eq(s, 1);
	ck_assert(quant_multiplier(0.75, &m, &s));
	ck_assert_int_eq(m, 1610612736);
	ck_assert_int_eq(s, 0);
	/* just below 1: the mantissa rounds to 2^31, so 2^30 with shift + 1 */
	ck_assert(quant_multiplier(1.0 - 1e-12, &m, &s));
	ck_assert_int_eq(m, 1 << 30);
	ck_assert_int_eq(s, 1);
	ck_assert(quant_multiplier(0, &m, &s));
	ck_assert_int_eq(m, 0);
	ck_assert(quant_multiplier(1e-12, &m, &s)); /* below 2^-32: zero */
	ck_assert_int_eq(m, 0);
	ck_assert(!quant_multiplier(3e9, &m, &s)); /* above 2^30: refused */
}
END_TEST

static const char fc_model[] = "model t\n"
			       "input x[4]\n"
			       "param W[3, 4] ~ zeros\n"
			       "param b[3] ~ zeros\n"
			       "h = relu(W @ x + b)\n"
			       "output h\n";

/* The program of fc_model with W's rows of maxima 1.27, 0.127 and 0 and
 * calibration samples x in [-1, 1]. */
static QModel *fc_program(Graph **g_out, Eval **e_out)
{
	Graph *fwd = lowered_model(fc_model, NULL);
	static const double W[12] = {1.27, -0.5, 0.25, 0, 0.127, 0.1, -0.05, 0.01, 0, 0, 0, 0};
	static const double b[3] = {0.1, -0.02, 0.3};
	Options o = {0};
	enum { N = 8 };
	Options so = {.batch = N};
	const Source *src = fwd->src;
	Graph *volatile gf = NULL, *volatile cf = NULL;
	const char *msg;
	CATCH_ERROR(msg, gf = parse(src, &so); lower(gf); cf = parse(src, &so); lower(cf));
	ck_assert_msg(!msg, "%s", msg);
	Graph *g = autodiff(gf, MODE_INFER), *cal = autodiff(cf, MODE_INFER);
	Data *d = alloc(sizeof *d);
	d->n = N;
	d->v = alloc(sizeof(double *) * (size_t)cal->n_node);
	double *x = alloc(sizeof(double) * N * 4);
	for (int i = 0; i < N * 4; i++)
		x[i] = sin(1.7 * i + 0.3); /* in [-1, 1] */
	for (Graph *h = g;; h = cal) {
		for (int i = 0; i < h->n_node; i++) {
			Node *n = &h->node[i];
			if (n->op == OP_PARAM)
				n->value = !strcmp(n->name, "W") ? W : b;
			if (n->op == OP_INPUT && h == cal)
				d->v[i] = x;
		}
		if (h == cal)
			break;
	}
	QModel *volatile q = NULL;
	CATCH_ERROR(msg, q = quantize(g, cal, d, &o));
	ck_assert_msg(!msg, "%s", msg);
	/* the float reference on the same samples */
	Eval *e = new_eval(g);
	for (int i = 0; i < g->n_node; i++) {
		const Node *n = &g->node[i];
		if (n->op == OP_PARAM)
			memcpy(e->val[i], n->value, sizeof(double) * (size_t)shape_numel(n->shape));
		if (n->op == OP_INPUT)
			memcpy(e->val[i], x, sizeof(double) * N * 4);
	}
	eval_run(e);
	*g_out = g;
	*e_out = e;
	return q;
}

START_TEST(per_channel)
{
	Graph *g;
	Eval *e;
	QModel *q = fc_program(&g, &e);
	const QLayer *fc = NULL;
	for (int s = 0; s < q->n_layer; s++)
		if (q->layer[s].kind == Q_FC)
			fc = &q->layer[s];
	ck_assert(fc);
	ck_assert_int_eq(fc->rows, 3);
	ck_assert_int_eq(fc->cols, 4);
	/* one scale per output channel: max |W[o,:]| / 127 (an all-zero row: 1) */
	ck_assert_double_eq_tol(fc->wscale[0], 0.01, 1e-9);
	ck_assert_double_eq_tol(fc->wscale[1], 0.001, 1e-10);
	ck_assert_double_eq_tol(fc->wscale[2], 1.0, 1e-12);
	static const int want[12] = {127, -50, 25, 0, 127, 100, -50, 10, 0, 0, 0, 0};
	for (int i = 0; i < 12; i++)
		ck_assert_int_eq(fc->w[i], want[i]);
	/* relu folded: the output's range starts at 0, its zero point is the clamp */
	const QVal *y = &q->val[fc->out];
	ck_assert_int_eq(y->zp, -128);
	ck_assert_int_eq(fc->lo, -128);
	ck_assert_int_eq(fc->hi, 127);
	/* the bias: round(b / (s_x s_w)) - zp_x sum(w) */
	const QVal *x = &q->val[fc->in[0]];
	double bq = round(0.1 / ((double)x->scale * (double)fc->wscale[0]));
	ck_assert_int_eq(fc->bias[0], (int32_t)(bq - x->zp * (127 - 50 + 25)));
}
END_TEST

START_TEST(against_float)
{
	Graph *g;
	Eval *e;
	QModel *q = fc_program(&g, &e);
	int64_t n_in = q->batch * 4, n_out = q->batch * 3;
	float *in = alloc(sizeof(float) * (size_t)n_in), *out = alloc(sizeof(float) * (size_t)n_out);
	int xi = find_name(g, "x"), hi = g->out[0];
	for (int64_t i = 0; i < n_in; i++)
		in[i] = (float)e->val[xi][i];
	const float *ins[1] = {in};
	float *outs[1] = {out};
	quant_eval(q, ins, outs);
	const QVal *y = NULL;
	for (int v = 0; v < q->n_val; v++)
		if (q->val[v].i8 && q->layer[q->n_layer - 1].in[0] == v)
			y = &q->val[v];
	ck_assert(y);
	for (int64_t i = 0; i < n_out; i++)
		ck_assert_msg(fabs(out[i] - e->val[hi][i]) <= 2 * y->scale, "h[%lld] = %g, float %g",
			      (long long)i, (double)out[i], e->val[hi][i]);
	/* element 0 by hand from the program's own numbers */
	const QLayer *fc = &q->layer[1];
	const QVal *xv = &q->val[fc->in[0]];
	int32_t acc = fc->bias[0];
	for (int k = 0; k < 4; k++)
		acc += gradc_q8_quantize(in[k], xv->scale, xv->zp) * fc->w[k];
	int32_t r = gradc_q8_mbqm(acc, fc->mult[0], fc->shift[0]) + y->zp;
	r = r < -128 ? -128 : r > 127 ? 127 : r;
	ck_assert(out[0] == y->scale * (float)(r - y->zp));
}
END_TEST

static Suite *quant_suite(void)
{
	Suite *s = suite_create("quant");
	TCase *tc = tcase_create("requantization");
	tcase_add_test(tc, srdhm_values);
	tcase_add_test(tc, rdbpot_values);
	tcase_add_test(tc, mbqm_values);
	tcase_add_test(tc, entry_exit);
	tcase_add_test(tc, multipliers);
	suite_add_tcase(s, tc);
	tc = tcase_create("program");
	add_arena_fixture(tc);
	tcase_add_test(tc, per_channel);
	tcase_add_test(tc, against_float);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(quant_suite)
