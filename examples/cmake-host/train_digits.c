/* train_digits.c: train the seed network (models/mlp.nn) on handwritten digits
 * with the C that gradc_add_model() generated at build time, then ship
 * the learned weights to an inference-only build of the same model.
 *
 *   train_digits [DIGITS.csv] [epochs]
 *
 * The same program is built by examples/cmake-host (for the host) and by
 * examples/cmake-cortex-m4 (for a Cortex-M4F, run under QEMU, which reads
 * the CSV file from the host through semihosting).  Two builds of one
 * model go into it (see CMakeLists.txt):
 *   mlp     training at batch 32 (mlp_train_step);
 *   digits  --infer-only --batch 1, as a firmware would classify.
 * It reads up to DIGITS_MAX samples (the first 80% train, the rest test),
 * trains, saves the parameters alone (mlp_save_params: the blob a product
 * would ship), loads them into the inference build (digits_load_params)
 * and prints "test accuracy: A".  Exit status 1 if anything fails or A is
 * below 0.8.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits.h"
#include "mlp.h"

#ifndef DIGITS_CSV
#define DIGITS_CSV "digits.csv"
#endif
#ifndef DIGITS_MAX
#define DIGITS_MAX 1797
#endif
#ifndef DIGITS_EPOCHS
#define DIGITS_EPOCHS 20
#endif

enum { PIXELS = 64 };

static unsigned char px[DIGITS_MAX][PIXELS]; /* 0..16 */
static unsigned char label[DIGITS_MAX];
static int order[DIGITS_MAX];
static mlp_params params;
static mlp_state state;
static digits_params shipped;
static unsigned char blob[mlp_PARAMS_BLOB_BYTES];

/* Read up to DIGITS_MAX rows "p0,...,p63,label"; returns the count. */
static int read_csv(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0;
	if (!f) {
		printf("cannot open %s\n", path);
		return 0;
	}
	while (n < DIGITS_MAX && fgets(line, sizeof line, f)) {
		char *p = line;
		int v[PIXELS + 1], k = 0;
		while (k <= PIXELS) {
			char *end;
			long x = strtol(p, &end, 10);
			if (end == p || x < 0 || x > 16)
				break;
			v[k++] = (int)x;
			p = *end == ',' ? end + 1 : end;
		}
		if (k != PIXELS + 1 || v[PIXELS] > 9)
			continue; /* a header or a bad row */
		for (int j = 0; j < PIXELS; j++)
			px[n][j] = (unsigned char)v[j];
		label[n++] = (unsigned char)v[PIXELS];
	}
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
#ifdef DIGITS_DEVICE
	/* under QEMU the command line is the -kernel path: no arguments */
	(void)argc;
	(void)argv;
	const char *path = DIGITS_CSV;
	int epochs = DIGITS_EPOCHS;
#else
	const char *path = argc > 1 ? argv[1] : DIGITS_CSV;
	int epochs = argc > 2 ? atoi(argv[2]) : DIGITS_EPOCHS;
#endif
	int n = read_csv(path);
	int n_train = n * 4 / 5;
	if (n_train < mlp_BATCH || n - n_train < 1) {
		printf("too few samples in %s (%d)\n", path, n);
		return 1;
	}
	printf("%d digits from %s: %d to train, %d to test\n", n, path, n_train, n - n_train);

	/* training: the batch-32 build */
	static float x[mlp_BATCH * mlp_X_SIZE];
	static int32_t y[mlp_BATCH];
	gradc_rng rng;
	gradc_rng_seed(&rng, 1, 0);
	mlp_init(&params, &state, 1);
	for (int i = 0; i < n_train; i++)
		order[i] = i;
	for (int e = 1; e <= epochs; e++) {
		for (int i = n_train - 1; i > 0; i--) { /* reshuffle */
			int j = (int)(gradc_rng_u32(&rng) % (uint32_t)(i + 1));
			int t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		double sum = 0;
		int steps = 0;
		for (int at = 0; at + mlp_BATCH <= n_train; at += mlp_BATCH) {
			for (int b = 0; b < mlp_BATCH; b++) {
				int s = order[at + b];
				for (int j = 0; j < PIXELS; j++)
					x[b * PIXELS + j] = (float)px[s][j] / 16.0f;
				y[b] = label[s];
			}
			mlp_stats st;
			int status = mlp_train_step(&params, &state, x, y, &st, NULL);
			if (status != GRADC_OK) {
				printf("training step: %s\n", gradc_strerror(status));
				return 1;
			}
			sum += (double)st.objective;
			steps++;
		}
		printf("epoch %2d  objective %.4f\n", e, sum / steps);
	}

	/* ship the weights: parameters alone, into the inference-only build */
	size_t bytes = mlp_save_params(&params, blob, sizeof blob);
	int status = digits_load_params(&shipped, blob, bytes);
	if (bytes == 0 || status != GRADC_OK) {
		char why[120];
		printf("cannot ship the weights: %s\n",
		       gradc_blob_why(status, blob, bytes, why, sizeof why));
		return 1;
	}
	printf("mlp_save_params: %u bytes, loaded by digits_load_params\n", (unsigned)bytes);

	/* test: one sample at a time, as a device classifies */
	int right = 0;
	for (int i = n_train; i < n; i++) {
		float in[digits_X_SIZE], o[digits_O_SIZE];
		for (int j = 0; j < PIXELS; j++)
			in[j] = (float)px[i][j] / 16.0f;
		if (digits_infer(&shipped, in, o, NULL) != GRADC_OK)
			return 1;
		int best = 0;
		for (int c = 1; c < digits_O_SIZE; c++)
			best = o[c] > o[best] ? c : best;
		right += best == label[i];
	}
	double acc = (double)right / (n - n_train);
	printf("test accuracy: %.4f\n", acc);
	return acc >= 0.8 ? 0 : 1;
}
