/* infer.c: the firmware's view.  An inference-only build of the seed
 * network with the trained parameters baked in as const (flash), one sample
 * at a time (`gradc compile --infer-only --params mlp.safetensors --batch 1
 * --name digits`).  Checks it predicts exactly what the training build
 * predicted, draws a few test digits, and prints the test accuracy.
 *
 *   infer TEST.safetensors
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits.h"
#include "gradc_safetensors.h"

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

/* Draw digits side by side, 8x8 pixels as shades, each with its class. */
static void draw(const float *x, const int32_t *y, const int *pred, const int *which, int n)
{
	static const char shade[] = " .:-=+*#%@";
	for (int i = 0; i < n; i++)
		printf("  true %d pred %d%s", y[which[i]], pred[i], i + 1 < n ? "  " : "\n");
	for (int r = 0; r < 8; r++) {
		for (int i = 0; i < n; i++) {
			printf("  ");
			for (int c = 0; c < 8; c++) {
				float v = x[(size_t)which[i] * PIXELS + (size_t)(r * 8 + c)];
				int k = (int)(v * 9.0f + 0.5f);
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
	if (argc < 2) {
		fprintf(stderr, "usage: infer TEST.safetensors\n");
		return 2;
	}
	gradc_st_file f;
	const char *err = gradc_st_read(argv[1], &f);
	const gradc_st_tensor *tx = err ? NULL : gradc_st_find(&f, "x");
	const gradc_st_tensor *ty = err ? NULL : gradc_st_find(&f, "y");
	const gradc_st_tensor *tp = err ? NULL : gradc_st_find(&f, "pred");
	if (err || !tx || !ty || !tp || tx->dtype != GRADC_ST_F32 || tx->shape[1] != PIXELS) {
		fprintf(stderr, "infer: %s: %s\n", argv[1], err ? err : "unexpected contents");
		return 1;
	}
	int n = (int)tx->shape[0], right = 0, same = 0;
	const float *x = tx->data;
	const int32_t *y = ty->data, *pred = tp->data;
	int shown[SHOW], show_pred[SHOW], n_show = 0;
	for (int i = 0; i < n; i++) {
		int c = classify(x + (size_t)i * PIXELS);
		right += c == y[i];
		same += c == pred[i];
		if (n_show < SHOW && i % 37 == 0) {
			shown[n_show] = i;
			show_pred[n_show++] = c;
		}
	}
	printf("inference-only build (parameters const, %d bytes of arena, batch 1):\n",
	       (int)digits_INFER_ARENA_BYTES);
	printf("  predicts the same class as the training build on %d of %d test digits\n",
	       same, n);
	draw(x, y, show_pred, shown, n_show);
	gradc_st_free(&f);
	if (same != n) {
		fprintf(stderr, "infer: predictions differ from the training build\n");
		return 1;
	}
	printf("test accuracy: %.4f\n", (double)right / n);
	return 0;
}
