/* train.c: train the seed network (models/mlp.nn) on real handwritten
 * digits with the C that gradc generated, and save what it learned.
 *
 *   train DIGITS.csv OUTDIR [epochs] [lr] [seed]
 *
 * 1797 8x8 digits, pixel values 0..16 scaled to [0, 1]; a fixed 80/20 split
 * (shuffled with the runtime's PCG32 from 'seed'); one training step per
 * batch of mlp_BATCH samples, reshuffled every epoch.  Writes to OUTDIR:
 *   mlp.blob          parameters, checksummed (mlp_save)
 *   mlp.safetensors   parameters, for `gradc compile --params`
 *   test.safetensors  the test split (x, y) and the predicted class (pred)
 *   curve.svg         objective and accuracy per epoch
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gradc_csv.h"
#include "gradc_rt.h"
#include "gradc_safetensors.h"
#include "mlp.h"

enum { PIXELS = 64, CLASSES = 10, MAX_EPOCHS = 1000 };

typedef struct Split {
	int n;
	float *x;   /* n * PIXELS */
	int32_t *y; /* n */
} Split;

static mlp_params params;
static mlp_state state;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *msg, const char *arg)
{
	fprintf(stderr, "train: %s%s\n", msg, arg ? arg : "");
	exit(1);
}

/* Shuffle 0..n-1 with the runtime's PCG32 (Fisher-Yates). */
static void shuffle(int *idx, int n, gradc_rng *r)
{
	for (int i = n - 1; i > 0; i--) {
		int j = (int)(gradc_rng_u32(r) % (uint32_t)(i + 1));
		int t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
	}
}

static void take(Split *s, const gradc_csv *c, const int *idx, int n)
{
	s->n = n;
	s->x = malloc(sizeof(float) * (size_t)n * PIXELS);
	s->y = malloc(sizeof(int32_t) * (size_t)n);
	for (int i = 0; i < n; i++) {
		const double *row = c->v + (size_t)idx[i] * (size_t)c->cols;
		for (int j = 0; j < PIXELS; j++)
			s->x[i * PIXELS + j] = (float)(row[j] / 16.0);
		s->y[i] = (int32_t)row[PIXELS];
	}
}

/* Predicted classes of a whole split, mlp_BATCH samples per inference
 * (the last batch padded with copies of its first sample). */
static double predict(const mlp_params *p, const Split *s, int32_t *pred)
{
	static float x[mlp_BATCH * PIXELS], o[mlp_BATCH * CLASSES];
	int right = 0;
	for (int at = 0; at < s->n; at += mlp_BATCH) {
		int k = s->n - at < mlp_BATCH ? s->n - at : mlp_BATCH;
		for (int b = 0; b < mlp_BATCH; b++)
			memcpy(x + b * PIXELS, s->x + (size_t)(at + (b < k ? b : 0)) * PIXELS,
			       sizeof(float) * PIXELS);
		mlp_infer(p, x, o, NULL);
		for (int b = 0; b < k; b++) {
			int best = 0;
			for (int c = 1; c < CLASSES; c++)
				if (o[b * CLASSES + c] > o[b * CLASSES + best])
					best = c;
			if (pred)
				pred[at + b] = best;
			right += best == s->y[at + b];
		}
	}
	return (double)right / s->n;
}

typedef struct Epoch {
	double J, L, s, train, test, ms;
} Epoch;

/* One pass over the training split; the batch means of J and its parts. */
static Epoch run_epoch(const Split *tr, int *order, gradc_rng *r)
{
	static float x[mlp_BATCH * PIXELS];
	static int32_t y[mlp_BATCH];
	Epoch e = {0};
	int steps = 0;
	double t0 = now();
	shuffle(order, tr->n, r);
	for (int at = 0; at + mlp_BATCH <= tr->n; at += mlp_BATCH) {
		for (int b = 0; b < mlp_BATCH; b++) {
			memcpy(x + b * PIXELS, tr->x + (size_t)order[at + b] * PIXELS,
			       sizeof(float) * PIXELS);
			y[b] = tr->y[order[at + b]];
		}
		mlp_stats st;
		int status = mlp_train_step(&params, &state, x, y, &st, NULL);
		if (status != GRADC_OK)
			die("training step failed: ", gradc_strerror(status));
		e.J += st.objective, e.L += st.L, e.s += st.s;
		steps++;
	}
	e.ms = 1e3 * (now() - t0);
	e.J /= steps, e.L /= steps, e.s /= steps;
	return e;
}

static void write_svg(const char *path, const Epoch *ep, int n)
{
	FILE *f = fopen(path, "w");
	if (!f)
		die("cannot write ", path);
	double maxj = 0;
	for (int i = 0; i < n; i++)
		maxj = ep[i].J > maxj ? ep[i].J : maxj;
	const int W = 640, H = 360, L = 60, R = 20, T = 30, B = 40;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	           "font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%d\" y=\"18\">mlp on digits: objective J (left axis, red), "
	           "train/test accuracy (0..1, blue/green)</text>\n", L);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
	           "stroke=\"#888\"/>\n", L, T, W - L - R, H - T - B);
	const char *color[3] = {"#c0392b", "#2471a3", "#1e8449"};
	for (int k = 0; k < 3; k++) {
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
		        color[k]);
		for (int i = 0; i < n; i++) {
			double v = k == 0 ? ep[i].J / maxj : k == 1 ? ep[i].train : ep[i].test;
			double px = L + (W - L - R) * (n > 1 ? (double)i / (n - 1) : 0.5);
			double py = T + (H - T - B) * (1 - v);
			fprintf(f, "%.1f,%.1f ", px, py);
		}
		fprintf(f, "\"/>\n");
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\">%.3g</text>\n", 4, T + 4, maxj);
	fprintf(f, "<text x=\"%d\" y=\"%d\">0</text>\n", 40, H - B);
	fprintf(f, "<text x=\"%d\" y=\"%d\">epoch 1 .. %d</text>\n", W / 2 - 30, H - 12, n);
	fprintf(f, "</svg>\n");
	fclose(f);
}

static void save(const char *dir, const Split *te, const int32_t *pred)
{
	char path[4096];
	static unsigned char blob[mlp_BLOB_BYTES];
	size_t n = mlp_save(&params, &state, blob, sizeof blob);
	snprintf(path, sizeof path, "%s/mlp.blob", dir);
	FILE *f = fopen(path, "wb");
	if (!f || n == 0 || fwrite(blob, 1, n, f) != n || fclose(f) != 0)
		die("cannot write ", path);

	gradc_st_tensor t[mlp_N_PARAMS + 3];
	int k = 0;
	for (; k < mlp_N_PARAMS; k++) {
		const mlp_param_info *pi = &mlp_param_table[k];
		t[k] = (gradc_st_tensor){.name = pi->name, .dtype = GRADC_ST_F32, .rank = pi->rank,
		                         .data = (char *)&params + pi->offset,
		                         .nbytes = sizeof(float) * (size_t)pi->count};
		for (int d = 0; d < pi->rank; d++)
			t[k].shape[d] = pi->shape[d];
	}
	snprintf(path, sizeof path, "%s/mlp.safetensors", dir);
	const char *err = gradc_st_write(path, t, k);
	if (err)
		die("", err);
	t[0] = (gradc_st_tensor){.name = "x", .dtype = GRADC_ST_F32, .rank = 2,
	                         .shape = {te->n, PIXELS}, .data = te->x,
	                         .nbytes = sizeof(float) * (size_t)te->n * PIXELS};
	t[1] = (gradc_st_tensor){.name = "y", .dtype = GRADC_ST_I32, .rank = 1, .shape = {te->n},
	                         .data = te->y, .nbytes = sizeof(int32_t) * (size_t)te->n};
	t[2] = (gradc_st_tensor){.name = "pred", .dtype = GRADC_ST_I32, .rank = 1,
	                         .shape = {te->n}, .data = (void *)pred,
	                         .nbytes = sizeof(int32_t) * (size_t)te->n};
	snprintf(path, sizeof path, "%s/test.safetensors", dir);
	if ((err = gradc_st_write(path, t, 3)))
		die("", err);
}

/* The saved blob reloads to the same predictions; a corrupted one is refused. */
static void check_reload(const char *dir, const Split *te, const int32_t *pred)
{
	char path[4096];
	static unsigned char blob[mlp_BLOB_BYTES];
	snprintf(path, sizeof path, "%s/mlp.blob", dir);
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(blob, 1, sizeof blob, f) : 0;
	if (f)
		fclose(f);
	static mlp_params p2;
	static mlp_state s2;
	int status = mlp_load(&p2, &s2, blob, n);
	if (status != GRADC_OK)
		die("reload failed: ", gradc_strerror(status));
	int32_t *pred2 = malloc(sizeof(int32_t) * (size_t)te->n);
	predict(&p2, te, pred2);
	int same = memcmp(pred, pred2, sizeof(int32_t) * (size_t)te->n) == 0;
	blob[n / 2] ^= 0x10;
	static mlp_params p3;
	int refused = mlp_load(&p3, &s2, blob, n) == GRADC_EBLOB;
	printf("saved %s (%zu bytes): reloads to %s predictions; with one bit flipped "
	       "it is %s\n", path, n, same ? "identical" : "DIFFERENT",
	       refused ? "refused (bad checksum)" : "ACCEPTED");
	free(pred2);
	if (!same || !refused)
		exit(1);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		die("usage: train DIGITS.csv OUTDIR [epochs] [lr] [seed]", NULL);
	int epochs = argc > 3 ? atoi(argv[3]) : 20;
	double lr = argc > 4 ? atof(argv[4]) : 0;
	uint32_t seed = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 10) : 1;
	if (epochs < 1 || epochs > MAX_EPOCHS)
		die("epochs must be 1..1000", NULL);

	gradc_csv csv;
	const char *err = gradc_csv_read(argv[1], 0, &csv);
	if (err)
		die("", err);
	if (csv.cols != PIXELS + 1)
		die("expected 65 columns in ", argv[1]);
	int *idx = malloc(sizeof(int) * (size_t)csv.rows);
	for (int i = 0; i < csv.rows; i++)
		idx[i] = i;
	gradc_rng r;
	gradc_rng_seed(&r, seed, 1);
	shuffle(idx, csv.rows, &r);
	int n_train = csv.rows * 4 / 5;
	Split tr, te;
	take(&tr, &csv, idx, n_train);
	take(&te, &csv, idx + n_train, csv.rows - n_train);
	printf("digits: %d train, %d test samples of 8x8 pixels; batch %d, seed %u\n", tr.n,
	       te.n, mlp_BATCH, (unsigned)seed);

	mlp_init(&params, &state, seed);
	if (lr > 0)
		state.lr = (mlp_real)lr;
	printf("training %d epochs with lr %g\n", epochs, (double)state.lr);
	static Epoch ep[MAX_EPOCHS];
	int tty = isatty(1);
	int *order = malloc(sizeof(int) * (size_t)tr.n);
	for (int i = 0; i < tr.n; i++)
		order[i] = i;
	for (int e = 0; e < epochs; e++) {
		ep[e] = run_epoch(&tr, order, &r);
		ep[e].train = predict(&params, &tr, NULL);
		ep[e].test = predict(&params, &te, NULL);
		printf("%sepoch %3d/%d  J %.4f = L %.4f + s %.4f  train %.4f  test %.4f  %6.1f ms%s",
		       tty ? "\r" : "", e + 1, epochs, ep[e].J, ep[e].L, ep[e].s, ep[e].train,
		       ep[e].test, ep[e].ms, tty && e + 1 < epochs ? "" : "\n");
		fflush(stdout);
	}
	int32_t *pred = malloc(sizeof(int32_t) * (size_t)te.n);
	double acc = predict(&params, &te, pred);
	save(argv[2], &te, pred);
	check_reload(argv[2], &te, pred);
	char path[4096];
	snprintf(path, sizeof path, "%s/curve.svg", argv[2]);
	write_svg(path, ep, epochs);
	printf("wrote %s (objective and accuracy per epoch)\n", path);
	printf("training-build test accuracy %.4f\n", acc);
	free(pred);
	free(order);
	free(idx);
	gradc_csv_free(&csv);
	return 0;
}
