/* quant_eval.c: the reference of int8 inference: a QModel (quant.c) run
 * with the integer arithmetic of runtime/gradc_q8.h, the same the
 * generated code (emit/int8.lua) uses, loop for loop, so `gradc run
 * --quantize int8` can insist on bit-for-bit agreement.  Float-fallback
 * layers use the same float expressions in the same order: apply_ew_f, the
 * float instance of ir.c's formulas (ew_formula.h), which int8.lua prints
 * from group.lua's table in that order.
 */
#include "quant.h"
#include "gradc_q8.h"

#include <math.h>
#include <string.h>

/* softmax / log_softmax of one row, in the generated code's order */
static void float_row(Op op, const float *x, float *y, int64_t n)
{
	float m = x[0];
	for (int64_t i = 1; i < n; i++)
		m = x[i] > m ? x[i] : m;
	float s = 0;
	for (int64_t i = 0; i < n; i++)
		s += expf(x[i] - m);
	float ls = logf(s);
	for (int64_t i = 0; i < n; i++)
		y[i] = op == OP_SOFTMAX ? expf(x[i] - m) / s : x[i] - m - ls;
}

/* conv2d: the generated loop, with its order of taps (integer sums: any
 * order gives the same bits, but the same order reads plainer) */
static void eval_conv(const QModel *q, const QLayer *l, const int8_t *x, int8_t *y)
{
	const Window *k = &l->win;
	for (int64_t s = 0; s < q->batch; s++)
		for (int64_t o = 0; o < l->co; o++) {
			const int8_t *xs = x + (s * l->c + o / l->og * l->cg) * l->h * l->w_;
			const int8_t *wr = l->w + o * l->cols;
			for (int64_t i = 0; i < l->ho; i++)
				for (int64_t j = 0; j < l->wo; j++) {
					int32_t acc = l->bias[o];
					for (int64_t c = 0; c < l->cg; c++)
						for (int u = 0; u < k->kh; u++) {
							int64_t iy = i * k->sh - k->pt + u * k->dh;
							if (iy < 0 || iy >= l->h)
								continue;
							for (int v = 0; v < k->kw; v++) {
								int64_t ix = j * k->sw - k->pl + v * k->dw;
								if (ix < 0 || ix >= l->w_)
									continue;
								acc += ((int32_t)xs[(c * l->h + iy) * l->w_ + ix] - l->xzp)
								       * (int32_t)wr[(c * k->kh + u) * k->kw + v];
							}
						}
					y[((s * l->co + o) * l->ho + i) * l->wo + j] = gradc_q8_requant(
						acc, l->mult[o], (int)l->shift[o], q->val[l->out].zp, l->lo, l->hi);
				}
		}
}

/* the pools: max (padding never wins) or the rounded mean of (x - zp) */
static void eval_pool(const QModel *q, const QLayer *l, const int8_t *x, int8_t *y)
{
	const Window *k = &l->win;
	for (int64_t sc = 0; sc < q->batch * l->c; sc++)
		for (int64_t i = 0; i < l->ho; i++)
			for (int64_t j = 0; j < l->wo; j++) {
				int32_t best = -128, acc = 0, n = 0;
				for (int u = 0; u < k->kh; u++) {
					int64_t iy = i * k->sh - k->pt + u;
					if (iy < 0 || iy >= l->h)
						continue;
					for (int v = 0; v < k->kw; v++) {
						int64_t ix = j * k->sw - k->pl + v;
						if (ix < 0 || ix >= l->w_)
							continue;
						int32_t e = x[(sc * l->h + iy) * l->w_ + ix];
						best = e > best ? e : best;
						acc += e - l->xzp;
						n++;
					}
				}
				int32_t div = k->count_pad ? k->kh * k->kw : n;
				y[(sc * l->ho + i) * l->wo + j] = l->kind == Q_MAXPOOL
									  ? (int8_t)best
									  : gradc_q8_avg(acc, div, l->xzp);
			}
}

static void eval_layer(const QModel *q, const QLayer *l, void *const *p)
{
	int64_t B = q->batch;
	const QVal *yv = &q->val[l->out], *xv = &q->val[l->in[0]];
	int64_t n = yv->numel * B;
	const int8_t *xq = p[l->in[0]];
	const float *xf = p[l->in[0]];
	int8_t *yq = p[l->out];
	float *yf = p[l->out];
	switch (l->kind) {
	case Q_QUANTIZE:
		for (int64_t i = 0; i < n; i++)
			yq[i] = gradc_q8_quantize(xf[i], yv->scale, yv->zp);
		break;
	case Q_DEQUANTIZE:
		for (int64_t i = 0; i < n; i++)
			yf[i] = xv->i8 ? gradc_q8_dequantize(xq[i], xv->zp, xv->scale) : xf[i];
		break;
	case Q_FC:
		for (int64_t s = 0; s < B; s++)
			for (int64_t o = 0; o < l->rows; o++) {
				int32_t acc = l->bias[o];
				for (int64_t k = 0; k < l->cols; k++)
					acc += (int32_t)xq[s * l->cols + k] * l->w[o * l->cols + k];
				yq[s * l->rows + o] = gradc_q8_requant(acc, l->mult[o], (int)l->shift[o],
								       yv->zp, l->lo, l->hi);
			}
		break;
	case Q_ADD: {
		const int8_t *bq = p[l->in[1]];
		for (int64_t i = 0; i < n; i++)
			yq[i] = gradc_q8_add(xq[i], bq[i], l->add, l->lo, l->hi);
		break;
	}
	case Q_CLAMP:
		for (int64_t i = 0; i < n; i++)
			yq[i] = gradc_q8_clamp(xq[i], l->lo, l->hi);
		break;
	case Q_CONV:
		eval_conv(q, l, xq, yq);
		break;
	case Q_MAXPOOL: case Q_AVGPOOL:
		eval_pool(q, l, xq, yq);
		break;
	case Q_CONCAT:
		for (int64_t s = 0, at = 0; s < B; s++)
			for (int k = 0; k < l->n_in; k++) {
				const QVal *a = &q->val[l->in[k]];
				const int8_t *aq = (const int8_t *)p[l->in[k]] + s * a->numel;
				for (int64_t e = 0; e < a->numel; e++)
					yq[at++] = gradc_q8_requant(aq[e] - a->zp, l->cmult[k],
								    (int)l->cshift[k], yv->zp, -128, 127);
			}
		break;
	case Q_FLOAT:
		if (op_kind[l->op] == K_ROW) {
			for (int64_t r = 0; r < n / l->row; r++)
				float_row(l->op, xf + r * l->row, yf + r * l->row, l->row);
		} else if (l->n_in == 2) {
			const float *bf = p[l->in[1]];
			for (int64_t i = 0; i < n; i++)
				yf[i] = apply_ew_f(l->op, xf[i], bf[i], l->attr);
		} else if (l->pv) {
			for (int64_t i = 0; i < n; i++) {
				float c = l->pv[l->pn == 1 ? 0 : i % l->pn];
				yf[i] = l->pside ? apply_ew_f(l->op, xf[i], c, l->attr)
						 : apply_ew_f(l->op, c, xf[i], l->attr);
			}
		} else {
			for (int64_t i = 0; i < n; i++)
				yf[i] = apply_ew_f(l->op, xf[i], 0, l->attr);
		}
		break;
	}
}

void quant_eval(const QModel *q, const float *const *in, float *const *out)
{
	void **p = alloc(sizeof(void *) * (size_t)q->n_val);
	char *arena = alloc((size_t)q->arena_bytes + 16);
	for (int v = 0; v < q->n_val; v++) {
		const QVal *x = &q->val[v];
		bool fused = x->first >= 0 && q->layer[x->first].fused;
		p[v] = x->input >= 0    ? (void *)in[x->input]
		       : x->output >= 0 ? (void *)out[x->output]
		       : fused		? alloc(sizeof(float) * (size_t)(x->numel * q->batch))
					: (void *)(arena + x->offset);
	}
	for (int s = 0; s < q->n_layer; s++)
		eval_layer(q, &q->layer[s], p);
}
