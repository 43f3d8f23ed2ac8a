/* quant.h: int8 inference (SPEC 4 "int8"): quant.c decides everything --
 * activation ranges, scales, zero points, int8 weights, int32 biases,
 * multipliers and shifts, the arena -- into a QModel; emit/int8.lua prints
 * it (quant_emit.c), quant_eval() runs it with the same integer arithmetic
 * (runtime/gradc_q8.h), quant_run.c is `run --quantize int8`.
 */
#ifndef QUANT_H
#define QUANT_H

#include "host.h"

typedef enum QKind {
	Q_QUANTIZE,   /* float value -> int8 (scale, zero point of the output) */
	Q_DEQUANTIZE, /* int8 (or float: a copy) -> float */
	Q_FC,         /* int8 product with a baked weight: y = requant(W x + b) */
	Q_ADD,        /* int8 a + b, each requantized to the output's scale */
	Q_CLAMP,      /* relu or clip on an int8 value: a clamp in its scale */
	Q_FLOAT,      /* an op without an int8 form, in float (Node.op) */
	Q_CONV,       /* int8 conv2d (any groups), bias and relu/clip folded */
	Q_MAXPOOL,    /* int8 max over each window (the input's scale) */
	Q_AVGPOOL,    /* int8 mean over each window (the input's scale) */
	Q_CONCAT,     /* int8 inputs requantized to the output's scale, joined */
} QKind;

/* A tensor of the int8 program: int8 or float, B * numel elements. */
typedef struct QVal {
	bool i8;        /* int8 (else float) */
	int64_t numel;  /* per sample */
	float scale;    /* i8: real = scale * (q - zp) */
	int32_t zp;
	int input;      /* >= 0: the entry point's float input of that index */
	int output;     /* >= 0: the entry point's float output of that index */
	int64_t offset; /* the arena (neither input nor output): byte offset */
	int first, last;/* layers that write and last read it */
} QVal;

typedef struct QLayer {
	QKind kind;
	int out, in[MAX_IN], n_in;  /* value ids */
	const Node *node;      /* the graph node computed (its text and line) */
	const char *what;      /* the operation, for the comment */
	/* Q_FC: y[b, o] = requant(sum_i W[o, i] x[b, i] + bias[o]) */
	int64_t rows, cols;    /* output channels, inputs */
	bool pointwise;        /* Q_CONV 1x1, stride 1, no padding, one group: a
	                        * product over the channels, printed as one */
	int block;             /* Q_FC, pointwise Q_CONV: output channels computed
	                        * together (one load
	                        * of x feeds them: four accumulators and x fit the
	                        * registers of every target) */
	bool dot4;             /* Q_FC: the block's sums four values of k at a time
				  by the Cortex-M4's SMLAD where the C compiler has
				  it (GRADC_Q8_DSP; cols a multiple of 4) */
	int8_t *w;             /* [rows, cols], symmetric per row */
	float *wscale;         /* per row */
	int32_t *bias;         /* per row, the input's zero point folded in */
	int32_t *mult, *shift; /* per row */
	int32_t lo, hi;        /* FC, ADD, CLAMP: activation range of the output */
	int32_t add[9];        /* Q_ADD: see gradc_q8_add */
	/* Q_CONV, Q_*POOL: the window and the geometry per sample: input
	 * [c, h, w], output [co, ho, wo], cg input and og output channels per
	 * group; Q_CONV's w is [co, cg * kh * kw] and its accumulator sums
	 * (x - xzp) * w over the taps inside the image (padding is real 0) */
	Window win;
	int64_t c, h, w_, co, ho, wo, cg, og;
	int32_t xzp;
	/* Q_CONCAT: per input, its multiplier and shift to the output's scale */
	int32_t cmult[MAX_IN], cshift[MAX_IN];
	/* Q_FLOAT */
	Op op;
	double attr[2];
	int64_t row;           /* K_ROW: elements of a row */
	float *pv;             /* a binary op's unbatched operand, float */
	int64_t pn;            /* its elements: 1 or numel */
	int pside;             /* it is input 0 or 1 of the op */
	bool fused;            /* Q_FLOAT elementwise: computed inside the next
	                        * layer's loop (its only reader), no buffer */
} QLayer;

typedef struct QModel {
	const char *prefix;    /* symbol prefix */
	const char *path;      /* model file, for the banner */
	const char *model;     /* the model statement's name */
	int batch;
	QVal *val;
	int n_val;
	QLayer *layer;
	int n_layer;
	int n_in, n_out;
	const char *in_name[MAX_LIST], *out_name[MAX_LIST];
	Shape in_shape[MAX_LIST], out_shape[MAX_LIST];
	int64_t arena_bytes;
	int64_t weight_bytes;  /* baked: int8 weights, int32 bias/mult/shift, float consts */
	int64_t float_weight_bytes; /* the float build's baked parameters */
	int64_t float_arena_bytes;  /* the float build's inference arena */
	int64_t calib_n;       /* calibration samples */
	Buf notes;             /* ops left in float, one line each */
} QModel;

/* Calibration inputs: values per input node id of 'fwd', n samples. */
Data *quant_calib(const char *path, const Graph *fwd);
/* The int8 program of forward graph 'fwd' (statistics applied) with the
 * parameters in 'param' (per fwd node id; NULL: Node.value) and the
 * ranges of 'cal' (a graph of the same model at the calibration batch
 * with the same ids) run on calibration data 'cd'.  */
QModel *quantize(const Graph *fwd, const Graph *cal, const Data *cd, const Options *o);
/* Run the program on the entry inputs in[k] (B * numel floats each); the
 * outputs to out[k]. */
void quant_eval(const QModel *q, const float *const *in, float *const *out);
/* NAME.h and NAME.c of the program (emit/int8.lua). */
void quant_emit(Buf *h, Buf *c, const QModel *q, const Options *o);
/* `compile --quantize int8`, `report --quantize int8`, `run --quantize int8` */
int quant_compile(const char *outdir, const Graph *fwd, const Options *o, bool depfile,
		  const char *model_path);
int quant_report(const Graph *fwd, const Options *o, bool json);
int quant_run(const char *path, const Graph *fwd, const Options *o, const char *in,
	      const char *out, uint32_t seed);
/* The graph of 'fwd' (its model at batch 'batch') that quantize reads,
 * inference only, parameters from the file (if any).  */
Graph *quant_graph(const Graph *fwd, int batch, const Options *o);
/* The requantization (m, shift) of a real multiplier r >= 0 (TFLite's
 * QuantizeMultiplier); false if r is too large (>= 2^30). */
bool quant_multiplier(double r, int32_t *m, int32_t *shift);

#endif
