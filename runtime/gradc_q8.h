/* gradc_q8.h: the integer arithmetic of int8 inference (gradc compile
 * --quantize int8), as TensorFlow Lite's reference kernels do it.
 *
 * The one definition: the generated int8 code includes this header, and so
 * does gradc's integer evaluator (compiler/quant.c), so the two agree bit
 * for bit by construction.  C99, header only, no libm.
 *
 * A real multiplier r in (0, 2^31) is a pair (m, shift) with r = m * 2^(shift - 31),
 * m in [2^30, 2^31): gradc_q8_mbqm(x, m, shift) is x * r rounded, as TFLite's
 * MultiplyByQuantizedMultiplier: a left shift (shift > 0), the saturating
 * rounding doubling high multiply, then a rounding right shift (shift < 0).
 *
 * Limits: right shifts of negative values are arithmetic (as on every
 * compiler gradc targets; TFLite assumes the same).  A left shift that
 * overflows int32 saturates (TFLite's is undefined there; gradc never
 * makes a multiplier above 2^30, so it never happens in generated code).
 */
#ifndef GRADC_Q8_H
#define GRADC_Q8_H

#include <stdint.h>
#include <string.h>

/* The Cortex-M4's (ARMv7E-M, and later cores') packed 16-bit multiply-adds
 * through the ACLE (arm_acle.h): GRADC_Q8_DSP is 1 where the compiler has
 * them (-DGRADC_NO_DSP turns them off); the products' block sums then take
 * four values of k a step.  Integer sums: the same bits either way. */
#if defined(__ARM_FEATURE_SIMD32) && !defined(GRADC_NO_DSP)
#include <arm_acle.h>
#define GRADC_Q8_DSP 1
#else
#define GRADC_Q8_DSP 0
#endif

/* four int8 values as one word (little-endian, any alignment) */
static inline int32_t gradc_q8_load4(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* v rotated right by 8 bits: the odd bytes where __sxtb16 reads */
static inline int32_t gradc_q8_ror8(int32_t v)
{
	uint32_t u = (uint32_t)v;
	return (int32_t)((u >> 8) | (u << 24));
}

/* (a * b * 2) >> 32, rounded to nearest (ties away from zero), saturated:
 * gemmlowp's SaturatingRoundingDoublingHighMul. */
static inline int32_t gradc_q8_srdhm(int32_t a, int32_t b)
{
	if (a == INT32_MIN && b == INT32_MIN)
		return INT32_MAX;
	int64_t ab = (int64_t)a * (int64_t)b;
	int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
	/* division truncates toward zero, as gemmlowp's */
	return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^e rounded to nearest, ties away from zero, e in [0, 31]:
 * gemmlowp's RoundingDivideByPOT. */
static inline int32_t gradc_q8_rdbpot(int32_t x, int e)
{
	int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
	int32_t rem = x & mask;
	int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
	return (x >> e) + (rem > threshold ? 1 : 0);
}

/* x * m * 2^(shift - 31), rounded: TFLite's MultiplyByQuantizedMultiplier. */
static inline int32_t gradc_q8_mbqm(int32_t x, int32_t m, int shift)
{
	int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
	int64_t v = (int64_t)x * ((int64_t)1 << left);
	int32_t xs = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
	return gradc_q8_rdbpot(gradc_q8_srdhm(xs, m), right);
}

/* v clamped to [lo, hi] as an int8. */
static inline int8_t gradc_q8_clamp(int32_t v, int32_t lo, int32_t hi)
{
	return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}

/* An accumulator (bias and the input's zero point folded in) to the output:
 * requantized, the output's zero point added, clamped to the activation's
 * range [lo, hi] (relu and clip folded in). */
static inline int8_t gradc_q8_requant(int32_t acc, int32_t m, int shift, int32_t zp, int32_t lo,
				      int32_t hi)
{
	return gradc_q8_clamp(gradc_q8_mbqm(acc, m, shift) + zp, lo, hi);
}

/* Float to int8 on the entry: zp + x / scale rounded half away from zero,
 * saturated (NaN becomes the lowest value). */
static inline int8_t gradc_q8_quantize(float x, float scale, int32_t zp)
{
	float v = x / scale;
	if (!(v > -512.0f))
		v = -512.0f;
	if (v > 512.0f)
		v = 512.0f;
	int32_t r = (int32_t)(v < 0 ? v - 0.5f : v + 0.5f);
	return gradc_q8_clamp(r + zp, -128, 127);
}

/* int8 back to float on the exit. */
static inline float gradc_q8_dequantize(int32_t q, int32_t zp, float scale)
{
	return scale * (float)(q - zp);
}

/* Elementwise a + b of two int8 tensors of their own scales (TFLite's
 * quantized Add): both inputs to a common scale with 20 bits of headroom,
 * summed, requantized to the output.  p: za, ma, sa, zb, mb, sb, zo, mo, so
 * (zero points, multipliers, shifts of a, b and the output). */
static inline int8_t gradc_q8_add(int32_t a, int32_t b, const int32_t p[9], int32_t lo,
				  int32_t hi)
{
	int32_t x = gradc_q8_mbqm((a - p[0]) * (1 << 20), p[1], (int)p[2]);
	int32_t y = gradc_q8_mbqm((b - p[3]) * (1 << 20), p[4], (int)p[5]);
	return gradc_q8_requant(x + y, p[7], (int)p[8], p[6], lo, hi);
}

/* The mean of a pool window in int8: acc = the sum of (q - zp) over the
 * window's inputs, n the divisor; rounded half away from zero, zp added
 * back, saturated (TFLite's average pool; the scale is the input's). */
static inline int8_t gradc_q8_avg(int32_t acc, int32_t n, int32_t zp)
{
	int32_t r = acc >= 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
	return gradc_q8_clamp(r + zp, -128, 127);
}

#endif
