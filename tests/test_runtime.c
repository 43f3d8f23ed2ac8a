/* test_runtime.c: the runtime (runtime/gradc_rt.c): RNG known answers and
 * statistics, libm-free math against libm, CRC-32/FNV-1a known answers,
 * blobs and every corruption.  The host helpers' files (safetensors, CSV):
 * test_host_io.c.  */
#include <float.h>
#include <math.h>
#include <stdio.h>

#include "gradc_rt.h"
#include "testutil.h"

/* ------------------------------------------------------------ rng */

/* pcg32-demo of pcg-c-basic, seed 42, stream 54: its published output */
START_TEST(rng_known_answer)
{
	static const uint32_t want[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
					 0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
	gradc_rng r;
	gradc_rng_seed(&r, 42, 54);
	for (int i = 0; i < 6; i++)
		ck_assert_uint_eq(gradc_rng_u32(&r), want[i]);
}
END_TEST

/* The same generator written from its definition, with a rotate-left:
 * state' = state * 6364136223846793005 + (2 stream + 1); output
 * rotr32(((s >> 18) ^ s) >> 27, s >> 59) of the old state.  */
START_TEST(rng_matches_definition)
{
	uint64_t inc = 2 * 12345u + 1, s = inc;  /* the first step from state 0 */
	s += 987654321u;
	s = s * 6364136223846793005ull + inc;
	gradc_rng r;
	gradc_rng_seed(&r, 987654321u, 12345u);
	for (int i = 0; i < 1000; i++) {
		uint32_t x = (uint32_t)(((s >> 18) ^ s) >> 27);
		unsigned rot = (unsigned)(s >> 59);
		uint32_t want = rot ? (x << (32 - rot)) | (x >> rot) : x;
		s = s * 6364136223846793005ull + inc;
		ck_assert_uint_eq(gradc_rng_u32(&r), want);
	}
}
END_TEST

START_TEST(rng_streams_differ)
{
	gradc_rng a, b, c;
	gradc_rng_seed(&a, 7, 0);
	gradc_rng_seed(&b, 7, 1);
	gradc_rng_seed(&c, 7, 0);
	int same = 0;
	for (int i = 0; i < 100; i++) {
		uint32_t x = gradc_rng_u32(&a), y = gradc_rng_u32(&b);
		same += x == y;
		ck_assert_uint_eq(x, gradc_rng_u32(&c));
	}
	ck_assert_int_lt(same, 2);
}
END_TEST

START_TEST(rng_uniform_is_53_bits_of_two_draws)
{
	gradc_rng r, copy;
	gradc_rng_seed(&r, 3, 9);
	for (int i = 0; i < 1000; i++) {
		copy = r;
		uint32_t a = gradc_rng_u32(&copy) >> 5, b = gradc_rng_u32(&copy) >> 6;
		double want = ldexp((double)a, 26 - 53) + ldexp((double)b, -53);
		double u = gradc_rng_uniform(&r);
		ck_assert(u == want && u >= 0 && u < 1);
		ck_assert(r.state == copy.state);
	}
}
END_TEST

static void moments(const double *v, int n, double *mean, double *sd)
{
	double s = 0, ss = 0;
	for (int i = 0; i < n; i++)
		s += v[i];
	*mean = s / n;
	for (int i = 0; i < n; i++)
		ss += (v[i] - *mean) * (v[i] - *mean);
	*sd = sqrt(ss / (n - 1));
}

enum { N_DRAW = 100000 };
static double draws[N_DRAW];

/* tolerances are about 5 standard errors for 1e5 draws */
START_TEST(rng_uniform_statistics)
{
	gradc_rng r;
	gradc_rng_seed(&r, 1, 2);
	gradc_uniform_f64(draws, N_DRAW, -2.0, 3.0, &r);
	double mean, sd, lo = 1e9, hi = -1e9;
	for (int i = 0; i < N_DRAW; i++) {
		lo = fmin(lo, draws[i]);
		hi = fmax(hi, draws[i]);
	}
	moments(draws, N_DRAW, &mean, &sd);
	ck_assert(lo >= -2.0 && hi < 3.0);
	ck_assert_double_eq_tol(mean, 0.5, 0.025);
	ck_assert_double_eq_tol(sd, 5.0 / sqrt(12.0), 0.01);
}
END_TEST

START_TEST(rng_normal_statistics)
{
	gradc_rng r;
	gradc_rng_seed(&r, 5, 0);
	gradc_normal_f64(draws, N_DRAW, 1.5, 2.0, &r);
	double mean, sd;
	moments(draws, N_DRAW, &mean, &sd);
	ck_assert_double_eq_tol(mean, 1.5, 0.032);
	ck_assert_double_eq_tol(sd, 2.0, 0.025);
	int within = 0;
	for (int i = 0; i < N_DRAW; i++)
		within += fabs(draws[i] - 1.5) < 2.0;
	ck_assert_double_eq_tol((double)within / N_DRAW, 0.682689, 0.008);
}
END_TEST

/* Box-Muller with libm agrees with the runtime's own functions, and the
 * first values are pinned: they define every normal/he initialization, so
 * a change here must be deliberate (and bit-identical across platforms).  */
START_TEST(rng_normal_definition)
{
	static const uint64_t golden[4] = {
		0xbff5ac2bc429556dull,  /* -1.3545339262539884 */
		0xbfd97741178a9eb5ull,  /* -0.39790370272610726 */
		0xbfe477efbbc703aaull,  /* -0.63964068103097316 */
		0xbfeb7b0e56289d64ull,  /* -0.85877148464070929 */
	};
	gradc_rng r, copy;
	gradc_rng_seed(&r, 0, 0);
	for (int i = 0; i < 1000; i++) {
		copy = r;
		double u1 = 1.0 - gradc_rng_uniform(&copy), u2 = gradc_rng_uniform(&copy);
		double want = sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
		double z = gradc_rng_normal(&r);
		ck_assert_double_eq_tol(z, want, 1e-14 * fmax(1.0, fabs(want)));
		if (i < 4) {
			uint64_t bits;
			memcpy(&bits, &z, sizeof bits);
			ck_assert_uint_eq(bits, golden[i]);
		}
	}
}
END_TEST

START_TEST(initializers_f32_round_f64)
{
	enum { N = 1000 };
	float f[N];
	double d[N];
	gradc_rng r1, r2;
	gradc_rng_seed(&r1, 11, 4);
	gradc_rng_seed(&r2, 11, 4);
	gradc_uniform_f32(f, N, -0.25, 0.75, &r1);
	gradc_uniform_f64(d, N, -0.25, 0.75, &r2);
	for (int i = 0; i < N; i++)
		ck_assert(f[i] == (float)d[i]);
	gradc_normal_f32(f, N, 0.0, 0.1, &r1);
	gradc_normal_f64(d, N, 0.0, 0.1, &r2);
	for (int i = 0; i < N; i++)
		ck_assert(f[i] == (float)d[i]);
	gradc_fill_f32(f, N, 0.1);
	gradc_fill_f64(d, N, 0.1);
	for (int i = 0; i < N; i++)
		ck_assert(f[i] == 0.1f && d[i] == 0.1);
	gradc_fill_f32(f, 0, 1.0);  /* n = 0 writes nothing */
	ck_assert(f[0] == 0.1f);
}
END_TEST

/* ------------------------------------------------------------ math */

/* |got - want| in units of the last place of 'want' (a double). */
static double ulps(double got, double want)
{
	if (got == want)
		return 0;
	if (isnan(got) || isinf(got) || isinf(want))
		return INFINITY;
	double ulp = nextafter(fabs(want), INFINITY) - fabs(want);
	return fabs(got - want) / ulp;
}

/* ... of the float nearest to 'want', which is computed in double */
static double ulpsf(float got, double want)
{
	float w = (float)want;
	if (isinf(w) || isnan(w))
		return got == w || (isnan(got) && isnan(w)) ? 0 : INFINITY;
	double ulp = fabs(want) < FLT_MIN ? 0x1p-149 : nextafterf(fabsf(w), INFINITY) - fabsf(w);
	return fabs((double)got - want) / ulp;
}

typedef double (*Fn64)(double);

/* The largest error of 'f' against 'ref' on n + 1 points spread evenly
 * over [lo, hi].  */
static double sweep64(Fn64 f, Fn64 ref, double lo, double hi, int n)
{
	double worst = 0;
	for (int i = 0; i <= n; i++) {
		double x = lo + (hi - lo) * i / n;
		worst = fmax(worst, ulps(f(x), ref(x)));
	}
	return worst;
}

/* Measured (x86-64 glibc 2.36): exp, log, sqrt, cos 1 ulp; tanh 3 ulp. */
START_TEST(math_double_accuracy)
{
	ck_assert_double_le(sweep64(gradc_exp, exp, -745.0, 709.78, 200000), 2);
	ck_assert_double_le(sweep64(gradc_exp, exp, -1.0, 1.0, 100000), 2);
	ck_assert_double_le(sweep64(gradc_log, log, 1e-310, 1e-300, 10000), 2);
	ck_assert_double_le(sweep64(gradc_log, log, 1e-300, 4.0, 200000), 2);
	ck_assert_double_le(sweep64(gradc_log, log, 0.5, 2.0, 200000), 2);
	ck_assert_double_le(sweep64(gradc_log, log, 1.0, 1e308, 200000), 2);
	ck_assert_double_le(sweep64(gradc_tanh, tanh, -23.0, 23.0, 200000), 4);
	ck_assert_double_le(sweep64(gradc_tanh, tanh, -1e-3, 1e-3, 100000), 4);
	ck_assert_double_le(sweep64(gradc_sqrt, sqrt, 0.0, 1e6, 200000), 2);
	ck_assert_double_le(sweep64(gradc_sqrt, sqrt, 0.0, 1e-300, 10000), 2);
	ck_assert_double_le(sweep64(gradc_sqrt, sqrt, 1e300, 1e308, 10000), 2);
	ck_assert_double_le(sweep64(gradc_cos, cos, 0.0, 6.3, 200000), 2);
	ck_assert_double_le(sweep64(gradc_cos, cos, -100.0, 100.0, 200000), 2);
}
END_TEST

/* Every 997th float bit pattern (all signs, exponents, subnormals).
 * Measured: expf 0.94, logf 0.89, sqrtf 0.75, tanhf 2.4 ulp.  The
 * branch-free gradc_expf_inline gives gradc_expf's bits, NaNs included
 * (this file builds in ISO C mode: no contraction).  */
START_TEST(math_float_accuracy)
{
	double e_exp = 0, e_log = 0, e_tanh = 0, e_sqrt = 0;
	long inline_differs = 0;
	for (uint64_t u = 0; u < 0x100000000ull; u += 997) {
		uint32_t bits = (uint32_t)u;
		float x;
		memcpy(&x, &bits, sizeof x);
		float a = gradc_expf_inline(x), b = gradc_expf(x);
		inline_differs += memcmp(&a, &b, sizeof a) != 0;
		if (isnan(x))
			continue;
		double xd = x;
		if (x >= -104.0f && x <= 88.7f)
			e_exp = fmax(e_exp, ulpsf(gradc_expf(x), exp(xd)));
		if (x > 0) {
			e_log = fmax(e_log, ulpsf(gradc_logf(x), log(xd)));
			e_sqrt = fmax(e_sqrt, ulpsf(gradc_sqrtf(x), sqrt(xd)));
		}
		e_tanh = fmax(e_tanh, ulpsf(gradc_tanhf(x), tanh(xd)));
	}
	ck_assert_double_le(e_exp, 1.0);
	ck_assert_double_le(e_log, 1.0);
	ck_assert_double_le(e_sqrt, 1.0);
	ck_assert_double_le(e_tanh, 3.0);
	ck_assert_int_eq(inline_differs, 0);
}
END_TEST

START_TEST(math_special_values)
{
	ck_assert(gradc_exp(0.0) == 1.0 && gradc_expf(0.0f) == 1.0f);
	ck_assert(gradc_exp(-INFINITY) == 0.0 && gradc_expf(-INFINITY) == 0.0f);
	ck_assert(gradc_exp(INFINITY) == INFINITY && gradc_expf(INFINITY) == INFINITY);
	ck_assert(gradc_exp(710.0) == INFINITY && gradc_expf(89.0f) == INFINITY);
	ck_assert(gradc_exp(-746.0) == 0.0 && gradc_expf(-105.0f) == 0.0f);
	ck_assert(gradc_exp(-745.0) > 0.0 && gradc_expf(-103.0f) > 0.0f);  /* subnormal */
	ck_assert(gradc_log(1.0) == 0.0 && gradc_logf(1.0f) == 0.0f);
	ck_assert(gradc_log(0.0) == -INFINITY && gradc_logf(0.0f) == -INFINITY);
	ck_assert(gradc_log(INFINITY) == INFINITY && gradc_logf(INFINITY) == INFINITY);
	ck_assert(isnan(gradc_log(-1.0)) && isnan(gradc_logf(-1.0f)));
	ck_assert(gradc_log(0x1p-1074) == log(0x1p-1074));
	ck_assert(gradc_tanh(INFINITY) == 1.0 && gradc_tanhf(-INFINITY) == -1.0f);
	ck_assert(gradc_tanh(-0.0) == 0.0 && signbit(gradc_tanh(-0.0)));
	ck_assert(gradc_sqrt(0.0) == 0.0 && gradc_sqrtf(0.0f) == 0.0f);
	ck_assert(gradc_sqrt(4.0) == 2.0 && gradc_sqrtf(4.0f) == 2.0f);
	ck_assert(gradc_sqrt(INFINITY) == INFINITY && gradc_sqrtf(INFINITY) == INFINITY);
	ck_assert(isnan(gradc_sqrt(-1.0)) && isnan(gradc_sqrtf(-1.0f)));
	ck_assert(isnan(gradc_exp(NAN)) && isnan(gradc_logf(NAN)) && isnan(gradc_tanh(NAN)));
	ck_assert(isnan(gradc_sqrtf(NAN)) && isnan(gradc_cos(NAN)));
	ck_assert(gradc_cos(0.0) == 1.0);
}
END_TEST

START_TEST(math_macros_and_isfinite)
{
	/* this build has libm: the macros are libm's functions (but expf) */
	volatile float xf = 0.7f;
	volatile double xd = 0.7;
#ifdef GRADC_EXPF_INLINE  /* where GCC vectorizes: the runtime's branch-free expf */
	ck_assert(GRADC_EXPF(xf) == gradc_expf(xf) && GRADC_LOGF(xf) == logf(xf));
#else
	ck_assert(GRADC_EXPF(xf) == expf(xf) && GRADC_LOGF(xf) == logf(xf));
#endif
	ck_assert(GRADC_TANHF(xf) == tanhf(xf) && GRADC_SQRTF(xf) == sqrtf(xf));
	ck_assert(GRADC_EXP(xd) == exp(xd) && GRADC_LOG(xd) == log(xd));
	ck_assert(GRADC_TANH(xd) == tanh(xd) && GRADC_SQRT(xd) == sqrt(xd));
	volatile double inf = INFINITY, nan = NAN, one = 1.0;
	ck_assert(GRADC_ISFINITE(one) && GRADC_ISFINITE(-DBL_MAX) && GRADC_ISFINITE(0x1p-1074));
	ck_assert(!GRADC_ISFINITE(inf) && !GRADC_ISFINITE(-inf) && !GRADC_ISFINITE(nan));
	volatile float inff = INFINITY;
	ck_assert(!GRADC_ISFINITE(inff) && GRADC_ISFINITE(xf));
}
END_TEST

START_TEST(status_strings)
{
	ck_assert_str_eq(gradc_strerror(GRADC_OK), "ok");
	ck_assert_str_eq(gradc_strerror(GRADC_EBADLABEL), "class label out of range");
	ck_assert_str_eq(gradc_strerror(GRADC_ENONFINITE), "non-finite objective");
	ck_assert_ptr_nonnull(strstr(gradc_strerror(GRADC_EBLOB), "blob"));
	ck_assert_str_eq(gradc_strerror(99), "unknown status");
	ck_assert_str_eq(gradc_strerror(-1), "unknown status");
}
END_TEST

/* ------------------------------------------------------------ checksums, blobs */

/* CRC-32 bit by bit, from the definition */
static uint32_t crc32_bitwise(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
	}
	return ~c;
}

START_TEST(crc32_known_answers)
{
	ck_assert_uint_eq(gradc_crc32(0, "123456789", 9), 0xcbf43926u);
	ck_assert_uint_eq(gradc_crc32(0, "", 0), 0);
	ck_assert_uint_eq(gradc_crc32(gradc_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
	unsigned char buf[1000];
	gradc_rng r;
	gradc_rng_seed(&r, 1, 1);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)gradc_rng_u32(&r);
	for (size_t n = 0; n <= sizeof buf; n += 37)
		ck_assert_uint_eq(gradc_crc32(0, buf, n), crc32_bitwise(buf, n));
}
END_TEST

START_TEST(fnv1a_known_answers)
{
	ck_assert_uint_eq(gradc_fnv1a(""), 0x811c9dc5u);
	ck_assert_uint_eq(gradc_fnv1a("a"), 0xe40c292cu);
	ck_assert_uint_eq(gradc_fnv1a("foobar"), 0xbf9cf968u);
}
END_TEST

/* Three parts, like a parameter struct and optimizer state. */
typedef struct Parts {
	float w[7];
	double m[3];
	int32_t step;
} Parts;

static void parts_fill(Parts *p, int seed)
{
	for (int i = 0; i < 7; i++)
		p->w[i] = (float)(seed + i) * 0.5f;
	for (int i = 0; i < 3; i++)
		p->m[i] = seed - i * 0.25;
	p->step = seed * 3;
}

static void parts_list(Parts *p, void **ptr, size_t *size)
{
	ptr[0] = p->w;
	ptr[1] = p->m;
	ptr[2] = &p->step;
	size[0] = sizeof p->w;
	size[1] = sizeof p->m;
	size[2] = sizeof p->step;
}

enum { HASH = 0x1234abcdu, PHASH = 0x5678ef01u };
/* the whole layout, and the parameters alone (w) */
static const gradc_blob_layout LAY = {"toy", HASH, PHASH, sizeof(float) * 7};
static const gradc_blob_layout PLAY = {"toy", PHASH, PHASH, sizeof(float) * 7};
static unsigned char blob[256];
static size_t blob_n;

static void make_blob(void)
{
	Parts src;
	void *ptr[3];
	size_t size[3];
	parts_fill(&src, 5);
	parts_list(&src, ptr, size);
	blob_n = gradc_blob_write(blob, sizeof blob, &LAY, (const void *const *)ptr, size, 3);
	ck_assert_uint_eq(blob_n, GRADC_BLOB_HEADER_BYTES + 7 * 4 + 3 * 8 + 4);
	ck_assert_uint_eq(blob_n, gradc_blob_size(size, 3));
}

/* Read buf[0..n) of layout 'lay' into the first k parts filled with 0xAB
 * bytes; the parts must be left untouched unless it returns GRADC_OK.  */
static int read_parts(const void *buf, size_t n, const gradc_blob_layout *lay, int k, Parts *dst)
{
	void *ptr[3];
	size_t size[3];
	memset(dst, 0xab, sizeof *dst);
	parts_list(dst, ptr, size);
	int rc = gradc_blob_read(buf, n, lay, (void *const *)ptr, size, k);
	if (rc != GRADC_OK) {
		Parts sentinel;
		memset(&sentinel, 0xab, sizeof sentinel);
		ck_assert_mem_eq(dst, &sentinel, sizeof sentinel);
	}
	return rc;
}

static int read_into_sentinel(const void *buf, size_t n, const gradc_blob_layout *lay, Parts *dst)
{
	return read_parts(buf, n, lay, 3, dst);
}

START_TEST(blob_round_trip)
{
	make_blob();
	Parts dst, want;
	parts_fill(&want, 5);
	ck_assert_int_eq(read_into_sentinel(blob, blob_n, &LAY, &dst), GRADC_OK);
	ck_assert_mem_eq(dst.w, want.w, sizeof want.w);
	ck_assert_mem_eq(dst.m, want.m, sizeof want.m);
	ck_assert_int_eq(dst.step, want.step);
	ck_assert_mem_eq(blob, "GRDC\2\0\0\0", 8);
	ck_assert_mem_eq(blob + 32, "toy\0", 4);
	/* bytes after the blob are ignored */
	ck_assert_int_eq(read_into_sentinel(blob, sizeof blob, &LAY, &dst), GRADC_OK);
}
END_TEST

START_TEST(blob_write_too_small)
{
	Parts src;
	void *ptr[3];
	size_t size[3];
	unsigned char buf[160];
	parts_fill(&src, 1);
	parts_list(&src, ptr, size);
	size_t need = gradc_blob_size(size, 3);
	memset(buf, 0x5a, sizeof buf);
	ck_assert_uint_eq(gradc_blob_write(buf, need - 1, &LAY, (const void *const *)ptr, size, 3), 0);
	for (size_t i = 0; i < sizeof buf; i++)
		ck_assert_uint_eq(buf[i], 0x5a);
	ck_assert_uint_eq(gradc_blob_write(buf, need, &LAY, (const void *const *)ptr, size, 3), need);
}
END_TEST

START_TEST(blob_corruption_refused)
{
	make_blob();
	Parts dst;
	unsigned char bad[sizeof blob];
	char why[120];
	/* every single-bit flip, header and payload: corrupt, never "another layout" */
	for (size_t i = 0; i < blob_n; i++)
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, blob, blob_n);
			bad[i] ^= (unsigned char)(1u << bit);
			ck_assert_int_eq(read_into_sentinel(bad, blob_n, &LAY, &dst), GRADC_EBLOB);
		}
	gradc_blob_why(GRADC_EBLOB, bad, blob_n, why, sizeof why);
	ck_assert_str_eq(why, "corrupt blob (bad checksum)");
	/* every truncation */
	for (size_t n = 0; n < blob_n; n++)
		ck_assert_int_eq(read_into_sentinel(blob, n, &LAY, &dst), GRADC_EBLOB);
	gradc_blob_why(GRADC_EBLOB, blob, 10, why, sizeof why);
	ck_assert_str_eq(why, "truncated blob (shorter than its header)");
	gradc_blob_why(GRADC_EBLOB, blob, blob_n - 1, why, sizeof why);
	ck_assert_str_eq(why, "truncated blob (shorter than its payload)");
	/* bad magic */
	memcpy(bad, blob, blob_n);
	bad[0] = 'X';
	ck_assert_int_eq(read_into_sentinel(bad, blob_n, &LAY, &dst), GRADC_EBLOB);
	gradc_blob_why(GRADC_EBLOB, bad, blob_n, why, sizeof why);
	ck_assert_str_eq(why, "not a gradc blob (no 'GRDC' at its start)");
	/* a payload of another size than the parts expect: another layout */
	void *ptr[3];
	size_t size[3];
	parts_list(&dst, ptr, size);
	size[2] = 8;
	memset(&dst, 0xab, sizeof dst);
	ck_assert_int_eq(gradc_blob_read(blob, sizeof blob, &LAY, (void *const *)ptr, size, 3),
			 GRADC_ELAYOUT);
}
END_TEST

/* A sound blob of another layout says what it was made for. */
START_TEST(blob_other_layout)
{
	make_blob();
	Parts dst;
	char why[120];
	gradc_blob_layout other = LAY;
	other.hash ^= 1;
	other.model = "mine";
	ck_assert_int_eq(read_into_sentinel(blob, blob_n, &other, &dst), GRADC_ELAYOUT);
	ck_assert_str_eq(gradc_blob_why(GRADC_ELAYOUT, blob, blob_n, why, sizeof why),
			 "blob made for model 'toy' / layout hash 0x1234abcd (parameters and "
			 "state): another model or layout");
	/* cut to fit, always terminated */
	ck_assert_str_eq(gradc_blob_why(GRADC_ELAYOUT, blob, blob_n, why, 12), "blob made f");
	ck_assert_str_eq(gradc_blob_why(GRADC_OK, blob, blob_n, why, sizeof why), "ok");
	ck_assert_str_eq(gradc_strerror(GRADC_ELAYOUT), "blob made for another model or layout");
	ck_assert_ptr_nonnull(strstr(gradc_strerror(GRADC_ENOARENA), "arena"));
}
END_TEST

/* Parameters alone: written and read as such, and read out of a blob
 * with state; a blob of parameters alone does not load as a whole one. */
START_TEST(blob_params_only)
{
	Parts src, dst, want;
	void *ptr[3];
	size_t size[3];
	unsigned char pb[128];
	char why[120];
	parts_fill(&src, 3);
	parts_list(&src, ptr, size);
	size_t n = gradc_blob_write(pb, sizeof pb, &PLAY, (const void *const *)ptr, size, 1);
	ck_assert_uint_eq(n, GRADC_BLOB_HEADER_BYTES + 7 * 4);
	ck_assert_int_eq(read_parts(pb, n, &PLAY, 1, &dst), GRADC_OK);
	ck_assert_mem_eq(dst.w, src.w, sizeof src.w);
	ck_assert_int_eq(read_parts(pb, n, &LAY, 3, &dst), GRADC_ELAYOUT);
	gradc_blob_why(GRADC_ELAYOUT, pb, n, why, sizeof why);
	ck_assert_str_eq(why, "blob made for model 'toy' / layout hash 0x5678ef01 (parameters only): "
			      "another model or layout");
	/* the parameters of a whole blob */
	make_blob();
	parts_fill(&want, 5);
	ck_assert_int_eq(read_parts(blob, blob_n, &PLAY, 1, &dst), GRADC_OK);
	ck_assert_mem_eq(dst.w, want.w, sizeof want.w);
	/* of another parameter layout */
	gradc_blob_layout other = PLAY;
	other.hash = other.params_hash = PHASH ^ 4;
	ck_assert_int_eq(read_parts(blob, blob_n, &other, 1, &dst), GRADC_ELAYOUT);
}
END_TEST

static Suite *runtime_suite(void)
{
	Suite *s = suite_create("runtime");
	TCase *tc = tcase_create("rng");
	tcase_add_test(tc, rng_known_answer);
	tcase_add_test(tc, rng_matches_definition);
	tcase_add_test(tc, rng_streams_differ);
	tcase_add_test(tc, rng_uniform_is_53_bits_of_two_draws);
	tcase_add_test(tc, rng_uniform_statistics);
	tcase_add_test(tc, rng_normal_statistics);
	tcase_add_test(tc, rng_normal_definition);
	tcase_add_test(tc, initializers_f32_round_f64);
	suite_add_tcase(s, tc);
	tc = tcase_create("math");
	tcase_add_test(tc, math_double_accuracy);
	tcase_add_test(tc, math_float_accuracy);
	tcase_add_test(tc, math_special_values);
	tcase_add_test(tc, math_macros_and_isfinite);
	tcase_add_test(tc, status_strings);
	suite_add_tcase(s, tc);
	tc = tcase_create("blob");
	tcase_add_test(tc, crc32_known_answers);
	tcase_add_test(tc, fnv1a_known_answers);
	tcase_add_test(tc, blob_round_trip);
	tcase_add_test(tc, blob_write_too_small);
	tcase_add_test(tc, blob_corruption_refused);
	tcase_add_test(tc, blob_other_layout);
	tcase_add_test(tc, blob_params_only);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(runtime_suite)
