/* ref.h: the hand-written reference of the benchmark (bench/ref.c): a
 * multilayer perceptron without biases (relu between layers, softmax
 * cross-entropy, L2 weight decay lambda/2 sum ||W||^2 in the objective,
 * plain SGD), written on OpenBLAS cblas_sgemm, single precision.
 *
 * The same step as the generated code of the models in bench/models
 * computes, so bench.c can check that all of them agree before timing them.
 */
#ifndef REF_H
#define REF_H

#include <stdint.h>

#define REF_MAX_LAYERS 8

typedef struct ref_mlp {
	int nl;                       /* layers (weight matrices) */
	int batch;
	int dim[REF_MAX_LAYERS + 1];  /* dim[0] inputs, dim[nl] classes */
	float *W[REF_MAX_LAYERS];     /* W[l] is [dim[l+1]][dim[l]], row-major */
	float *A[REF_MAX_LAYERS + 1]; /* A[l], l >= 1: [batch][dim[l]] activations (A[nl]: logits) */
	float *d0, *d1;               /* [batch][max dim] backward scratch */
	float lambda, lr;
	int vec;                      /* batch 1: sgemv/sger instead of sgemm */
} ref_mlp;

/* Buffers for the layer sizes dim[0..nl] at 'batch' (weights zeroed). */
void ref_new(ref_mlp *r, int nl, const int *dim, int batch, float lambda, float lr);
void ref_free(ref_mlp *r);
/* One SGD step on x [batch][dim[0]], labels y; the batch-mean objective,
 * loss and penalty in obj[0..2].  Returns 0, or 1 if the objective is not
 * finite (then nothing changed). */
int ref_train_step(ref_mlp *r, const float *x, const int32_t *y, float obj[3]);
/* The logits of x into o [batch][dim[nl]]. */
void ref_infer(ref_mlp *r, const float *x, float *o);

#endif
