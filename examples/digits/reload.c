/* reload.c: the on-device trainer's view.  A training build of the seed
 * network (`gradc compile --params mlp.safetensors --name mlp`: the pixels'
 * statistics baked in) resumes from the blob `gradc train --blob` saved:
 * mlp_load restores the parameters and the optimizer state, which predict
 * what `gradc eval --pred` predicted; a blob with one bit flipped is
 * refused by its checksum.
 *
 *   reload MLP.blob TEST.csv PRED.csv
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradc_csv.h"
#include "mlp.h"

enum { PIXELS = 64, CLASSES = 10 };

static mlp_params params, other;
static mlp_state state;
static unsigned char blob[mlp_BLOB_BYTES + 1];

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: reload MLP.blob TEST.csv PRED.csv\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	size_t n = f ? fread(blob, 1, sizeof blob, f) : 0;
	if (f)
		fclose(f);
	gradc_csv t, p;
	const char *err = gradc_csv_read(argv[2], 0, &t);
	if (!err)
		err = gradc_csv_read(argv[3], 1, &p);
	if (err || t.cols != PIXELS + 1 || p.rows != t.rows) {
		fprintf(stderr, "reload: %s\n", err ? err : "unexpected contents");
		return 1;
	}
	int status = mlp_load(&params, &state, blob, n);
	if (status != GRADC_OK) {
		fprintf(stderr, "reload: %s: %s\n", argv[1], gradc_strerror(status));
		return 1;
	}
	/* batches of mlp_BATCH, the last one padded with copies of sample 0 */
	static float x[mlp_BATCH * PIXELS], o[mlp_BATCH * CLASSES];
	int same = 0;
	for (int at = 0; at < t.rows; at += mlp_BATCH) {
		for (int b = 0; b < mlp_BATCH; b++)
			for (int j = 0; j < PIXELS; j++)
				x[b * PIXELS + j] =
					(float)t.v[(size_t)(at + b < t.rows ? at + b : 0)
							   * (PIXELS + 1)
						   + (size_t)j];
		mlp_infer(&params, x, o, NULL);
		for (int b = 0; b < mlp_BATCH && at + b < t.rows; b++) {
			int best = 0;
			for (int c = 1; c < CLASSES; c++)
				if (o[b * CLASSES + c] > o[b * CLASSES + best])
					best = c;
			same += best == (int)p.v[at + b];
		}
	}
	blob[n / 2] ^= 0x10;
	int refused = mlp_load(&other, &state, blob, n) == GRADC_EBLOB;
	printf("loaded %s (%zu bytes, step %d): reloads to %s predictions; with one bit flipped "
	       "it is %s\n",
	       argv[1], n, (int)state.step, same == t.rows ? "identical" : "DIFFERENT",
	       refused ? "refused (bad checksum)" : "ACCEPTED");
	int ok = same == t.rows && refused;
	gradc_csv_free(&t);
	gradc_csv_free(&p);
	return ok ? 0 : 1;
}
