/* bench.c: one benchmark model in one process (bench/bench.sh builds it).
 *
 * Compiled with -DMODEL=NAME against three implementations of the same
 * training step and inference:
 *   NAME.{h,c}      the generated code (gradc compile)
 *   NAME_nf.{h,c}   the same model with --no-fuse --name NAME_nf (naive)
 *   ref.c           hand-written C on OpenBLAS cblas_sgemm (one thread)
 * The generated builds are called through NAME_bench.h (gradc compile
 * --harness bench: the API's rules of compiler/api.c, as every harness):
 * it holds the inputs of a cycle of random batches (filled in declaration
 * order by bench_real and bench_label below) and the calls of both builds
 * on batch i; the reference takes its feature input and its label.
 * The layer sizes of the reference come from the generated parameter
 * table (every parameter is a weight [out, in] of a bias-free MLP).
 *
 * 1. Check: from the same parameters and batch, one training step of each
 *    gives the same parameters (max |a - b| / max |b| <= 1e-4, the
 *    reference as b), the same update (W' - W, <= 1e-3) and the same
 *    objective; inference the same outputs.  Exit 1 if not.
 * 2. Time (argument "time"): after warm-up, samples taken round robin over
 *    the implementations; each sample restores the parameters, then runs
 *    'reps' calls on a cycle of random batches (reps calibrated to about
 *    2 ms) and records the mean per call; the median of the samples is
 *    reported (and the fastest sample of each, which the vs-openblas
 *    summary line compares: the least disturbed on a shared machine), with GFLOP/s (2*M*N*K per product, forward and backward)
 *    and the share of PEAK_GFLOPS (the fp32 peak of one core).  At batch
 *    1 the reference is timed in both its sgemm and its sgemv/sger forms
 *    and the faster one is kept.  Timed with them, a floor: the passes
 *    over the parameters that no implementation can skip, as plain loops
 *    on a copy of them (inference: one read of every weight; training: a
 *    read, for the forward, then a read and a write, for the update that
 *    needs the whole forward first).  At batch 1 these passes are most
 *    of the work, so the floor bounds the ratios that can be reached.
 * 3. Instruction counts (argument "cg N", under valgrind --tool=callgrind
 *    --collect-atstart=no): N calls of each implementation between client
 *    requests, one dump per implementation ("gen-train", ...).
 * 4. "loop WHAT N" (WHAT: gen-train, gen-infer, ref-train, ref-infer): N
 *    calls of one implementation (parameters restored every 256), for perf.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <valgrind/callgrind.h>

#ifdef BENCH_CNN
#include "cnnref.h"  /* the convolutional models' reference (bench/cnnref.c) */
typedef ref_cnn ref_impl;
#else
#include "ref.h"
typedef ref_mlp ref_impl;
#endif

#define STR_(x) #x
#define STR(x) STR_(x)
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define G(x) CAT(MODEL, x)
#define NF(x) CAT(CAT(MODEL, _nf), x)

static uint32_t rng = 12345;
static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}
/* the inputs' values: features in [0, 1), labels in [0, classes) */
static float bench_real(void)
{
	return (float)(next() >> 8) / 16777216.0f;
}
static int32_t bench_label(int64_t classes)
{
	return (int32_t)(next() % (uint32_t)classes);
}

#include STR(CAT(MODEL, _bench).h)

#ifndef PEAK_GFLOPS
#define PEAK_GFLOPS 117.0
#endif
#define LAMBDA 1e-4f  /* every bench model's weight decay */
#define NBATCH 16     /* distinct random batches cycled through */
#define BATCH G(_BATCH)
#define NP G(_N_PARAMS)

void openblas_set_num_threads(int);

/* 64-byte aligned, as the reference's buffers (posix_memalign in ref.c) */
static G(_params) p __attribute__((aligned(64))), p0;
static G(_state) s;
static NF(_params) pn __attribute__((aligned(64)));
static NF(_state) sn;
static ref_impl R;
static double flops_train, flops_infer;
static float *fw;          /* the floor's copy of the parameters */
static size_t fwn;         /* its length, a multiple of FLOOR_LANES */
static volatile float fw_scale = 1.0f;
float bench_floor_acc[128]; /* the floor's sums: stored, not summed (external, so kept) */

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

/* every implementation's parameters from p0 */
static void reset(void)
{
	p = p0;
	for (int i = 0; i < NP; i++) {
		const float *v = G(_param_values)(&p0, i);
		size_t n = (size_t)G(_param_table)[i].count;
		memcpy(NF(_param_values)(&pn, i), v, n * sizeof(float));
		memcpy(R.W[i], v, n * sizeof(float));
	}
}

/* ------------------------------------------------------------ the calls */

static int bad_status;
static void gen_train(int i)
{
	G(_stats) st;
	bad_status |= BENCH_TRAIN(GEN, &p, &s, i % NBATCH, &st);
}
static void nf_train(int i)
{
	NF(_stats) st;
	bad_status |= BENCH_TRAIN(NF, &pn, &sn, i % NBATCH, &st);
}
static void ref_train(int i)
{
	float obj[3];
	bad_status |= ref_train_step(&R, BENCH_X(i % NBATCH), BENCH_Y(i % NBATCH), obj);
}
static void gen_infer(int i)
{
	bad_status |= BENCH_INFER(GEN, &p, i % NBATCH, 0);
}
static void nf_infer(int i)
{
	bad_status |= BENCH_INFER(NF, &pn, i % NBATCH, 1);
}
static void ref_infer_(int i)
{
	ref_infer(&R, BENCH_X(i % NBATCH), BENCH_O(0));
}
static void ref_train_vec(int i)
{
	R.vec = 1;
	ref_train(i);
	R.vec = 0;
}
static void ref_infer_vec(int i)
{
	R.vec = 1;
	ref_infer_(i);
	R.vec = 0;
}

/* The floor: one read of the parameters, summed in FLOOR_LANES
 * independent lanes (eight AVX-512 vectors, so that the adds keep up with
 * the loads) that are stored, not summed; and a read and write, each
 * element scaled by fw_scale (1). */
#define FLOOR_LANES 128
static void floor_infer(int i)
{
	(void)i;
	float acc[FLOOR_LANES] = {0};
	for (size_t k = 0; k < fwn; k += FLOOR_LANES)
		for (int l = 0; l < FLOOR_LANES; l++)
			acc[l] += fw[k + l];
	memcpy(bench_floor_acc, acc, sizeof acc);
}
static void floor_train(int i)
{
	floor_infer(i);
	const float a = fw_scale;
	for (size_t k = 0; k < fwn; k++)
		fw[k] *= a;
}

/* ------------------------------------------------------------ check */

/* max |a - b| / max |b| over n */
static double rel(const float *a, const float *b, size_t n)
{
	double d = 0, m = 0;
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		m = fmax(m, fabs((double)b[i]));
	}
	return d / fmax(m, 1e-30);
}

static int check(void)
{
	int fail = 0;
	double wp = 0, wd = 0, np_ = 0, nd = 0;
	reset();
	G(_stats) st;
	NF(_stats) stn;
	float obj[3];
	int e = BENCH_TRAIN(GEN, &p, &s, 0, &st);
	e |= BENCH_TRAIN(NF, &pn, &sn, 0, &stn);
	e |= ref_train_step(&R, BENCH_X(0), BENCH_Y(0), obj);
	if (e) {
		printf("check: a training step failed (status %d)\n", e);
		return 1;
	}
	for (int i = 0; i < NP; i++) {
		size_t n = (size_t)G(_param_table)[i].count;
		const float *a = G(_param_values)(&p, i), *b = R.W[i];
		const float *c = NF(_param_values)(&pn, i), *w0 = G(_param_values)(&p0, i);
		float *da = malloc(n * sizeof(float)), *db = malloc(n * sizeof(float));
		float *dc = malloc(n * sizeof(float));
		for (size_t k = 0; k < n; k++) {
			da[k] = a[k] - w0[k];
			db[k] = b[k] - w0[k];
			dc[k] = c[k] - w0[k];
		}
		wp = fmax(wp, rel(a, b, n));
		np_ = fmax(np_, rel(c, b, n));
		wd = fmax(wd, rel(da, db, n));
		nd = fmax(nd, rel(dc, db, n));
		free(da);
		free(db);
		free(dc);
	}
	double ob = fmax(fabs(st.objective - obj[0]), fabs(stn.objective - obj[0])) /
	            fmax(fabs(obj[0]), 1e-30);
	reset();
	static float o_ref[BENCH_ON];
	e = BENCH_INFER(GEN, &p, 0, 0) | BENCH_INFER(NF, &pn, 0, 1);
	ref_infer(&R, BENCH_X(0), o_ref);
	double oi = fmax(rel(BENCH_O(0), o_ref, BENCH_ON), rel(BENCH_O(1), o_ref, BENCH_ON));
	printf("check: after one step, parameters vs OpenBLAS: generated %.1e, no-fuse %.1e; "
	       "updates %.1e, %.1e; objective %.1e; inference outputs %.1e\n",
	       wp, np_, wd, nd, ob, oi);
	if (e || wp > 1e-4 || np_ > 1e-4 || wd > 1e-3 || nd > 1e-3 || ob > 1e-4 || oi > 1e-4) {
		printf("check: FAILED (tolerances: parameters, objective and outputs 1e-4, "
		       "updates 1e-3)\n");
		fail = 1;
	}
	return fail;
}

/* ------------------------------------------------------------ timing */

typedef struct impl {
	const char *name;
	void (*fn)(int);
	int train;
	int reps;
	double t[64];
} impl;

static int cmpd(const void *a, const void *b)
{
	double x_ = *(const double *)a, y_ = *(const double *)b;
	return (x_ > y_) - (x_ < y_);
}

static double fastest(impl *m, int n)
{
	double t = m->t[0];
	for (int i = 1; i < n; i++)
		t = m->t[i] < t ? m->t[i] : t;
	return t;
}

static double median(impl *m, int n)
{
	double t[64];
	memcpy(t, m->t, sizeof(double) * (size_t)n);
	qsort(t, (size_t)n, sizeof(double), cmpd);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* one sample: parameters restored, then reps calls; µs per call */
static double sample(impl *m)
{
	if (m->train)
		reset();
	double t0 = now_us();
	for (int i = 0; i < m->reps; i++)
		m->fn(i);
	return (now_us() - t0) / m->reps;
}

static void timing(void)
{
	const int vec = BATCH == 1;
	enum { NR = 5 }; /* rows: I[k] trains, I[k + NR] infers */
	impl I[] = {
		{"generated", gen_train, 1, 0, {0}}, {"no-fuse", nf_train, 1, 0, {0}},
		{"openblas", ref_train, 1, 0, {0}}, {"openblas-vec", ref_train_vec, 1, 0, {0}},
		{"floor", floor_train, 0, 0, {0}},
		{"generated", gen_infer, 0, 0, {0}}, {"no-fuse", nf_infer, 0, 0, {0}},
		{"openblas", ref_infer_, 0, 0, {0}}, {"openblas-vec", ref_infer_vec, 0, 0, {0}},
		{"floor", floor_infer, 0, 0, {0}},
	};
	const int ni = 2 * NR;
	/* warm-up and calibration: about 2 ms per sample, at least one call */
	double slowest = 0;
	for (int k = 0; k < ni; k++) {
		if (!vec && strcmp(I[k].name, "openblas-vec") == 0)
			continue;
		I[k].reps = 1;
		double t = 0;
		for (int w = 0; w < 3 || (w < 1000 && t < 20000); w++)
			t += sample(&I[k]) * I[k].reps;
		double one = sample(&I[k]);
		I[k].reps = one > 2000 ? 1 : (int)(2000 / fmax(one, 0.01));
		slowest = fmax(slowest, one * I[k].reps);
	}
	/* samples: 21, fewer if the slowest implementation is slow */
	int ns = slowest > 50000 ? 7 : slowest > 10000 ? 11 : 21;
	for (int r = 0; r < ns; r++)
		for (int k = 0; k < ni; k++)
			if (I[k].reps)
				I[k].t[r] = sample(&I[k]);
	if (bad_status)
		printf("warning: a call returned an error status during timing\n");
	double med[2 * NR];
	for (int k = 0; k < ni; k++)
		med[k] = I[k].reps ? median(&I[k], ns) : 0;
	printf("%d samples, median µs per call (GFLOP/s, %% of %.0f GFLOP/s peak):\n", ns,
	       (double)PEAK_GFLOPS);
	printf("  %-13s %12s %9s %7s %12s %9s %7s\n", "", "train µs", "GFLOP/s", "peak", "infer µs",
	       "GFLOP/s", "peak");
	for (int k = 0; k < NR - 1; k++) {
		if (!I[k].reps)
			continue;
		double gt = flops_train / med[k] * 1e-3, gi = flops_infer / med[k + NR] * 1e-3;
		printf("  %-13s %12.2f %9.2f %6.1f%% %12.2f %9.2f %6.1f%%\n", I[k].name, med[k], gt,
		       100 * gt / PEAK_GFLOPS, med[k + NR], gi, 100 * gi / (double)PEAK_GFLOPS);
	}
	printf("  %-13s %12.2f %17s %12.2f\n", "floor", med[NR - 1], "", med[2 * NR - 1]);
	/* the reference: the faster of its forms */
	double rt = med[2], ri = med[NR + 2];
	if (vec) {
		rt = fmin(rt, med[3]);
		ri = fmin(ri, med[NR + 3]);
	}
	printf("  generated / no-fuse:  train %.3fx  infer %.3fx\n", med[0] / med[1],
	       med[NR] / med[NR + 1]);
	printf("  generated / openblas: train %.3fx  infer %.3fx%s\n", med[0] / rt, med[NR] / ri,
	       vec ? "  (openblas: the faster of sgemm and sgemv forms)" : "");
	printf("  floor / openblas:     train %.3fx  infer %.3fx  (the passes over the parameters "
	       "alone)\n", med[NR - 1] / rt, med[2 * NR - 1] / ri);
	/* the summary: the fastest sample of each, the least disturbed by
	 * other processes (on a shared, loaded machine the medians of one run
	 * have moved by 2x; the fastest samples by a few percent) */
	double lo[2 * NR];
	for (int k = 0; k < ni; k++)
		lo[k] = I[k].reps ? fastest(&I[k], ns) : 0;
	double lt = lo[2], li = lo[NR + 2];
	if (vec) {
		lt = fmin(lt, lo[3]);
		li = fmin(li, lo[NR + 3]);
	}
	printf("  fastest samples, generated / openblas: train %.3fx  infer %.3fx  (%.2f / %.2f µs, "
	       "%.2f / %.2f µs)\n", lo[0] / lt, lo[NR] / li, lo[0], lt, lo[NR], li);
	printf("vs-openblas %s train %.3f infer %.3f %.2f %.2f\n", STR(MODEL), lo[0] / lt,
	       lo[NR] / li, lo[0], lo[NR]);
}

/* ------------------------------------------------------------ callgrind */

static void cg(int n)
{
	struct {
		const char *name;
		void (*fn)(int);
	} I[] = {{"gen-train", gen_train}, {"nf-train", nf_train}, {"ref-train", ref_train},
	         {"gen-infer", gen_infer}, {"nf-infer", nf_infer}, {"ref-infer", ref_infer_}};
	for (int k = 0; k < 6; k++) {
		reset();
		I[k].fn(0);  /* warm-up: lazy binding, first-touch */
		CALLGRIND_ZERO_STATS;
		CALLGRIND_TOGGLE_COLLECT;
		for (int i = 0; i < n; i++)
			I[k].fn(i + 1);
		CALLGRIND_TOGGLE_COLLECT;
		CALLGRIND_DUMP_STATS_AT(I[k].name);
	}
}

/* "loop WHAT N": N calls of one implementation, for a profiler */
static void loop(const char *what, int n)
{
	void (*fn)(int) = strcmp(what, "gen-infer") == 0   ? gen_infer
	                  : strcmp(what, "ref-train") == 0 ? ref_train
	                  : strcmp(what, "ref-infer") == 0 ? ref_infer_
	                                                   : gen_train;
	for (int i = 0; i < n; i++) {
		if (i % 256 == 0)
			reset();
		fn(i);
	}
}

int main(int argc, char **argv)
{
	openblas_set_num_threads(1);
	G(_init)(&p0, &s, 1);
	NF(_init)(&pn, &sn, 1);
	int nl = NP;
#ifdef BENCH_CNN
	/* the convolutional models: the reference builds its network by name */
	if (ref_cnn_new(&R, STR(MODEL), BATCH, s.lr) || R.np != NP) {
		fprintf(stderr, "bench: no reference network for %s\n", STR(MODEL));
		return 1;
	}
	for (int i = 0; i < NP; i++)
		if (R.count[i] != G(_param_table)[i].count) {
			fprintf(stderr, "bench: parameter %d: %d elements, the reference has %d\n", i,
			        (int)G(_param_table)[i].count, R.count[i]);
			return 1;
		}
	flops_train = R.flops_train;
	flops_infer = R.flops_infer;
	const int classes = R.classes;
#else
	int dim[REF_MAX_LAYERS + 1];
	if (nl > REF_MAX_LAYERS) {
		fprintf(stderr, "bench: too many layers\n");
		return 1;
	}
	dim[0] = G(_param_table)[0].shape[1];
	flops_train = flops_infer = 0;
	for (int i = 0; i < nl; i++) {
		dim[i + 1] = G(_param_table)[i].shape[0];
		double f = 2.0 * BATCH * dim[i + 1] * dim[i];
		flops_infer += f;
		flops_train += f * (i > 0 ? 3 : 2);  /* forward, dW, and dX but for the input */
	}
	ref_new(&R, nl, dim, BATCH, LAMBDA, s.lr);
	const int classes = dim[nl];
#endif
	if (classes != BENCH_CLASSES) {
		fprintf(stderr, "bench: the reference has %d classes, the model %d\n", classes,
		        (int)BENCH_CLASSES);
		return 1;
	}
	size_t np = 0;
	for (int i = 0; i < nl; i++)
		np += (size_t)G(_param_table)[i].count;
	fwn = (np + FLOOR_LANES - 1) / FLOOR_LANES * FLOOR_LANES;
	fw = aligned_alloc(64, fwn * sizeof(float));
	if (!fw) {
		fprintf(stderr, "bench: out of memory\n");
		return 1;
	}
	memset(fw, 0, fwn * sizeof(float));
	for (int i = 0, o = 0; i < nl; o += G(_param_table)[i].count, i++)
		memcpy(fw + o, G(_param_values)(&p0, i),
		       (size_t)G(_param_table)[i].count * sizeof(float));
	if (bench_inputs(NBATCH)) {
		fprintf(stderr, "bench: out of memory\n");
		return 1;
	}
	printf("== %s: ", STR(MODEL));
#ifdef BENCH_CNN
	printf("%d convolutional layers", R.nop - 2);
#else
	for (int i = 0; i <= nl; i++)
		printf("%d%s", dim[i], i < nl ? "-" : "");
#endif
	printf(", batch %d; per call: train %.3f MFLOP, infer %.3f MFLOP\n", BATCH,
	       flops_train * 1e-6, flops_infer * 1e-6);
	int fail = check();
	if (argc > 2 && strcmp(argv[1], "cg") == 0)
		cg(atoi(argv[2]));
	else if (argc > 3 && strcmp(argv[1], "loop") == 0)
		loop(argv[2], atoi(argv[3]));
	else if (argc > 1 && strcmp(argv[1], "time") == 0 && !fail)
		timing();
	ref_free(&R);
	free(fw);
	bench_free_inputs();
	return fail;
}
