/* infer_int8.c: the int8 firmware build beside the float one.  Both
 * inference-only builds of the same trained model, parameters baked in,
 * one sample at a time: the float build (`--name digits`) and the int8
 * build (`--quantize int8 --calib ... --name digits8`).  Prints how often
 * they predict the same class, their accuracies and their arenas; the
 * last line is "int8 test accuracy: A".
 *
 *   infer_int8 TEST.csv
 */
#include <stdio.h>

#include "digits.h"
#include "digits8.h"
#include "gradc_csv.h"

enum { PIXELS = 64, CLASSES = 10 };

static int argmax(const float *o)
{
	int best = 0;
	for (int c = 1; c < CLASSES; c++)
		if (o[c] > o[best])
			best = c;
	return best;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: infer_int8 TEST.csv\n");
		return 2;
	}
	gradc_csv t;
	const char *err = gradc_csv_read(argv[1], 0, &t);
	if (err || t.cols != PIXELS + 1) {
		fprintf(stderr, "infer_int8: %s\n", err ? err : "unexpected contents");
		return 1;
	}
	int n = t.rows, right = 0, right8 = 0, same = 0;
	for (int i = 0; i < n; i++) {
		float x[PIXELS], o[CLASSES], o8[CLASSES];
		for (int j = 0; j < PIXELS; j++)
			x[j] = (float)t.v[(size_t)i * (PIXELS + 1) + (size_t)j];
		int y = (int)t.v[(size_t)i * (PIXELS + 1) + PIXELS];
		if (digits_infer(&digits_baked, x, o, NULL) || digits8_infer(&digits8_baked, x, o8, NULL)) {
			fprintf(stderr, "infer_int8: inference failed\n");
			return 1;
		}
		right += argmax(o) == y;
		right8 += argmax(o8) == y;
		same += argmax(o) == argmax(o8);
	}
	gradc_csv_free(&t);
	printf("int8 build (int8 weights and activations, %d bytes of arena; float: %d):\n",
	       (int)digits8_INFER_ARENA_BYTES, (int)digits_INFER_ARENA_BYTES);
	printf("  predicts the same class as the float build on %d of %d test digits\n", same, n);
	printf("  float test accuracy: %.4f\n", (double)right / n);
	printf("int8 test accuracy: %.4f\n", (double)right8 / n);
	return 0;
}
