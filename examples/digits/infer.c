/* infer.c: the firmware's view.  An inference-only build of the seed
 * network with the trained parameters baked in as const (flash), one sample
 * at a time (`gradc compile --infer-only --params mlp.safetensors --batch 1
 * --name digits`).  The parameters file of `gradc train --standardize`
 * carries the pixels' mean and deviation, baked in too: the firmware takes
 * raw pixel values (0..16), as a sensor gives them.  Checks that it
 * predicts exactly what `gradc eval --pred` predicted, draws a few test
 * digits, and prints the test accuracy.
 *
 *   infer TEST.csv PRED.csv
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits.h"
#include "gradc_csv.h"

enum { PIXELS = 64, CLASSES = 10, SHOW = 6 };

static int classify(const float *x)
{
	float o[CLASSES];
	digits_infer(&digits_baked, x, o, NULL);
	int best = 0;
	for (int c = 1; c < CLASSES; c++)
		if (o[c] > o[best])
			best = c;
	return best;
}

/* Draw digits side by side, 8x8 pixels (0..16) as shades, each with its class. */
static void draw(const gradc_csv *t, const int *pred, const int *which, int n)
{
	static const char shade[] = " .:-=+*#%@";
	for (int i = 0; i < n; i++)
		printf("  true %d pred %d%s", (int)t->v[(size_t)which[i] * (PIXELS + 1) + PIXELS],
		       pred[i], i + 1 < n ? "  " : "\n");
	for (int r = 0; r < 8; r++) {
		for (int i = 0; i < n; i++) {
			printf("  ");
			for (int c = 0; c < 8; c++) {
				double v =
					t->v[(size_t)which[i] * (PIXELS + 1) + (size_t)(r * 8 + c)];
				int k = (int)(v / 16 * 9 + 0.5);
				k = k < 0 ? 0 : k > 9 ? 9 : k;
				putchar(shade[k]);
				putchar(shade[k]);
			}
			printf("%s", i + 1 < n ? "    " : "\n");
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: infer TEST.csv PRED.csv\n");
		return 2;
	}
	gradc_csv t, p;
	const char *err = gradc_csv_read(argv[1], 0, &t);
	if (!err)
		err = gradc_csv_read(argv[2], 1, &p);
	if (err || t.cols != PIXELS + 1 || p.rows != t.rows) {
		fprintf(stderr, "infer: %s\n", err ? err : "unexpected contents");
		return 1;
	}
	int n = t.rows, right = 0, same = 0;
	int shown[SHOW], show_pred[SHOW], n_show = 0;
	for (int i = 0; i < n; i++) {
		float x[PIXELS];
		for (int j = 0; j < PIXELS; j++)
			x[j] = (float)t.v[(size_t)i * (PIXELS + 1) + (size_t)j];
		int c = classify(x);
		right += c == (int)t.v[(size_t)i * (PIXELS + 1) + PIXELS];
		same += c == (int)p.v[i];
		if (n_show < SHOW && i % 37 == 0) {
			shown[n_show] = i;
			show_pred[n_show++] = c;
		}
	}
	printf("inference-only build (parameters const, %d bytes of arena, batch 1, raw pixels "
	       "in):\n",
	       (int)digits_INFER_ARENA_BYTES);
	printf("  predicts the same class as the training build on %d of %d test digits\n", same,
	       n);
	draw(&t, show_pred, shown, n_show);
	gradc_csv_free(&t);
	gradc_csv_free(&p);
	if (same != n) {
		fprintf(stderr, "infer: predictions differ from the training build\n");
		return 1;
	}
	printf("test accuracy: %.4f\n", (double)right / n);
	return 0;
}
