/* ref.c: the OpenBLAS reference step of the benchmark (see ref.h).
 *
 * Forward: A[l+1] = relu(A[l] W[l]^T), one sgemm per layer (the relu in
 * place, none after the last).  Loss: per row, the stable log-sum-exp;
 * dO = (softmax - onehot) / B.  Penalty: lambda/2 sum sdot(W, W).
 * Backward, last layer first: dA = dZ W[l] (sgemm) masked by A[l] > 0, then
 * the whole update in one sgemm with beta:
 *     W = (1 - lr lambda) W - lr dZ^T A[l]
 * which is W - lr (dJ/dW + lambda W) with the weight decay and the SGD step
 * folded into the product, so W is read and written once.  dA is computed
 * before W[l] changes.
 *
 * With r->vec at batch 1 the products are the matrix-vector forms instead
 * (sgemv forward and back, sscal + sger for the update), which is what a
 * careful hand-writer would try for one sample; bench.c times both and
 * keeps the faster.  Everything is allocated once by ref_new.
 */
#define _POSIX_C_SOURCE 200809L
#include "ref.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *buf(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, n * sizeof(float) + 64))
		abort();
	memset(p, 0, n * sizeof(float));
	return p;
}

void ref_new(ref_mlp *r, int nl, const int *dim, int batch, float lambda, float lr)
{
	memset(r, 0, sizeof *r);
	r->nl = nl;
	r->batch = batch;
	r->lambda = lambda;
	r->lr = lr;
	int mx = 0;
	for (int l = 0; l <= nl; l++) {
		r->dim[l] = dim[l];
		mx = dim[l] > mx ? dim[l] : mx;
	}
	for (int l = 0; l < nl; l++)
		r->W[l] = buf((size_t)dim[l + 1] * (size_t)dim[l]);
	for (int l = 1; l <= nl; l++)
		r->A[l] = buf((size_t)batch * (size_t)dim[l]);
	r->d0 = buf((size_t)batch * (size_t)mx);
	r->d1 = buf((size_t)batch * (size_t)mx);
}

void ref_free(ref_mlp *r)
{
	for (int l = 0; l < r->nl; l++)
		free(r->W[l]);
	for (int l = 1; l <= r->nl; l++)
		free(r->A[l]);
	free(r->d0);
	free(r->d1);
}

/* out[B][n] = in[B][k] W^T, W [n][k] */
static void forward(const ref_mlp *r, const float *in, const float *W, float *out, int n, int k)
{
	if (r->vec && r->batch == 1)
		cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, W, k, in, 1, 0.0f, out, 1);
	else
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r->batch, n, k, 1.0f, in, k, W, k,
		            0.0f, out, n);
}

static void relu(float *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		a[i] = a[i] < 0 ? 0.0f : a[i];
}

void ref_infer(ref_mlp *r, const float *x, float *o)
{
	const float *in = x;
	for (int l = 0; l < r->nl; l++) {
		float *out = l == r->nl - 1 ? o : r->A[l + 1];
		forward(r, in, r->W[l], out, r->dim[l + 1], r->dim[l]);
		if (l < r->nl - 1)
			relu(out, (size_t)r->batch * (size_t)r->dim[l + 1]);
		in = out;
	}
}

int ref_train_step(ref_mlp *r, const float *x, const int32_t *y, float obj[3])
{
	const int B = r->batch, nl = r->nl, q = r->dim[nl];
	ref_infer(r, x, r->A[nl]);
	/* loss and dO = (softmax - onehot) / B */
	float *dz = r->d0, *da = r->d1;
	double lsum = 0;
	for (int b = 0; b < B; b++) {
		const float *o = r->A[nl] + (size_t)b * (size_t)q;
		float *d = dz + (size_t)b * (size_t)q;
		float mx = o[0];
		for (int j = 1; j < q; j++)
			mx = o[j] > mx ? o[j] : mx;
		float sum = 0;
		for (int j = 0; j < q; j++)
			sum += d[j] = expf(o[j] - mx);
		lsum += mx + logf(sum) - o[y[b]];
		const float inv = 1.0f / (sum * (float)B);
		for (int j = 0; j < q; j++)
			d[j] *= inv;
		d[y[b]] -= 1.0f / (float)B;
	}
	float ss = 0;
	for (int l = 0; l < nl; l++) {
		const int n = r->dim[l + 1] * r->dim[l];
		ss += cblas_sdot(n, r->W[l], 1, r->W[l], 1);
	}
	obj[1] = (float)(lsum / B);
	obj[2] = r->lambda / 2 * ss;
	obj[0] = obj[1] + obj[2];
	if (!isfinite(obj[0]))
		return 1;
	/* backward and update, last layer first */
	const float decay = 1.0f - r->lr * r->lambda;
	for (int l = nl - 1; l >= 0; l--) {
		const int n = r->dim[l + 1], k = r->dim[l];
		const float *in = l == 0 ? x : r->A[l];
		if (l > 0) {  /* dA = dZ W, masked by relu'(Z) = A > 0 */
			if (r->vec && B == 1)
				cblas_sgemv(CblasRowMajor, CblasTrans, n, k, 1.0f, r->W[l], k, dz, 1,
				            0.0f, da, 1);
			else
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, k, n, 1.0f, dz,
				            n, r->W[l], k, 0.0f, da, k);
			const size_t m = (size_t)B * (size_t)k;
			for (size_t i = 0; i < m; i++)
				da[i] = r->A[l][i] > 0 ? da[i] : 0.0f;
		}
		if (r->vec && B == 1) {
			cblas_sscal(n * k, decay, r->W[l], 1);
			cblas_sger(CblasRowMajor, n, k, -r->lr, dz, 1, in, 1, r->W[l], k);
		} else {
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, B, -r->lr, dz, n, in,
			            k, decay, r->W[l], k);
		}
		float *t = dz;
		dz = da;
		da = t;
	}
	return 0;
}
