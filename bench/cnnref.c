/* cnnref.c: the OpenBLAS reference of the convolutional benchmark models
 * (see cnnref.h), written as Caffe's and Darknet's convolution layers are.
 *
 * Convolution, per sample and group g (og = Co / groups output channels,
 * K = Ci / groups * kh * kw):
 *   forward  col = im2col(x)            [K][Ho Wo]
 *            y_g = W_g col              sgemm [og][K] x [K][Ho Wo]
 *            then the bias and the relu in one pass;
 *   backward dy masked by y > 0 (relu), db = the sum of dy over pixels,
 *            col = im2col(x) again,
 *            dW_g += dy_g col^T         sgemm [og][HW] x [HW][K]
 *            dcol = W_g^T dy_g, dx += col2im(dcol), when x needs one.
 * A 1x1 stride-1 unpadded convolution uses x itself as col (Caffe's
 * is_1x1).  A depthwise convolution is the same code with 64 groups of one
 * channel (an sgemm of one row per group), as in both frameworks.  The
 * global average pool, the dense layer (sgemm), softmax cross-entropy
 * (batch mean), then W -= lr dW for every parameter.  Everything is
 * allocated once by ref_cnn_new.
 */
#define _POSIX_C_SOURCE 200809L
#include "cnnref.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *buf(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, n * sizeof(float) + 64))
		abort();
	memset(p, 0, n * sizeof(float) + 64);
	return p;
}

static size_t numel(const ref_tensor *t)
{
	return (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

/* ------------------------------------------------------------ building */

static int tensor(ref_cnn *r, int c, int h, int w)
{
	ref_tensor *t = &r->t[r->nt];
	t->c = c;
	t->h = h;
	t->w = w;
	return r->nt++;
}

static int param(ref_cnn *r, int count)
{
	r->count[r->np] = count;
	return r->np++;
}

/* out = conv(in) with a new weight and bias: pads top, left, bottom, right */
static int conv(ref_cnn *r, int in, int co, int kh, int kw, int s, int pt, int pl, int pb,
                int pr, int groups, int relu)
{
	const ref_tensor *x = &r->t[in];
	int ho = (x->h + pt + pb - kh) / s + 1, wo = (x->w + pl + pr - kw) / s + 1;
	ref_op *o = &r->op[r->nop++];
	*o = (ref_op){.kind = REF_CONV, .in = in, .kh = kh, .kw = kw, .sh = s, .sw = s, .pt = pt,
	              .pl = pl, .pb = pb, .pr = pr, .groups = groups, .relu = relu};
	o->w = param(r, co * x->c / groups * kh * kw);
	o->b = param(r, co);
	o->out = tensor(r, co, ho, wo);
	return o->out;
}

static int add(ref_cnn *r, int a, int b, int relu)
{
	ref_op *o = &r->op[r->nop++];
	*o = (ref_op){.kind = REF_ADD, .in = a, .in2 = b, .relu = relu};
	o->out = tensor(r, r->t[a].c, r->t[a].h, r->t[a].w);
	return o->out;
}

/* the global average pool, then the dense classifier: the last tensor */
static void head(ref_cnn *r, int in, int classes)
{
	ref_op *o = &r->op[r->nop++];
	*o = (ref_op){.kind = REF_GAP, .in = in};
	o->out = tensor(r, r->t[in].c, 1, 1);
	int f = o->out;
	o = &r->op[r->nop++];
	*o = (ref_op){.kind = REF_FC, .in = f};
	o->w = param(r, classes * r->t[f].c);
	o->b = param(r, classes);
	o->out = tensor(r, classes, 1, 1);
	r->classes = classes;
}

/* bench/models/dscnn.nn: the parameters in its declaration order */
static void dscnn(ref_cnn *r)
{
	int t = tensor(r, 1, 49, 10);
	t = conv(r, t, 64, 10, 4, 2, 4, 1, 5, 1, 1, 1);  /* [64, 25, 5] */
	for (int blk = 0; blk < 4; blk++) {
		t = conv(r, t, 64, 3, 3, 1, 1, 1, 1, 1, 64, 1);  /* depthwise */
		t = conv(r, t, 64, 1, 1, 1, 0, 0, 0, 0, 1, 1);  /* pointwise */
	}
	head(r, t, 12);
}

/* bench/models/resnet8.nn */
static void resnet8(ref_cnn *r)
{
	int x = tensor(r, 3, 32, 32);
	int x0 = conv(r, x, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1);
	int y1 = conv(r, x0, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1);
	int z1 = conv(r, y1, 16, 3, 3, 1, 1, 1, 1, 1, 1, 0);
	int x1 = add(r, x0, z1, 1);
	int y2 = conv(r, x1, 32, 3, 3, 2, 0, 0, 1, 1, 1, 1);
	int z2 = conv(r, y2, 32, 3, 3, 1, 1, 1, 1, 1, 1, 0);
	int s2 = conv(r, x1, 32, 1, 1, 2, 0, 0, 0, 0, 1, 0);
	int x2 = add(r, s2, z2, 1);
	int y3 = conv(r, x2, 64, 3, 3, 2, 0, 0, 1, 1, 1, 1);
	int z3 = conv(r, y3, 64, 3, 3, 1, 1, 1, 1, 1, 1, 0);
	int s3 = conv(r, x2, 64, 1, 1, 2, 0, 0, 0, 0, 1, 0);
	int x3 = add(r, s3, z3, 1);
	head(r, x3, 10);
}

int ref_cnn_new(ref_cnn *r, const char *name, int batch, float lr)
{
	memset(r, 0, sizeof *r);
	r->batch = batch;
	r->lr = lr;
	if (strcmp(name, "dscnn") == 0)
		dscnn(r);
	else if (strcmp(name, "resnet8") == 0)
		resnet8(r);
	else
		return -1;
	for (int i = 0; i < r->np; i++) {
		r->W[i] = buf((size_t)r->count[i]);
		r->dW[i] = buf((size_t)r->count[i]);
	}
	for (int i = 0; i < r->nt; i++) {
		r->t[i].v = buf((size_t)batch * numel(&r->t[i]));
		r->t[i].g = i ? buf((size_t)batch * numel(&r->t[i])) : NULL;
	}
	size_t col = 0;
	for (int i = 0; i < r->nop; i++) {
		const ref_op *o = &r->op[i];
		const ref_tensor *x = &r->t[o->in], *y = &r->t[o->out];
		double macs = 0;
		if (o->kind == REF_CONV) {
			size_t k = (size_t)(x->c / o->groups * o->kh * o->kw), hw = (size_t)(y->h * y->w);
			col = k * hw > col ? k * hw : col;
			macs = (double)batch * y->c * (double)(x->c / o->groups * o->kh * o->kw) * y->h * y->w;
		} else if (o->kind == REF_FC) {
			macs = (double)batch * y->c * x->c;
		}
		r->flops_infer += 2 * macs;
		r->flops_train += 2 * macs * (o->in ? 3 : 2);  /* forward, dW, and dx but for the input */
	}
	r->col = buf(col);
	r->dcol = buf(col);
	r->d0 = buf((size_t)batch * (size_t)r->classes);
	return 0;
}

void ref_free(ref_cnn *r)
{
	for (int i = 0; i < r->np; i++) {
		free(r->W[i]);
		free(r->dW[i]);
	}
	for (int i = 0; i < r->nt; i++) {
		free(r->t[i].v);
		free(r->t[i].g);
	}
	free(r->col);
	free(r->dcol);
	free(r->d0);
}

/* ------------------------------------------------------------ im2col */

/* col[(c, u, v)][(i, j)] = x[c][i sh - pt + u][j sw - pl + v] (0 outside) */
static void im2col(const ref_op *o, const float *x, int c, int h, int w, int ho, int wo,
                   float *col)
{
	for (int cc = 0; cc < c; cc++)
		for (int u = 0; u < o->kh; u++)
			for (int v = 0; v < o->kw; v++, col += ho * wo)
				for (int i = 0; i < ho; i++) {
					int hi = i * o->sh - o->pt + u;
					float *d = col + i * wo;
					if (hi < 0 || hi >= h) {
						memset(d, 0, sizeof(float) * (size_t)wo);
						continue;
					}
					const float *s = x + ((size_t)cc * h + hi) * w;
					for (int j = 0; j < wo; j++) {
						int wi = j * o->sw - o->pl + v;
						d[j] = wi >= 0 && wi < w ? s[wi] : 0.0f;
					}
				}
}

/* dx[c][hi][wi] += the col entries that im2col took from it */
static void col2im(const ref_op *o, const float *col, int c, int h, int w, int ho, int wo,
                   float *dx)
{
	for (int cc = 0; cc < c; cc++)
		for (int u = 0; u < o->kh; u++)
			for (int v = 0; v < o->kw; v++, col += ho * wo)
				for (int i = 0; i < ho; i++) {
					int hi = i * o->sh - o->pt + u;
					if (hi < 0 || hi >= h)
						continue;
					float *d = dx + ((size_t)cc * h + hi) * w;
					const float *s = col + i * wo;
					for (int j = 0; j < wo; j++) {
						int wi = j * o->sw - o->pl + v;
						if (wi >= 0 && wi < w)
							d[wi] += s[j];
					}
				}
}

static int is_1x1(const ref_op *o)
{
	return o->kh == 1 && o->kw == 1 && o->sh == 1 && o->sw == 1 && !o->pt && !o->pl && !o->pb &&
	       !o->pr;
}

/* ------------------------------------------------------------ forward */

static void conv_forward(ref_cnn *r, const ref_op *o)
{
	const ref_tensor *x = &r->t[o->in], *y = &r->t[o->out];
	const int cg = x->c / o->groups, og = y->c / o->groups, hw = y->h * y->w;
	const int k = cg * o->kh * o->kw;
	const float *W = r->W[o->w], *bias = r->W[o->b];
	for (int b = 0; b < r->batch; b++) {
		const float *xb = x->v + (size_t)b * numel(x);
		float *yb = y->v + (size_t)b * numel(y);
		for (int g = 0; g < o->groups; g++) {
			const float *xg = xb + (size_t)g * cg * x->h * x->w, *col = xg;
			if (!is_1x1(o)) {
				im2col(o, xg, cg, x->h, x->w, y->h, y->w, r->col);
				col = r->col;
			}
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, og, hw, k, 1.0f,
			            W + (size_t)g * og * k, k, col, hw, 0.0f, yb + (size_t)g * og * hw, hw);
		}
		for (int c = 0; c < y->c; c++)
			for (int e = 0; e < hw; e++) {
				float v = yb[c * hw + e] + bias[c];
				yb[c * hw + e] = o->relu && v < 0 ? 0.0f : v;
			}
	}
}

static void forward(ref_cnn *r)
{
	const int B = r->batch;
	for (int i = 0; i < r->nop; i++) {
		const ref_op *o = &r->op[i];
		const ref_tensor *x = &r->t[o->in];
		float *y = r->t[o->out].v;
		size_t n = numel(x);
		switch (o->kind) {
		case REF_CONV:
			conv_forward(r, o);
			break;
		case REF_ADD:
			for (size_t e = 0; e < B * n; e++) {
				float v = x->v[e] + r->t[o->in2].v[e];
				y[e] = o->relu && v < 0 ? 0.0f : v;
			}
			break;
		case REF_GAP: {
			const size_t hw = (size_t)x->h * x->w;
			for (size_t bc = 0; bc < (size_t)B * x->c; bc++) {
				float s = 0;
				for (size_t e = 0; e < hw; e++)
					s += x->v[bc * hw + e];
				y[bc] = s / (float)hw;
			}
			break;
		}
		case REF_FC: {
			int m = r->t[o->out].c;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, m, (int)n, 1.0f, x->v,
			            (int)n, r->W[o->w], (int)n, 0.0f, y, m);
			for (int b = 0; b < B; b++)
				for (int c = 0; c < m; c++)
					y[b * m + c] += r->W[o->b][c];
			break;
		}
		}
	}
}

void ref_infer(ref_cnn *r, const float *x, float *o)
{
	memcpy(r->t[0].v, x, sizeof(float) * r->batch * numel(&r->t[0]));
	forward(r);
	memcpy(o, r->t[r->nt - 1].v, sizeof(float) * r->batch * r->classes);
}

/* ------------------------------------------------------------ backward */

static void conv_backward(ref_cnn *r, const ref_op *o)
{
	const ref_tensor *x = &r->t[o->in], *y = &r->t[o->out];
	const int cg = x->c / o->groups, og = y->c / o->groups, hw = y->h * y->w;
	const int k = cg * o->kh * o->kw;
	const float *W = r->W[o->w];
	float *dW = r->dW[o->w], *db = r->dW[o->b];
	for (int b = 0; b < r->batch; b++) {
		const float *xb = x->v + (size_t)b * numel(x), *yb = y->v + (size_t)b * numel(y);
		float *dy = y->g + (size_t)b * numel(y);
		for (int c = 0; c < y->c; c++) {
			float s = 0;
			for (int e = 0; e < hw; e++) {
				if (o->relu && yb[c * hw + e] <= 0)
					dy[c * hw + e] = 0;
				s += dy[c * hw + e];
			}
			db[c] += s;
		}
		for (int g = 0; g < o->groups; g++) {
			const float *xg = xb + (size_t)g * cg * x->h * x->w, *col = xg;
			const float *dyg = dy + (size_t)g * og * hw, *Wg = W + (size_t)g * og * k;
			if (!is_1x1(o)) {
				im2col(o, xg, cg, x->h, x->w, y->h, y->w, r->col);
				col = r->col;
			}
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, og, k, hw, 1.0f, dyg, hw, col,
			            hw, 1.0f, dW + (size_t)g * og * k, k);
			if (!x->g)
				continue;
			float *dxg = x->g + (size_t)b * numel(x) + (size_t)g * cg * x->h * x->w;
			if (is_1x1(o)) {
				cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, hw, og, 1.0f, Wg, k, dyg,
				            hw, 1.0f, dxg, hw);
			} else {
				cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, hw, og, 1.0f, Wg, k, dyg,
				            hw, 0.0f, r->dcol, hw);
				col2im(o, r->dcol, cg, x->h, x->w, y->h, y->w, dxg);
			}
		}
	}
}

static void backward(ref_cnn *r)
{
	const int B = r->batch;
	for (int i = r->nop - 1; i >= 0; i--) {
		const ref_op *o = &r->op[i];
		ref_tensor *x = &r->t[o->in], *y = &r->t[o->out];
		size_t n = numel(x);
		switch (o->kind) {
		case REF_CONV:
			conv_backward(r, o);
			break;
		case REF_ADD:
			for (size_t e = 0; e < B * n; e++) {
				float d = o->relu && y->v[e] <= 0 ? 0.0f : y->g[e];
				x->g[e] += d;
				r->t[o->in2].g[e] += d;
			}
			break;
		case REF_GAP: {
			const size_t hw = (size_t)x->h * x->w;
			for (size_t bc = 0; bc < (size_t)B * x->c; bc++)
				for (size_t e = 0; e < hw; e++)
					x->g[bc * hw + e] += y->g[bc] / (float)hw;
			break;
		}
		case REF_FC: {
			int m = y->c;
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, (int)n, B, 1.0f, y->g, m,
			            x->v, (int)n, 1.0f, r->dW[o->w], (int)n);
			for (int b = 0; b < B; b++)
				for (int c = 0; c < m; c++)
					r->dW[o->b][c] += y->g[b * m + c];
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, (int)n, m, 1.0f, y->g, m,
			            r->W[o->w], (int)n, 1.0f, x->g, (int)n);
			break;
		}
		}
	}
}

int ref_train_step(ref_cnn *r, const float *x, const int32_t *y, float obj[3])
{
	const int B = r->batch, m = r->classes;
	memcpy(r->t[0].v, x, sizeof(float) * B * numel(&r->t[0]));
	forward(r);
	/* softmax cross-entropy, batch mean: dO = (softmax - onehot) / B */
	const float *out = r->t[r->nt - 1].v;
	double loss = 0;
	for (int b = 0; b < B; b++) {
		const float *o = out + b * m;
		float mx = o[0], s = 0;
		for (int c = 1; c < m; c++)
			mx = o[c] > mx ? o[c] : mx;
		for (int c = 0; c < m; c++)
			s += expf(o[c] - mx);
		loss += (double)(logf(s) + mx - o[y[b]]);
		for (int c = 0; c < m; c++)
			r->d0[b * m + c] = (expf(o[c] - mx) / s - (c == y[b])) / (float)B;
	}
	obj[0] = obj[1] = (float)(loss / B);
	obj[2] = 0;
	if (!isfinite(obj[0]))
		return 1;
	for (int i = 1; i < r->nt; i++)
		memset(r->t[i].g, 0, sizeof(float) * B * numel(&r->t[i]));
	for (int i = 0; i < r->np; i++)
		memset(r->dW[i], 0, sizeof(float) * (size_t)r->count[i]);
	memcpy(r->t[r->nt - 1].g, r->d0, sizeof(float) * B * m);
	backward(r);
	for (int i = 0; i < r->np; i++)
		cblas_saxpy(r->count[i], -r->lr, r->dW[i], 1, r->W[i], 1);
	return 0;
}
