/* protobuf.c: a reader of the protobuf wire format, the little that ONNX
 * files need (onnx.c decodes the messages with it).
 *
 *   1. A message is a sequence of fields: a varint key (field number << 3 |
 *      wire type), then the value: a varint (wire 0), 8 bytes (wire 1), a
 *      varint length and that many bytes (wire 2: strings, bytes, embedded
 *      messages, packed repeated numbers) or 4 bytes (wire 5).
 *   2. pb_next() reads one field; the accessors check its wire type against
 *      the one the schema gives the field and convert the value.
 *   3. Repeated numbers come packed (one wire-2 field) or one per field;
 *      pb_repeated() takes both.
 *
 * Nothing is trusted: every length is checked against what is left of the
 * enclosing message, varints are at most 10 bytes, groups (wire 3, 4) and
 * unknown wire types are refused, field number 0 is refused.  Every problem
 * is a user error naming the byte offset and the message being read, never
 * a read past the buffer.  Limits: no groups (proto2's deprecated encoding,
 * which ONNX does not use).
 */
#include "onnx.h"

#include <string.h>

void pb_fail(const Pb *r, const char *fmt, ...)
{
	char m[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	bool cut = !strncmp(m, "truncated: ", 11); /* the file ends inside a field */
	error_at((Loc){0}, "%s protobuf at byte %zu (in %s): %s", cut ? "truncated" : "malformed",
		 (size_t)(r->p - r->base), r->msg ? r->msg : "a message", cut ? m + 11 : m);
}

Pb pb_reader(const void *buf, size_t n, const char *msg)
{
	const uint8_t *p = buf;
	return (Pb){.p = p, .end = p + n, .base = p, .msg = msg};
}

/* A varint at r->p (advanced). */
static uint64_t get_varint(Pb *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 70; shift += 7) {
		if (r->p >= r->end)
			pb_fail(r, "truncated: a varint runs past the end");
		uint8_t b = *r->p++;
		if (shift == 63 && b > 1)
			pb_fail(r, "a varint does not fit 64 bits");
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	pb_fail(r, "a varint longer than 10 bytes");
}

/* n little-endian bytes at r->p (advanced). */
static uint64_t get_fixed(Pb *r, int n)
{
	if (r->end - r->p < n)
		pb_fail(r, "truncated: a %d-byte value with %td bytes left", n, r->end - r->p);
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | r->p[i];
	r->p += n;
	return v;
}

bool pb_next(Pb *r, PbField *f)
{
	if (r->p >= r->end)
		return false;
	uint64_t key = get_varint(r);
	memset(f, 0, sizeof *f);
	f->wire = (int)(key & 7);
	if (key >> 3 == 0 || key >> 3 > 0x1fffffff)
		pb_fail(r, "field number %llu", (unsigned long long)(key >> 3));
	f->num = (uint32_t)(key >> 3);
	switch (f->wire) {
	case PB_VARINT:
		f->u = get_varint(r);
		break;
	case PB_I64:
		f->u = get_fixed(r, 8);
		break;
	case PB_I32:
		f->u = get_fixed(r, 4);
		break;
	case PB_LEN: {
		uint64_t n = get_varint(r);
		if (n > (uint64_t)(r->end - r->p))
			pb_fail(r, "truncated: field %u needs %llu bytes, %td left", f->num,
				(unsigned long long)n, r->end - r->p);
		f->sub = (Pb){.p = r->p, .end = r->p + n, .base = r->base};
		r->p += n;
		break;
	}
	default:
		pb_fail(r, "field %u has wire type %d (groups and unknown types are not read)",
			f->num, f->wire);
	}
	return true;
}

static void want_wire(Pb *r, const PbField *f, int wire)
{
	static const char *const names[] = {"varint", "fixed64", "length-delimited", "group",
					    "group end", "fixed32"};
	if (f->wire != wire)
		pb_fail(r, "field %u is %s; expected %s", f->num, names[f->wire], names[wire]);
}

int64_t pb_int(Pb *r, const PbField *f)
{
	want_wire(r, f, PB_VARINT);
	return (int64_t)f->u;
}

double pb_float(Pb *r, const PbField *f)
{
	want_wire(r, f, PB_I32);
	uint32_t u = (uint32_t)f->u;
	float x;
	memcpy(&x, &u, sizeof x);
	return (double)x;
}

double pb_double(Pb *r, const PbField *f)
{
	want_wire(r, f, PB_I64);
	double x;
	memcpy(&x, &f->u, sizeof x);
	return x;
}

const char *pb_string(Pb *r, const PbField *f)
{
	want_wire(r, f, PB_LEN);
	size_t n = (size_t)(f->sub.end - f->sub.p);
	if (memchr(f->sub.p, 0, n))
		pb_fail(r, "field %u: a string with a NUL byte", f->num);
	return str_ndup((const char *)f->sub.p, n);
}

Pb pb_message(Pb *r, const PbField *f, const char *msg)
{
	want_wire(r, f, PB_LEN);
	Pb s = f->sub;
	s.msg = msg;
	return s;
}

/* Append one value of 'kind' read by 'get' to the array. */
static void push_num(PbNum kind, void **v, int64_t *n, int64_t *cap, uint64_t bits)
{
	size_t sz = kind == PB_INT64 ? sizeof(int64_t) : sizeof(double);
	if (*n == *cap) {
		int64_t nc = *cap ? 2 * *cap : 8;
		*v = alloc_grow(*v, sz * (size_t)*cap, sz * (size_t)nc);
		*cap = nc;
	}
	if (kind == PB_INT64) {
		((int64_t *)*v)[*n] = (int64_t)bits;
	} else if (kind == PB_FLOAT) {
		uint32_t u = (uint32_t)bits;
		float x;
		memcpy(&x, &u, sizeof x);
		((double *)*v)[*n] = (double)x;
	} else {
		double x;
		memcpy(&x, &bits, sizeof x);
		((double *)*v)[*n] = x;
	}
	(*n)++;
}

void pb_repeated(Pb *r, const PbField *f, PbNum kind, void **v, int64_t *n, int64_t *cap)
{
	int wire = kind == PB_INT64 ? PB_VARINT : kind == PB_FLOAT ? PB_I32 : PB_I64;
	if (f->wire != PB_LEN) {
		want_wire(r, f, wire);
		push_num(kind, v, n, cap, f->u);
		return;
	}
	Pb s = f->sub;
	s.msg = r->msg;
	if (wire != PB_VARINT) { /* a known count: allocate once */
		size_t w = wire == PB_I32 ? 4 : 8, len = (size_t)(s.end - s.p);
		if (len % w)
			pb_fail(&s, "packed field %u: %zu bytes, not a multiple of %zu", f->num,
				len, w);
		int64_t need = *n + (int64_t)(len / w);
		if (need > *cap) {
			*v = alloc_grow(*v, sizeof(double) * (size_t)*cap,
					sizeof(double) * (size_t)need);
			*cap = need;
		}
	}
	while (s.p < s.end)
		push_num(kind, v, n, cap, wire == PB_VARINT ? get_varint(&s)
					  : get_fixed(&s, wire == PB_I32 ? 4 : 8));
}
