/* trainer.c: the host program behind `gradc train` and `gradc eval`.
 *
 * Not part of the compiler: gradc embeds this file as text (build/
 * trainer_src.h), writes it beside the generated NAME.c and a generated
 * glue.h (the model's entry points behind uniform m_* names, see train.c),
 * and builds the three with $CC.  It then runs it once:
 *
 *   trainer IN.bin OUT.bin
 *
 * IN.bin (written by gradc, host byte order): the settings as doubles (see
 * Cfg), then per model input in declaration order the training samples
 * (real or int32_t, N * size), then the same for the validation samples,
 * then (--init) per parameter a flag (double) and, if set, its values.
 *
 * Training: NAME_init(seed); per epoch the sample order is shuffled (PCG32
 * from the seed, stream 2), cut into batches of M_BATCH (the last partial
 * batch dropped, or padded by wrapping around to the epoch's first
 * samples); before each step the learning rate of the schedule is stored in
 * s.lr.  The training accuracy is counted on each batch by NAME_infer before
 * its step (what the step's forward sees, as Keras's running accuracy).
 * After each epoch: the validation pass, one progress line on stdout (a
 * live bar within the epoch when stdout is a terminal), and the best epoch
 * (lowest validation objective) kept with --keep-best.
 *
 * Evaluation (also the validation pass): every sample counts once.  Batches
 * are full, the last one padded with copies of its first sample; its batch
 * means M then hold (B - r) copies of that sample, whose own value J0 one
 * more call on a batch of copies gives: the sum over its r samples is
 * B M - (B - r) J0.  Outputs (accuracy, predictions) are read per sample.
 *
 * OUT.bin: doubles: a status (0, or the generated code's) and where (epoch,
 * step); training: per epoch a record (Rec), the epoch kept, the
 * parameters in declaration order (real), the blob size and the blob
 * (bytes); evaluation: the record's validation half, the confusion matrix
 * (classes^2 counts) and, if asked, the predicted class of every sample.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "glue.h"

/* the stats struct is the objective then the tracked values, all real */
typedef char m_stats_is_an_array[sizeof(m_stats) == sizeof(real) * (1 + M_N_TRACK) ? 1 : -1];

enum { SCHED_CONST, SCHED_STEP, SCHED_COSINE };

/* The settings, in the order IN.bin holds them. */
typedef struct Cfg {
	double eval;             /* 1: evaluate IN's first set, no training */
	double n_train, n_val;   /* samples */
	double epochs, seed, lr; /* lr <= 0: the model's */
	double shuffle, pad;     /* pad: wrap the last partial batch, else drop it */
	double keep_best, tty, init, pred;
	double sched, step_size, gamma, min_lr, warmup;
} Cfg;

/* What one pass over a set measured (means per sample). */
typedef struct Pass {
	double mean[1 + M_N_TRACK]; /* objective, tracked values */
	double acc;                 /* NaN: no accuracy */
} Pass;

static FILE *fin, *fout;
static Cfg cfg;
static m_params p, best_p;
static m_state s, best_s;
static void *set_x[2][M_N_IN];    /* per set (train, val), per input: its samples */
static void *batch_x[M_N_IN];     /* one batch, per input */
static long *confusion;           /* M_CLASSES^2 */
static int32_t *pred;             /* evaluation: per sample */
static int table[M_N_PARAMS + 1]; /* the model's parameter k: row table[k] */

static void fail_io(const char *what)
{
	fprintf(stderr, "trainer: %s\n", what);
	exit(4);
}

static void *xmalloc(size_t n)
{
	void *q = calloc(n ? n : 1, 1);
	if (!q)
		fail_io("out of memory");
	return q;
}

static double rd1(void)
{
	double v;
	if (fread(&v, sizeof v, 1, fin) != 1)
		fail_io("short input");
	return v;
}

static void rdn(void *d, size_t n)
{
	if (n && fread(d, 1, n, fin) != n)
		fail_io("short input");
}

static void wr1(double v)
{
	if (fwrite(&v, sizeof v, 1, fout) != 1)
		fail_io("cannot write");
}

static void wrn(const void *d, size_t n)
{
	if (n && fwrite(d, 1, n, fout) != n)
		fail_io("cannot write");
}

static size_t elem(int i)
{
	return m_in_int[i] ? sizeof(int32_t) : sizeof(real);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A status of the generated code: report it and where, and stop. */
static void fail_status(int status, int epoch, long step)
{
	wr1(status);
	wr1(epoch);
	wr1((double)step);
	fclose(fout);
	exit(0);
}

/* Copy sample 'from' of set 'set' into slot 'b' of the batch. */
static void put_sample(int set, long from, int b)
{
	for (int i = 0; i < M_N_IN; i++) {
		size_t e = elem(i) * (size_t)m_in_size[i];
		memcpy((char *)batch_x[i] + e * (size_t)b, (char *)set_x[set][i] + e * (size_t)from,
		       e);
	}
}

/* Argmax of output M_PRED_OUT for slot b of the batch. */
static int predicted(int b)
{
	const real *o = m_out[M_PRED_OUT] + (long)b * M_PRED_SIZE;
	int best = 0;
	for (int c = 1; c < M_PRED_SIZE; c++)
		if (o[c] > o[best])
			best = c;
	return best;
}

static int32_t label_of(int b)
{
	return M_LABEL >= 0 ? ((const int32_t *)batch_x[M_LABEL])[b] : 0;
}

/* ---- the learning rate */

/* The schedule's rate at global step t (0-based) of an epoch of n steps:
 * a linear warm-up over the first 'warmup' epochs, then constant, step
 * decay (x gamma every step_size epochs) or cosine decay to min_lr by the
 * last step.  */
static double rate(double base, long t, long n)
{
	double w = cfg.warmup * (double)n, e = (double)(t / (n ? n : 1));
	if ((double)t < w)
		return base * (double)(t + 1) / w;
	if (cfg.sched == SCHED_STEP)
		return base * pow(cfg.gamma, floor(e / cfg.step_size));
	if (cfg.sched == SCHED_COSINE) {
		double span = cfg.epochs * (double)n - w;
		double x = span > 1 ? ((double)t - w) / (span - 1) : 1;
		return cfg.min_lr
		       + (base - cfg.min_lr) * 0.5 * (1 + cos(3.14159265358979323846 * x));
	}
	return base;
}

/* ---- evaluation */

/* One pass over set 'set' of n samples at the current parameters. */
static Pass evaluate(int set, long n)
{
	Pass r;
	double sum[1 + M_N_TRACK] = {0};
	long right = 0;
	m_stats st;
	for (long at = 0; at < n; at += M_BATCH) {
		int k = n - at < M_BATCH ? (int)(n - at) : M_BATCH;
		for (int b = 0; b < M_BATCH; b++)
			put_sample(set, at + (b < k ? b : 0), b);
		int rc = m_eval(&p, batch_x, &st);
		if (rc)
			fail_status(rc, -1, at);
		for (int j = 0; j <= M_N_TRACK; j++)
			sum[j] += (double)((const real *)&st)[j] * M_BATCH;
		if (M_PRED_OUT >= 0) {
			if ((rc = m_infer(&p, batch_x)) != 0)
				fail_status(rc, -1, at);
			for (int b = 0; b < k; b++) {
				int c = predicted(b);
				int32_t y = label_of(b);
				right += c == y;
				if (confusion && set == 0)
					confusion[(long)y * M_CLASSES + c]++;
				if (pred && set == 0)
					pred[at + b] = c;
			}
		}
		if (k < M_BATCH) { /* take out the copies of sample 'at' (outputs read) */
			for (int b = 1; b < M_BATCH; b++)
				put_sample(set, at, b);
			rc = m_eval(&p, batch_x, &st);
			if (rc)
				fail_status(rc, -1, at);
			for (int j = 0; j <= M_N_TRACK; j++)
				sum[j] -= (double)((const real *)&st)[j] * (M_BATCH - k);
		}
	}
	for (int j = 0; j <= M_N_TRACK; j++)
		r.mean[j] = sum[j] / (double)n;
	r.acc = M_PRED_OUT >= 0 ? (double)right / (double)n : NAN;
	return r;
}

/* ---- training */

/* A record of one epoch, as OUT.bin holds it. */
typedef struct Rec {
	double lr;       /* at the epoch's last step */
	Pass train, val; /* val: NaN without validation data */
	double rate;     /* samples per second of the training steps */
} Rec;

static void print_pass(const Pass *ps, const char *tag)
{
	printf("  %sJ %.4f", tag, ps->mean[0]);
	for (int j = 0; j < M_N_TRACK; j++)
		printf("  %s %.4f", m_track[j], ps->mean[1 + j]);
	if (M_PRED_OUT >= 0)
		printf("  acc %.4f", ps->acc);
}

static void print_epoch(int e, const Rec *r)
{
	printf("%sepoch %*d/%d", cfg.tty ? "\r\033[K" : "", cfg.epochs >= 100 ? 3 : 2, e + 1,
	       (int)cfg.epochs);
	print_pass(&r->train, "");
	if (cfg.n_val > 0) {
		printf("  |");
		print_pass(&r->val, "val ");
	}
	printf("  lr %.4g  %.0f samples/s\n", r->lr, r->rate);
	fflush(stdout);
}

/* The live bar of a terminal: 'done' of 'n' steps of epoch e. */
static void print_bar(int e, long done, long n, double j)
{
	enum { W = 30 };
	int fill = (int)(W * done / (n ? n : 1));
	printf("\r\033[Kepoch %d/%d [", e + 1, (int)cfg.epochs);
	for (int i = 0; i < W; i++)
		putchar(i < fill ? '=' : i == fill ? '>' : ' ');
	printf("] %3d%%  J %.4f", (int)(100 * done / (n ? n : 1)), j);
	fflush(stdout);
}

static void shuffle(long *idx, long n, gradc_rng *r)
{
	for (long i = n - 1; i > 0; i--) {
		long j = (long)(gradc_rng_u32(r) % (uint32_t)(i + 1));
		long t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
	}
}

static void train(void)
{
	long n = (long)cfg.n_train;
	long steps = cfg.pad ? (n + M_BATCH - 1) / M_BATCH : n / M_BATCH;
	int epochs = (int)cfg.epochs, best = -1;
	double base = cfg.lr > 0 ? cfg.lr : (double)s.lr, best_j = INFINITY;
	long *order = xmalloc(sizeof(long) * (size_t)n);
	Rec *rec = xmalloc(sizeof(Rec) * (size_t)epochs);
	gradc_rng r;
	gradc_rng_seed(&r, (uint64_t)cfg.seed, 2);
	for (long i = 0; i < n; i++)
		order[i] = i;
	for (int e = 0; e < epochs; e++) {
		double sum[1 + M_N_TRACK] = {0}, secs = 0;
		long right = 0;
		m_stats st;
		if (cfg.shuffle)
			shuffle(order, n, &r);
		for (long k = 0; k < steps; k++) {
			for (int b = 0; b < M_BATCH; b++)
				put_sample(0, order[(k * M_BATCH + b) % n], b);
			if (M_PRED_OUT >= 0) {
				int rc = m_infer(&p, batch_x);
				if (rc)
					fail_status(rc, e, k);
				for (int b = 0; b < M_BATCH; b++)
					right += predicted(b) == label_of(b);
			}
			s.lr = (real)rate(base, (long)e * steps + k, steps);
			double t0 = now();
			int rc = m_step(&p, &s, batch_x, &st);
			secs += now() - t0;
			if (rc)
				fail_status(rc, e, k);
			for (int j = 0; j <= M_N_TRACK; j++)
				sum[j] += (double)((const real *)&st)[j];
			if (cfg.tty && (k % (steps / 40 + 1) == 0 || k + 1 == steps))
				print_bar(e, k + 1, steps, sum[0] / (double)(k + 1));
		}
		Rec *rc = &rec[e];
		rc->lr = (double)s.lr;
		for (int j = 0; j <= M_N_TRACK; j++)
			rc->train.mean[j] = sum[j] / (double)steps;
		rc->train.acc = M_PRED_OUT >= 0 ? (double)right / (double)(steps * M_BATCH) : NAN;
		rc->rate = secs > 0 ? (double)(steps * M_BATCH) / secs : 0;
		for (int j = 0; j <= M_N_TRACK; j++)
			rc->val.mean[j] = NAN;
		rc->val.acc = NAN;
		if (cfg.n_val > 0)
			rc->val = evaluate(1, (long)cfg.n_val);
		print_epoch(e, rc);
		if (cfg.keep_best && rc->val.mean[0] < best_j) {
			best_j = rc->val.mean[0];
			best = e;
			best_p = p;
			best_s = s;
		}
	}
	if (cfg.keep_best && best >= 0) {
		p = best_p;
		s = best_s;
	}
	wr1(0);
	wr1(0);
	wr1(0);
	for (int e = 0; e < epochs; e++) {
		const Rec *rc = &rec[e];
		wr1(rc->lr);
		for (int h = 0; h < 2; h++) {
			const Pass *ps = h ? &rc->val : &rc->train;
			for (int j = 0; j <= M_N_TRACK; j++)
				wr1(ps->mean[j]);
			wr1(ps->acc);
		}
		wr1(rc->rate);
	}
	wr1(cfg.keep_best && best >= 0 ? best : epochs - 1);
	for (int k = 0; k < M_N_PARAMS; k++)
		wrn(m_param(&p, table[k]), sizeof(real) * (size_t)m_param_count(table[k]));
	static unsigned char blob[M_BLOB_BYTES];
	size_t len = m_save(&p, &s, blob, sizeof blob);
	wr1((double)len);
	wrn(blob, len);
	free(order);
	free(rec);
}

int main(int argc, char **argv)
{
	if (argc != 3 || !(fin = fopen(argv[1], "rb")) || !(fout = fopen(argv[2], "wb")))
		fail_io("cannot open its files");
	double *c = (double *)&cfg;
	for (size_t i = 0; i < sizeof cfg / sizeof(double); i++)
		c[i] = rd1();
	long count[2] = {(long)cfg.n_train, (long)cfg.n_val};
	for (int set = 0; set < 2; set++)
		for (int i = 0; i < M_N_IN; i++) {
			size_t bytes = elem(i) * (size_t)m_in_size[i] * (size_t)count[set];
			set_x[set][i] = xmalloc(bytes);
			rdn(set_x[set][i], bytes);
		}
	for (int i = 0; i < M_N_IN; i++)
		batch_x[i] = xmalloc(elem(i) * (size_t)m_in_size[i] * M_BATCH);
	for (int k = 0; k < M_N_PARAMS; k++) { /* the model's own, in the table */
		for (table[k] = 0; table[k] < M_N_TABLE; table[k]++)
			if (!strcmp(m_table_name(table[k]), m_param_name[k]))
				break;
		if (table[k] == M_N_TABLE)
			fail_io("a parameter is not in the table");
	}
	m_init(&p, &s, (uint32_t)cfg.seed);
	for (int k = 0; cfg.init && k < M_N_PARAMS; k++)
		if (rd1() != 0)
			rdn(m_param(&p, table[k]), sizeof(real) * (size_t)m_param_count(table[k]));
	if (!cfg.eval) {
		train();
	} else {
		long n = count[0];
		if (M_LABEL >= 0 && M_PRED_OUT >= 0)
			confusion = xmalloc(sizeof(long) * M_CLASSES * M_CLASSES);
		if (cfg.pred && M_PRED_OUT >= 0)
			pred = xmalloc(sizeof(int32_t) * (size_t)n);
		Pass r = evaluate(0, n);
		wr1(0);
		wr1(0);
		wr1(0);
		for (int j = 0; j <= M_N_TRACK; j++)
			wr1(r.mean[j]);
		wr1(r.acc);
		for (long k = 0; confusion && k < (long)M_CLASSES * M_CLASSES; k++)
			wr1((double)confusion[k]);
		for (long k = 0; pred && k < n; k++)
			wr1(pred[k]);
	}
	if (fclose(fout) != 0)
		return 4;
	return 0;
}
