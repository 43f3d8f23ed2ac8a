/* cnnref.h: the hand-written reference of the convolutional benchmark
 * models (bench/cnnref.c): the training step and inference of dscnn and
 * resnet8 (bench/models) written the Caffe/Darknet way, im2col + OpenBLAS
 * cblas_sgemm per sample and group, single precision, plain SGD.
 *
 * The same step as the generated code computes, so bench.c (built with
 * -DBENCH_CNN) can check that they agree before timing them.  The
 * interface is ref.h's: bench.c reads and writes the parameters through
 * W[i] (in the model's declaration order, as the generated parameter
 * table) and calls ref_train_step / ref_infer.
 */
#ifndef CNNREF_H
#define CNNREF_H

#include <stdint.h>

#define REF_MAX_PARAMS 24
#define REF_MAX_OPS 24
#define REF_MAX_TENSORS 24

/* One operation of the network: a convolution (bias, then relu if
 * 'relu'), a sum of two tensors (then relu if 'relu'), a global average
 * pool or the dense classifier. */
typedef struct ref_op {
	enum { REF_CONV, REF_ADD, REF_GAP, REF_FC } kind;
	int in, in2, out;        /* tensors */
	int w, b;                /* parameters (weight, bias) */
	int kh, kw, sh, sw;      /* window */
	int pt, pl, pb, pr;      /* padding: top, left, bottom, right */
	int groups, relu;
} ref_op;

typedef struct ref_tensor {
	int c, h, w;     /* per sample */
	float *v, *g;    /* [batch][c][h][w] values and gradient (g: NULL for the input) */
} ref_tensor;

typedef struct ref_cnn {
	int batch, nop, nt, np, classes;
	ref_op op[REF_MAX_OPS];
	ref_tensor t[REF_MAX_TENSORS];   /* t[0]: the input */
	float *W[REF_MAX_PARAMS];        /* parameters */
	float *dW[REF_MAX_PARAMS];       /* their gradients */
	int count[REF_MAX_PARAMS];
	float *col, *dcol;               /* im2col scratch */
	float *d0;                       /* [batch][classes] */
	float lr;
	int vec;                         /* unused (ref.h's batch-1 forms) */
	double flops_train, flops_infer; /* 2 x the multiply-adds of a step / inference */
} ref_cnn;

/* The network of bench model 'name' ("dscnn", "resnet8") at 'batch':
 * 0, or -1 for an unknown name. */
int ref_cnn_new(ref_cnn *r, const char *name, int batch, float lr);
void ref_free(ref_cnn *r);
/* One SGD step on x [batch][c h w], labels y; the batch-mean loss in
 * obj[0] and obj[1] (obj[2] = 0: no penalty).  Returns 0, or 1 if the
 * loss is not finite (then nothing changed). */
int ref_train_step(ref_cnn *r, const float *x, const int32_t *y, float obj[3]);
/* The logits of x into o [batch][classes]. */
void ref_infer(ref_cnn *r, const float *x, float *o);

#endif
