/* gradc_rt.c: the runtime of generated code (see gradc_rt.h for the API).
 *
 * 1. PCG32 (XSH RR 64/32) exactly as the reference pcg32_random_r and
 *    pcg32_srandom_r of pcg-c-basic; uniform from 53 bits, normal by
 *    Box-Muller with this file's own log, sqrt and cos.
 * 2. Math without libm.  Each function reduces its argument to a small
 *    interval and evaluates a Taylor series there:
 *      exp:  x = k ln2 + r, |r| <= ln2/2 (ln2 split in two so k*ln2_hi is
 *            exact); e^x = 2^k e^r, the scaling done in two halves so that
 *            subnormal and overflowing results come out right.
 *      log:  x = m 2^e, m in [sqrt(1/2), sqrt(2)); with f = m - 1 (exact)
 *            and s = f / (2 + f), log m = 2 atanh s = f - s (f - R(s^2)).
 *      tanh: t = expm1(2|x|) (expm1 reduced like exp, so that it stays
 *            accurate near 0); tanh = sign(x) t / (t + 2).
 *      sqrt: an exponent-halving first guess, then Newton steps.
 *      cos:  x = q pi/2 + r (pi/2 split in two), |r| <= pi/4; cos or sin
 *            of r by quadrant.
 *    The float versions compute in float (Cortex-M4F has a float unit
 *    only) with shorter series.
 * 3. CRC-32 with a 16-entry table (64 bytes of flash), FNV-1a, blobs.
 *
 * Limits: values are bit-identical only where double arithmetic is IEEE
 * binary64 without excess precision (FLT_EVAL_METHOD 0); no <string.h>:
 * copies are byte loops.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "gradc_rt.h"

/* ---------------------------------------------------------------- status */

const char *gradc_strerror(int status)
{
	switch (status) {
	case GRADC_OK:
		return "ok";
	case GRADC_EBADLABEL:
		return "class label out of range";
	case GRADC_ENONFINITE:
		return "non-finite objective";
	case GRADC_EBLOB:
		return "corrupt or truncated blob";
	case GRADC_ELAYOUT:
		return "blob made for another model or layout";
	case GRADC_ENOARENA:
		return "no arena (NULL) given to a build without the static arena";
	default:
		return "unknown status";
	}
}

/* ---------------------------------------------------------------- random */

void gradc_rng_seed(gradc_rng *r, uint64_t seed, uint64_t stream)
{
	r->state = 0;
	r->inc = (stream << 1) | 1u;
	(void)gradc_rng_u32(r);
	r->state += seed;
	(void)gradc_rng_u32(r);
}

uint32_t gradc_rng_u32(gradc_rng *r)
{
	uint64_t old = r->state;
	r->state = old * 6364136223846793005ull + r->inc;
	uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
	uint32_t rot = (uint32_t)(old >> 59);
	return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

double gradc_rng_uniform(gradc_rng *r)
{
	uint32_t a = gradc_rng_u32(r) >> 5, b = gradc_rng_u32(r) >> 6;
	return ((double)a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}

/* 2 pi */
#define TWO_PI 0x1.921fb54442d18p+2

double gradc_rng_normal(gradc_rng *r)
{
	double u1 = 1.0 - gradc_rng_uniform(r);  /* (0, 1]: log is finite */
	double u2 = gradc_rng_uniform(r);
	return gradc_sqrt(-2.0 * gradc_log(u1)) * gradc_cos(TWO_PI * u2);
}

/* ---------------------------------------------------------------- initializers */

void gradc_fill_f32(float *p, int32_t n, double v)
{
	for (int32_t i = 0; i < n; i++)
		p[i] = (float)v;
}

void gradc_fill_f64(double *p, int32_t n, double v)
{
	for (int32_t i = 0; i < n; i++)
		p[i] = v;
}

void gradc_uniform_f32(float *p, int32_t n, double lo, double hi, gradc_rng *r)
{
	for (int32_t i = 0; i < n; i++)
		p[i] = (float)(lo + (hi - lo) * gradc_rng_uniform(r));
}

void gradc_uniform_f64(double *p, int32_t n, double lo, double hi, gradc_rng *r)
{
	for (int32_t i = 0; i < n; i++)
		p[i] = lo + (hi - lo) * gradc_rng_uniform(r);
}

void gradc_normal_f32(float *p, int32_t n, double mean, double std, gradc_rng *r)
{
	for (int32_t i = 0; i < n; i++)
		p[i] = (float)(mean + std * gradc_rng_normal(r));
}

void gradc_normal_f64(double *p, int32_t n, double mean, double std, gradc_rng *r)
{
	for (int32_t i = 0; i < n; i++)
		p[i] = mean + std * gradc_rng_normal(r);
}

/* ---------------------------------------------------------------- math: bits */

typedef union {
	double f;
	uint64_t u;
} Bits64;

static double from_bits(uint64_t u)
{
	Bits64 b;
	b.u = u;
	return b.f;
}

static uint64_t to_bits(double f)
{
	Bits64 b;
	b.f = f;
	return b.u;
}

/* 2^k for -1022 <= k <= 1023 */
static double pow2(int k)
{
	return from_bits((uint64_t)(k + 1023) << 52);
}

/* nearest integer to t (halves away from zero); |t| < 2^31 */
static int round_int(double t)
{
	return (int)(t < 0 ? t - 0.5 : t + 0.5);
}

static int round_intf(float t)
{
	return (int)(t < 0 ? t - 0.5f : t + 0.5f);
}

#define INF64 from_bits(0x7ff0000000000000ull)
#define NAN64 from_bits(0x7ff8000000000000ull)
#define INF32 gradc_uf_(0x7f800000u)
#define NAN32 gradc_uf_(0x7fc00000u)

/* ln 2 = LN2_HI + LN2_LO; LN2_HI has 32 significant bits */
#define LN2_HI 0x1.62e42feep-1
#define LN2_LO 0x1.a39ef35793c76p-33
#define LOG2E 0x1.71547652b82fep+0
/* float: LN2F_HI has 16 significant bits */
#define LN2F_HI 0x1.62e4p-1f
#define LN2F_LO 0x1.7f7d1cp-20f
#define LOG2EF 0x1.715476p+0f

/* ---------------------------------------------------------------- math: double */

/* e^r - 1 for |r| <= ln2/2: Taylor to degree 14 */
static double expm1_small(double r)
{
	double p = 1.0 / 87178291200.0;
	p = 1.0 / 6227020800.0 + r * p;
	p = 1.0 / 479001600.0 + r * p;
	p = 1.0 / 39916800.0 + r * p;
	p = 1.0 / 3628800.0 + r * p;
	p = 1.0 / 362880.0 + r * p;
	p = 1.0 / 40320.0 + r * p;
	p = 1.0 / 5040.0 + r * p;
	p = 1.0 / 720.0 + r * p;
	p = 1.0 / 120.0 + r * p;
	p = 1.0 / 24.0 + r * p;
	p = 1.0 / 6.0 + r * p;
	p = 0.5 + r * p;
	return r + r * (r * p);
}

/* x = k ln2 + r: returns r, sets *k */
static double reduce_ln2(double x, int *k)
{
	*k = round_int(x * LOG2E);
	return (x - *k * LN2_HI) - *k * LN2_LO;
}

double gradc_exp(double x)
{
	if (x != x)
		return x + x;
	if (x > 709.782712893384)
		return INF64;
	if (x < -745.2)
		return 0.0;
	int k;
	double r = reduce_ln2(x, &k);
	double y = 1.0 + expm1_small(r);
	int k1 = k / 2;  /* both halves within the normal exponent range */
	return y * pow2(k1) * pow2(k - k1);
}

double gradc_log(double x)
{
	uint64_t u = to_bits(x);
	if (x != x || x < 0)
		return NAN64;
	if (x == 0)
		return -INF64;
	if (u >= 0x7ff0000000000000ull)
		return x;  /* +inf */
	int e = 0;
	if (u < 0x0010000000000000ull) {  /* subnormal: scale by 2^54 */
		u = to_bits(x * 18014398509481984.0);
		e = -54;
	}
	e += (int)(u >> 52) - 1023;
	double m = from_bits((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
	if (m > 1.4142135623730951) {
		m *= 0.5;
		e++;
	}
	double f = m - 1.0, s = f / (2.0 + f), z = s * s;
	double R = 2.0 / 23;
	R = 2.0 / 21 + z * R;
	R = 2.0 / 19 + z * R;
	R = 2.0 / 17 + z * R;
	R = 2.0 / 15 + z * R;
	R = 2.0 / 13 + z * R;
	R = 2.0 / 11 + z * R;
	R = 2.0 / 9 + z * R;
	R = 2.0 / 7 + z * R;
	R = 2.0 / 5 + z * R;
	R = 2.0 / 3 + z * R;
	R *= z;
	double lm = f - s * (f - R);
	return e * LN2_HI + (lm + e * LN2_LO);
}

/* e^y - 1 for 0 <= y <= 50, accurate near 0 */
static double expm1_pos(double y)
{
	int k;
	double r = reduce_ln2(y, &k);
	double p = pow2(k);
	return p * expm1_small(r) + (p - 1.0);  /* both terms >= 0 */
}

double gradc_tanh(double x)
{
	double a = x < 0 ? -x : x;
	if (x != x)
		return x + x;
	if (a > 22.0)
		return x < 0 ? -1.0 : 1.0;
	if (a < 0x1p-28)
		return x;
	double t = expm1_pos(2.0 * a);
	double y = t / (t + 2.0);
	return x < 0 ? -y : y;
}

double gradc_sqrt(double x)
{
	if (x != x || x < 0)
		return NAN64;
	if (x == 0 || x == INF64)
		return x;
	double scale = 1.0;
	if (x < 0x1p-1000) {
		x *= 0x1p+108;
		scale = 0x1p-54;
	}
	/* halve the exponent: a first guess within 6% */
	double y = from_bits((to_bits(x) >> 1) + 0x1ff8000000000000ull);
	for (int i = 0; i < 5; i++)
		y = 0.5 * (y + x / y);
	return y * scale;
}

/* pi/2 = PIO2_HI + PIO2_LO; PIO2_HI has 33 significant bits */
#define PIO2_HI 0x1.921fb544p+0
#define PIO2_LO 0x1.0b4611a626331p-34
#define TWO_OVER_PI 0x1.45f306dc9c883p-1

double gradc_cos(double x)
{
	if (x != x || x > 0x1p30 || x < -0x1p30)
		return NAN64;  /* (and +-inf) outside the range of the reduction */
	int q = round_int(x * TWO_OVER_PI);
	double r = (x - q * PIO2_HI) - q * PIO2_LO, z = r * r;
	double c = 1.0 / 20922789888000.0;  /* 1/16! */
	c = -1.0 / 87178291200.0 + z * c;
	c = 1.0 / 479001600.0 + z * c;
	c = -1.0 / 3628800.0 + z * c;
	c = 1.0 / 40320.0 + z * c;
	c = -1.0 / 720.0 + z * c;
	c = 1.0 / 24.0 + z * c;
	c = -0.5 + z * c;
	c = 1.0 + z * c;
	double s = 1.0 / 355687428096000.0;  /* 1/17! */
	s = -1.0 / 1307674368000.0 + z * s;
	s = 1.0 / 6227020800.0 + z * s;
	s = -1.0 / 39916800.0 + z * s;
	s = 1.0 / 362880.0 + z * s;
	s = -1.0 / 5040.0 + z * s;
	s = 1.0 / 120.0 + z * s;
	s = -1.0 / 6.0 + z * s;
	s = r + r * (z * s);
	switch (q & 3) {
	case 0:
		return c;
	case 1:
		return -s;
	case 2:
		return -c;
	default:
		return s;
	}
}

/* ---------------------------------------------------------------- math: float */

static float reduce_ln2f(float x, int *k)
{
	*k = round_intf(x * LOG2EF);
	return (x - (float)*k * LN2F_HI) - (float)*k * LN2F_LO;
}

/* The same operations as gradc_expf_inline (gradc_rt.h), with branches,
 * which cost less where nothing vectorizes (a Cortex-M4 runs a third fewer
 * instructions); test_runtime checks that the two agree bit for bit.  */
float gradc_expf(float x)
{
	if (x != x)
		return x + x;
	if (x > 88.72284f)
		return INF32;
	if (x < -103.98f)
		return 0.0f;
	int k;
	float r = reduce_ln2f(x, &k);
	float y = 1.0f + gradc_expm1_small_(r);
	int k1 = k / 2;
	return y * gradc_pow2f_(k1) * gradc_pow2f_(k - k1);
}

float gradc_logf(float x)
{
	uint32_t u = gradc_fu_(x);
	if (x != x || x < 0)
		return NAN32;
	if (x == 0)
		return -INF32;
	if (u >= 0x7f800000u)
		return x;
	int e = 0;
	if (u < 0x00800000u) {  /* subnormal: scale by 2^25 */
		u = gradc_fu_(x * 33554432.0f);
		e = -25;
	}
	e += (int)(u >> 23) - 127;
	float m = gradc_uf_((u & 0x007fffffu) | 0x3f800000u);
	if (m > 1.41421356f) {
		m *= 0.5f;
		e++;
	}
	float f = m - 1.0f, s = f / (2.0f + f), z = s * s;
	float R = 2.0f / 13;
	R = 2.0f / 11 + z * R;
	R = 2.0f / 9 + z * R;
	R = 2.0f / 7 + z * R;
	R = 2.0f / 5 + z * R;
	R = 2.0f / 3 + z * R;
	R *= z;
	float lm = f - s * (f - R);
	return (float)e * LN2F_HI + (lm + (float)e * LN2F_LO);
}

static float expm1_posf(float y)
{
	int k;
	float r = reduce_ln2f(y, &k);
	float p = gradc_pow2f_(k);
	return p * gradc_expm1_small_(r) + (p - 1.0f);
}

float gradc_tanhf(float x)
{
	float a = x < 0 ? -x : x;
	if (x != x)
		return x + x;
	if (a > 10.0f)
		return x < 0 ? -1.0f : 1.0f;
	if (a < 0x1p-12f)
		return x;
	float t = expm1_posf(2.0f * a);
	float y = t / (t + 2.0f);
	return x < 0 ? -y : y;
}

float gradc_sqrtf(float x)
{
	if (x != x || x < 0)
		return NAN32;
	if (x == 0 || x == INF32)
		return x;
	float scale = 1.0f;
	if (x < 0x1p-100f) {
		x *= 0x1p+50f;
		scale = 0x1p-25f;
	}
	float y = gradc_uf_((gradc_fu_(x) >> 1) + 0x1fc00000u);
	for (int i = 0; i < 4; i++)
		y = 0.5f * (y + x / y);
	return y * scale;
}

/* ---------------------------------------------------------------- checksums */

/* CRC-32 of each nibble value, reflected polynomial 0xEDB88320 */
static const uint32_t crc_nibble[16] = {
	0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
	0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
	0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
};

uint32_t gradc_crc32(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *b = p;
	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= b[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 15u];
		crc = (crc >> 4) ^ crc_nibble[crc & 15u];
	}
	return ~crc;
}

uint32_t gradc_fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* ---------------------------------------------------------------- blobs */

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void copy_bytes(unsigned char *dst, const unsigned char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = src[i];
}

size_t gradc_blob_size(const size_t *sizes, int n_parts)
{
	size_t total = GRADC_BLOB_HEADER_BYTES;
	for (int i = 0; i < n_parts; i++) {
		if (sizes[i] > (size_t)-1 - total)
			return 0;  /* overflow: no buffer is that large */
		total += sizes[i];
	}
	return total;
}

/* The header fields (gradc_rt.h) and the CRC over header and payload. */
enum {
	B_VERSION = 4, B_PAYLOAD = 8, B_HASH = 16, B_PHASH = 20, B_PBYTES = 24, B_MODEL = 32,
	B_MODEL_BYTES = 28, B_CRC = 60
};

static uint32_t blob_crc(const unsigned char *b, uint64_t payload)
{
	uint32_t crc = gradc_crc32(0, b, B_CRC);
	return gradc_crc32(crc, b + GRADC_BLOB_HEADER_BYTES, (size_t)payload);
}

size_t gradc_blob_write(void *buf, size_t cap, const gradc_blob_layout *lay,
			const void *const *parts, const size_t *sizes, int n_parts)
{
	unsigned char *b = buf;
	size_t total = gradc_blob_size(sizes, n_parts);
	if (total == 0 || total > cap)
		return 0;
	size_t at = GRADC_BLOB_HEADER_BYTES;
	for (int i = 0; i < n_parts; i++) {
		copy_bytes(b + at, parts[i], sizes[i]);
		at += sizes[i];
	}
	size_t payload = total - GRADC_BLOB_HEADER_BYTES;
	b[0] = 'G';
	b[1] = 'R';
	b[2] = 'D';
	b[3] = 'C';
	put_le(b + B_VERSION, GRADC_BLOB_VERSION, 4);
	put_le(b + B_PAYLOAD, payload, 8);
	put_le(b + B_HASH, lay->hash, 4);
	put_le(b + B_PHASH, lay->params_hash, 4);
	put_le(b + B_PBYTES, lay->params_bytes, 8);
	int k = 0;
	for (; lay->model && lay->model[k] && k < B_MODEL_BYTES - 1; k++)
		b[B_MODEL + k] = (unsigned char)lay->model[k];
	for (; k < B_MODEL_BYTES; k++)
		b[B_MODEL + k] = 0;
	put_le(b + B_CRC, blob_crc(b, payload), 4);
	return total;
}

/* GRADC_OK if buf[0..n) holds a whole, intact blob of this format (its
 * payload size in *payload), else GRADC_EBLOB. */
static int blob_check(const unsigned char *b, size_t n, uint64_t *payload)
{
	if (n < GRADC_BLOB_HEADER_BYTES || b[0] != 'G' || b[1] != 'R' || b[2] != 'D' || b[3] != 'C'
	    || get_le(b + B_VERSION, 4) != GRADC_BLOB_VERSION)
		return GRADC_EBLOB;
	*payload = get_le(b + B_PAYLOAD, 8);
	if (*payload > (uint64_t)(n - GRADC_BLOB_HEADER_BYTES))
		return GRADC_EBLOB;
	if (get_le(b + B_CRC, 4) != blob_crc(b, *payload))
		return GRADC_EBLOB;
	return GRADC_OK;
}

int gradc_blob_read(const void *buf, size_t n, const gradc_blob_layout *lay, void *const *parts,
		    const size_t *sizes, int n_parts)
{
	const unsigned char *b = buf;
	size_t want = gradc_blob_size(sizes, n_parts);
	uint64_t payload;
	if (want == 0 || blob_check(b, n, &payload) != GRADC_OK)
		return GRADC_EBLOB;
	want -= GRADC_BLOB_HEADER_BYTES;
	int same = get_le(b + B_HASH, 4) == lay->hash && payload == (uint64_t)want;
	/* parameters only: those of a blob that has more (the training state) */
	int params = lay->hash == lay->params_hash && get_le(b + B_PHASH, 4) == lay->params_hash
		     && get_le(b + B_PBYTES, 8) == (uint64_t)want && payload >= (uint64_t)want;
	if (!same && !params)
		return GRADC_ELAYOUT;
	size_t at = GRADC_BLOB_HEADER_BYTES;
	for (int i = 0; i < n_parts; i++) {
		copy_bytes(parts[i], b + at, sizes[i]);
		at += sizes[i];
	}
	return GRADC_OK;
}

/* Append the text s to out[0..cap) at *at (always NUL-terminated). */
static void put_str(char *out, size_t cap, size_t *at, const char *s)
{
	for (; *s && *at + 1 < cap; s++)
		out[(*at)++] = *s;
	out[*at] = 0;
}

static void put_hex(char *out, size_t cap, size_t *at, uint32_t v)
{
	char t[11] = "0x";
	for (int i = 0; i < 8; i++)
		t[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15u];
	t[10] = 0;
	put_str(out, cap, at, t);
}

const char *gradc_blob_why(int status, const void *buf, size_t n, char *out, size_t cap)
{
	const unsigned char *b = buf;
	uint64_t payload;
	size_t at = 0;
	if (!cap)
		return gradc_strerror(status);
	out[0] = 0;
	if (status != GRADC_ELAYOUT && status != GRADC_EBLOB) {
		put_str(out, cap, &at, gradc_strerror(status));
		return out;
	}
	if (n < 4 || b[0] != 'G' || b[1] != 'R' || b[2] != 'D' || b[3] != 'C')
		put_str(out, cap, &at, "not a gradc blob (no 'GRDC' at its start)");
	else if (n < GRADC_BLOB_HEADER_BYTES)
		put_str(out, cap, &at, "truncated blob (shorter than its header)");
	else if (get_le(b + B_VERSION, 4) != GRADC_BLOB_VERSION)
		put_str(out, cap, &at, "blob of another format version (this runtime reads "
				       "version 2)");
	else if ((payload = get_le(b + B_PAYLOAD, 8)) > (uint64_t)(n - GRADC_BLOB_HEADER_BYTES))
		put_str(out, cap, &at, "truncated blob (shorter than its payload)");
	else if (get_le(b + B_CRC, 4) != blob_crc(b, payload))
		put_str(out, cap, &at, "corrupt blob (bad checksum)");
	else if (status == GRADC_EBLOB)
		put_str(out, cap, &at, "blob refused (a buffer size overflows)");
	else {
		char model[B_MODEL_BYTES];
		copy_bytes((unsigned char *)model, b + B_MODEL, B_MODEL_BYTES);
		model[B_MODEL_BYTES - 1] = 0;
		put_str(out, cap, &at, "blob made for model '");
		put_str(out, cap, &at, model);
		put_str(out, cap, &at, "' / layout hash ");
		put_hex(out, cap, &at, (uint32_t)get_le(b + B_HASH, 4));
		put_str(out, cap, &at,
			get_le(b + B_HASH, 4) == get_le(b + B_PHASH, 4)
				? " (parameters only): another model or layout"
				: " (parameters and state): another model or layout");
	}
	return out;
}
