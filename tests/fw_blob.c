/* fw_blob.c: blobs and arenas across builds (tests/t_firmware.sh).
 *
 * Linked with four builds: mlp (training), digits (mlp.nn --infer-only
 * --batch 1 --name digits), iris (training) and na (iris.nn --infer-only,
 * compiled with -Dna_NO_STATIC_ARENA).  Prints what it checked; exit 1 on
 * the first failure.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "digits.h"
#include "iris.h"
#include "mlp.h"
#include "na.h"

#define CHECK(c)                                                                  \
	do {                                                                      \
		if (!(c)) {                                                       \
			fprintf(stderr, "fw_blob: %s:%d: %s\n", __FILE__, __LINE__, #c); \
			return 1;                                                 \
		}                                                                 \
	} while (0)

static mlp_params p, p2;
static mlp_state s, s2;
static digits_params q;
static unsigned char full[mlp_BLOB_BYTES], pb[mlp_PARAMS_BLOB_BYTES];
static unsigned char other[iris_BLOB_BYTES];
static float x[mlp_BATCH * mlp_X_SIZE], o[mlp_BATCH * mlp_O_SIZE];
static int32_t y[mlp_BATCH];

int main(void)
{
	char why[160];
	/* a trained model with optimizer state */
	mlp_init(&p, &s, 7);
	for (int i = 0; i < mlp_BATCH * mlp_X_SIZE; i++)
		x[i] = (float)(i % 17) / 17.0f;
	for (int i = 0; i < mlp_BATCH; i++)
		y[i] = i % 10;
	CHECK(mlp_train_step(&p, &s, x, y, NULL, NULL) == GRADC_OK);
	size_t nf = mlp_save(&p, &s, full, sizeof full);
	size_t np = mlp_save_params(&p, pb, sizeof pb);
	CHECK(nf == mlp_BLOB_BYTES && np == mlp_PARAMS_BLOB_BYTES);
	CHECK(mlp_save_params(&p, pb, sizeof pb - 1) == 0);

	/* the inference-only build of another name and batch loads either kind */
	CHECK(digits_load_params(&q, pb, np) == GRADC_OK);
	CHECK(memcmp(&q, &p, sizeof q) == 0);
	memset(&q, 0, sizeof q);
	CHECK(digits_load_params(&q, full, nf) == GRADC_OK);
	CHECK(memcmp(&q, &p, sizeof q) == 0);
	float o1[digits_O_SIZE];
	CHECK(mlp_infer(&p, x, o, NULL) == GRADC_OK);
	CHECK(digits_infer(&q, x, o1, NULL) == GRADC_OK);
	/* batch 1 and batch 32 sum in other orders: equal up to reassociation */
	for (int i = 0; i < digits_O_SIZE; i++)
		CHECK(fabsf(o[i] - o1[i]) <= 1e-5f * (1.0f + fabsf(o[i])));
	printf("digits (--infer-only) loads mlp_save_params and mlp_save blobs: same outputs\n");

	/* parameters alone are not a whole blob; the training build loads them */
	CHECK(mlp_load(&p2, &s2, pb, np) == GRADC_ELAYOUT);
	CHECK(mlp_load_params(&p2, pb, np) == GRADC_OK && memcmp(&p2, &p, sizeof p) == 0);
	CHECK(mlp_load(&p2, &s2, full, nf) == GRADC_OK && s2.step == 1);

	/* another model's blob */
	static iris_params ip;
	static iris_state is;
	iris_init(&ip, &is, 1);
	size_t ni = iris_save(&ip, &is, other, sizeof other);
	CHECK(ni == iris_BLOB_BYTES);
	int st = mlp_load(&p2, &s2, other, ni);
	CHECK(st == GRADC_ELAYOUT);
	gradc_blob_why(st, other, ni, why, sizeof why);
	printf("mlp_load of an iris blob: %s\n", why);
	CHECK(strstr(why, "blob made for model 'iris' / layout hash 0x"));
	st = digits_load_params(&q, other, ni);
	CHECK(st == GRADC_ELAYOUT);

	/* a corrupt one */
	full[nf / 2] ^= 0x10;
	st = mlp_load(&p2, &s2, full, nf);
	CHECK(st == GRADC_EBLOB);
	gradc_blob_why(st, full, nf, why, sizeof why);
	printf("mlp_load of a corrupt blob: %s\n", why);
	CHECK(!strcmp(why, "corrupt blob (bad checksum)"));
	CHECK(mlp_load(&p2, &s2, full, nf - 1) == GRADC_EBLOB);

	/* no static arena: NULL is refused, a caller's arena works */
	static float nx[na_BATCH * na_X_SIZE], np_[na_BATCH * na_P_SIZE], no[na_BATCH * na_O_SIZE];
	static union {
		double align;
		unsigned char b[na_INFER_ARENA_BYTES];
	} arena;
	static na_params nap;
	CHECK(na_load_params(&nap, other, ni) == GRADC_OK); /* iris's, by its model name */
	CHECK(memcmp(&nap, &ip, sizeof nap) == 0);
	CHECK(na_infer(&nap, nx, np_, no, NULL) == GRADC_ENOARENA);
	CHECK(na_infer(&nap, nx, np_, no, arena.b) == GRADC_OK);
	printf("na (no static arena): NULL -> %s; own arena -> ok\n",
	       gradc_strerror(GRADC_ENOARENA));
	return 0;
}
