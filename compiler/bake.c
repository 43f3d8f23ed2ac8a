/* bake.c: parameter values as C literals (--params), fast and exact.
 *
 * A baked build holds every value of every parameter as a literal of a
 * `const` initializer.  Shortest round-tripping decimals (cfmt.lit, tried
 * digit count by digit count in Lua) took 13 s and 14 MB of C for the
 * 930K values of models/deep.nn; here each value is written once, as a C99
 * hexadecimal floating literal of its exact bits ("-0x1.8p-3f"), by integer
 * operations alone: no rounding anywhere, no printf, ~20 ns a value.  The
 * mantissa's trailing zero digits are dropped, so round values stay short.
 *
 * Values arrive as doubles (the file's F32 or F64, params.c); an f32 build
 * rounds each to float once, as the C compiler would.  NaN and infinities
 * have no literal and become the constant expressions cfmt.lit uses.
 */
#include "gradc.h"

#include <math.h>
#include <string.h>

static const char hexdigit[] = "0123456789abcdef";

/* Write "-?0x1.MMMMp[+-]E" for a finite nonzero value of 'bits' mantissa
 * bits 'm' (without the leading 1) and unbiased exponent 'e'; returns the
 * end.  'digits': hex digits of the mantissa (6 for float, 13 for double),
 * whose bits are m shifted left by 'pad' to fill them.  */
static char *hex_body(char *p, bool neg, uint64_t m, int e, int digits, int pad)
{
	if (neg)
		*p++ = '-';
	memcpy(p, "0x1", 3);
	p += 3;
	m <<= pad;
	int n = digits;
	while (n > 0 && !((m >> (4 * (digits - n))) & 15))
		n--; /* trailing zero digits */
	if (n > 0) {
		*p++ = '.';
		for (int i = 0; i < n; i++)
			*p++ = hexdigit[(m >> (4 * (digits - 1 - i))) & 15];
	}
	*p++ = 'p';
	*p++ = e < 0 ? '-' : '+';
	unsigned u = (unsigned)(e < 0 ? -e : e);
	char tmp[8];
	int k = 0;
	do {
		tmp[k++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (k)
		*p++ = tmp[--k];
	return p;
}

/* The literal of v at p (at most 32 bytes); returns the end, or NULL if a
 * finite v overflows float.  */
static char *lit(char *p, double v, bool f64)
{
	const char *s = NULL;
	if (isnan(v))
		s = f64 ? "(0.0 / 0.0)" : "(0.0f / 0.0f)";
	else if (isinf(v))
		s = f64 ? (v < 0 ? "(-(1e300 * 1e300))" : "(1e300 * 1e300)")
			: (v < 0 ? "(-((float)(1e300 * 1e300)))" : "((float)(1e300 * 1e300))");
	if (s) {
		size_t n = strlen(s);
		memcpy(p, s, n);
		return p + n;
	}
	if (f64) {
		uint64_t u;
		memcpy(&u, &v, sizeof u);
		bool neg = u >> 63;
		int be = (int)((u >> 52) & 0x7ff);
		uint64_t m = u & ((UINT64_C(1) << 52) - 1);
		if (!be && !m) {
			memcpy(p, neg ? "-0x0p+0" : "0x0p+0", neg ? 7 : 6);
			return p + (neg ? 7 : 6);
		}
		int e = be - 1023;
		if (!be) { /* subnormal: normalize */
			e = -1022;
			while (!(m >> 52)) {
				m <<= 1;
				e--;
			}
			m &= (UINT64_C(1) << 52) - 1;
		}
		return hex_body(p, neg, m, e, 13, 0);
	}
	float f = (float)v;
	if (isinf(f))
		return NULL;
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	bool neg = u >> 31;
	int be = (int)((u >> 23) & 0xff);
	uint32_t m = u & 0x7fffffu;
	if (!be && !m) {
		memcpy(p, neg ? "-0x0p+0f" : "0x0p+0f", neg ? 8 : 7);
		return p + (neg ? 8 : 7);
	}
	int e = be - 127;
	if (!be) {
		e = -126;
		while (!(m >> 23)) {
			m <<= 1;
			e--;
		}
		m &= 0x7fffffu;
	}
	p = hex_body(p, neg, m, e, 6, 1);
	*p++ = 'f';
	return p;
}

/* The rows of an initializer of v[0..n): 8 literals a line, each line
 * "\t\tL,L,...,", lines joined by '\n' (no final newline).  A finite
 * value that overflows float (an f32 build of F64 values; load_params
 * refuses those first) is an error naming parameter 'name' of file
 * 'path'.  The text is in the arena.  */
const char *bake_values(const double *v, int64_t n, bool f64, const char *path,
			const char *name, size_t *len)
{
	size_t cap = (size_t)n * 33 + (size_t)(n / 8 + 1) * 3 + 1;
	char *s = alloc(cap), *p = s;
	for (int64_t i = 0; i < n; i++) {
		if (i % 8 == 0) {
			if (i)
				*p++ = '\n';
			*p++ = '\t';
			*p++ = '\t';
		}
		char *q = lit(p, v[i], f64);
		if (!q)
			error_plain("%s: parameter '%s'[%lld] = %g overflows float (use --dtype f64)",
				    path, name, (long long)i, v[i]);
		p = q;
		*p++ = ',';
	}
	*p = 0;
	*len = (size_t)(p - s);
	return s;
}
