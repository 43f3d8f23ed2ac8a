/* gradc_safetensors.c: safetensors reading and writing (see the header).
 *
 * Reading:
 *   1. check the 8-byte header length against the file size;
 *   2. parse the JSON header strictly, without recursion (its shape is
 *      fixed: an object of tensor entries and one optional __metadata__
 *      object of strings), into a list of entries;
 *   3. check each entry (dtype, rank, shape product against the data size
 *      without overflow, offsets in range and equal to the byte count), then
 *      sort by name to find duplicates and by offset to find overlaps;
 *   4. copy each tensor's data to an 8-aligned place of its own (the file's
 *      offsets need not be aligned) in native byte order.
 * Every allocation of a file is chained to gradc_st_file.mem, so freeing
 * is one walk, and an error half-way through frees the same way.
 *
 * Limits: header at most 100 MiB (as the reference implementation);
 * names with an embedded NUL (\u0000) are refused; the UTF-8 of names is
 * not validated.
 */
#define _POSIX_C_SOURCE 200809L
#include "gradc_safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HEADER (100u << 20)

static char errbuf[512];

static const char *fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	return errbuf;
}

static const char *const dtype_names[] = {"F32", "F64", "I32", "I64"};

const char *gradc_st_dtype_name(gradc_st_dtype d)
{
	return (unsigned)d < 4 ? dtype_names[d] : "?";
}

size_t gradc_st_dtype_size(gradc_st_dtype d)
{
	return d == GRADC_ST_F32 || d == GRADC_ST_I32 ? 4 : 8;
}

static int host_is_little_endian(void)
{
	const uint16_t one = 1;
	return *(const unsigned char *)&one == 1;
}

/* Reverse the bytes of each 'size'-byte element of p[0..n). */
static void swap_elements(unsigned char *p, size_t n, size_t size)
{
	for (size_t i = 0; i + size <= n; i += size)
		for (size_t a = i, b = i + size - 1; a < b; a++, b--) {
			unsigned char t = p[a];
			p[a] = p[b];
			p[b] = t;
		}
}

/* ---- storage of a file: a chain of blocks */

typedef struct Block {
	struct Block *next;
	union {
		long double ld;
		long long ll;
		void *p;
	} data[];
} Block;

static void *st_alloc(gradc_st_file *f, size_t n)
{
	Block *b = malloc(sizeof(Block) + n);
	if (!b)
		return NULL;
	b->next = f->mem;
	f->mem = b;
	return b->data;
}

void gradc_st_free(gradc_st_file *f)
{
	Block *b = f->mem;
	while (b) {
		Block *next = b->next;
		free(b);
		b = next;
	}
	memset(f, 0, sizeof *f);
}

const gradc_st_tensor *gradc_st_find(const gradc_st_file *f, const char *name)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->t[i].name, name) == 0)
			return &f->t[i];
	return NULL;
}

/* ---- JSON */

typedef struct Json {
	const unsigned char *s, *p, *end;  /* header start, position, end */
	gradc_st_file *f;
	const char *err;
} Json;

static int json_fail(Json *j, const char *what)
{
	if (!j->err)
		j->err = fail("malformed safetensors header at byte %ld: %s",
			      (long)(j->p - j->s) + 8, what);
	return -1;
}

static void skip_ws(Json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* Consume character 'c' (after blanks); -1 if another comes. */
static int expect(Json *j, char c)
{
	static char msg[32];
	skip_ws(j);
	if (j->p < j->end && *j->p == (unsigned char)c) {
		j->p++;
		return 0;
	}
	snprintf(msg, sizeof msg, "expected '%c'", c);
	return json_fail(j, msg);
}

static int hex4(Json *j, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++, j->p++) {
		if (j->p >= j->end)
			return json_fail(j, "unterminated string");
		unsigned c = *j->p, d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if ((c | 32) >= 'a' && (c | 32) <= 'f')
			d = (c | 32) - 'a' + 10;
		else
			return json_fail(j, "bad \\u escape");
		*v = *v << 4 | d;
	}
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* string = '"' chars '"', decoded into a new NUL-terminated string *out
 * (stored with the file).  The decoded text is never longer than the
 * encoded one, so the raw length bounds the allocation.  */
static int parse_string(Json *j, char **out)
{
	if (expect(j, '"'))
		return -1;
	const unsigned char *q = j->p;
	while (q < j->end && *q != '"')
		q += *q == '\\' && q + 1 < j->end ? 2 : 1;
	if (q >= j->end)
		return json_fail(j, "unterminated string");
	char *o = st_alloc(j->f, (size_t)(q - j->p) + 1);
	if (!o)
		return json_fail(j, "out of memory");
	size_t n = 0;
	while (*j->p != '"') {
		unsigned c = *j->p++;
		if (c < 0x20)
			return j->p--, json_fail(j, "control character in string");
		if (c != '\\') {
			o[n++] = (char)c;
			continue;
		}
		c = *j->p++;
		switch (c) {
		case '"': case '\\': case '/':
			o[n++] = (char)c;
			break;
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case 'n': o[n++] = '\n'; break;
		case 'r': o[n++] = '\r'; break;
		case 't': o[n++] = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (hex4(j, &cp))
				return -1;
			if (cp >= 0xdc00 && cp < 0xe000)
				return json_fail(j, "lone low surrogate in string");
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
					return json_fail(j, "lone high surrogate in string");
				j->p += 2;
				if (hex4(j, &lo))
					return -1;
				if (lo < 0xdc00 || lo >= 0xe000)
					return json_fail(j, "bad surrogate pair in string");
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0)
				return json_fail(j, "NUL character in string");
			n += put_utf8(o + n, cp);
			break;
		}
		default:
			j->p--;
			return json_fail(j, "bad escape in string");
		}
	}
	j->p++;
	o[n] = 0;
	*out = o;
	return 0;
}

/* A non-negative integer without sign, fraction or exponent, <= 2^62. */
static int parse_uint(Json *j, uint64_t *v)
{
	skip_ws(j);
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return json_fail(j, "expected a non-negative integer");
	if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9')
		return json_fail(j, "leading zero in a number");
	*v = 0;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		if (*v > ((uint64_t)1 << 62) / 10)
			return json_fail(j, "integer too large");
		*v = *v * 10 + (uint64_t)(*j->p++ - '0');
	}
	if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
		return json_fail(j, "expected an integer");
	return 0;
}

/* '[' uint (',' uint)* ']' or '[' ']', at most 'max' items. */
static int parse_uint_list(Json *j, uint64_t *v, int max, int *n, const char *what)
{
	*n = 0;
	if (expect(j, '['))
		return -1;
	skip_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 0;
	}
	for (;;) {
		if (*n == max)
			return json_fail(j, what);
		if (parse_uint(j, &v[(*n)++]))
			return -1;
		skip_ws(j);
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return 0;
		}
		if (expect(j, ','))
			return -1;
	}
}

typedef struct Entry {
	char *name;
	char *dtype;
	int rank;
	uint64_t shape[GRADC_ST_MAX_RANK];
	uint64_t off[2];
	long at;  /* byte position in the file, for messages */
} Entry;

/* '{' "dtype": string, "shape": [..], "data_offsets": [b, e] '}' in any order */
static int parse_entry(Json *j, Entry *e)
{
	int seen = 0;
	if (expect(j, '{'))
		return -1;
	for (;;) {
		char *key;
		int n;
		if (parse_string(j, &key) || expect(j, ':'))
			return -1;
		if (strcmp(key, "dtype") == 0 && !(seen & 1)) {
			if (parse_string(j, &e->dtype))
				return -1;
			seen |= 1;
		} else if (strcmp(key, "shape") == 0 && !(seen & 2)) {
			if (parse_uint_list(j, e->shape, GRADC_ST_MAX_RANK, &e->rank,
					    "rank above 8"))
				return -1;
			seen |= 2;
		} else if (strcmp(key, "data_offsets") == 0 && !(seen & 4)) {
			if (parse_uint_list(j, e->off, 2, &n, "data_offsets: expected 2 numbers"))
				return -1;
			if (n != 2)
				return json_fail(j, "data_offsets: expected 2 numbers");
			seen |= 4;
		} else {
			return json_fail(j, seen & 7 ? "unknown or repeated field in a tensor entry"
						     : "unknown field in a tensor entry");
		}
		skip_ws(j);
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			break;
		}
		if (expect(j, ','))
			return -1;
	}
	if (seen != 7)
		return json_fail(j, "tensor entry lacks dtype, shape or data_offsets");
	return 0;
}

/* __metadata__: '{' (string ':' string (',' ...)*)? '}' */
static int parse_meta(Json *j, char ***meta, int *n_meta)
{
	int cap = 0;
	if (expect(j, '{'))
		return -1;
	skip_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		if (*n_meta == cap) {
			cap = cap ? cap * 2 : 8;
			char **m = st_alloc(j->f, 2 * (size_t)cap * sizeof *m);
			if (!m)
				return json_fail(j, "out of memory");
			if (*n_meta)
				memcpy(m, *meta, 2 * (size_t)*n_meta * sizeof *m);
			*meta = m;
		}
		char **kv = *meta + 2 * *n_meta;
		if (parse_string(j, &kv[0]) || expect(j, ':') || parse_string(j, &kv[1]))
			return -1;
		++*n_meta;
		skip_ws(j);
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return 0;
		}
		if (expect(j, ','))
			return -1;
	}
}

/* The whole header: '{' members '}' then only spaces.  Fills *ents (malloc). */
static int parse_header(Json *j, Entry **ents, int *n_ent)
{
	int cap = 0, have_meta = 0;
	*n_ent = 0;
	*ents = NULL;
	if (expect(j, '{'))
		return -1;
	skip_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
	} else {
		for (;;) {
			long at = (long)(j->p - j->s) + 8;
			char *key;
			if (parse_string(j, &key) || expect(j, ':'))
				return -1;
			if (strcmp(key, "__metadata__") == 0) {
				if (have_meta++)
					return json_fail(j, "two __metadata__ entries");
				if (parse_meta(j, &j->f->meta, &j->f->n_meta))
					return -1;
			} else {
				if (*n_ent == cap) {
					if (cap > (1 << 24))
						return json_fail(j, "too many tensors");
					cap = cap ? cap * 2 : 16;
					Entry *e = realloc(*ents, (size_t)cap * sizeof *e);
					if (!e)
						return json_fail(j, "out of memory");
					*ents = e;
				}
				Entry *e = &(*ents)[(*n_ent)++];
				memset(e, 0, sizeof *e);
				e->name = key;
				e->at = at;
				if (parse_entry(j, e))
					return -1;
			}
			skip_ws(j);
			if (j->p < j->end && *j->p == '}') {
				j->p++;
				break;
			}
			if (expect(j, ','))
				return -1;
		}
	}
	skip_ws(j);
	if (j->p != j->end)
		return json_fail(j, "unexpected text after the header object");
	return 0;
}

/* ---- checks */

static int cmp_name(const void *a, const void *b)
{
	const Entry *x = *(const Entry *const *)a, *y = *(const Entry *const *)b;
	return strcmp(x->name, y->name);
}

static int cmp_offset(const void *a, const void *b)
{
	const Entry *x = *(const Entry *const *)a, *y = *(const Entry *const *)b;
	if (x->off[0] != y->off[0])
		return x->off[0] < y->off[0] ? -1 : 1;
	return x->off[1] < y->off[1] ? -1 : x->off[1] > y->off[1];
}

/* Check entry 'e' against a data region of 'dlen' bytes; fill its tensor. */
static const char *check_entry(const Entry *e, uint64_t dlen, gradc_st_tensor *t)
{
	int d;
	for (d = 0; d < 4; d++)
		if (strcmp(e->dtype, dtype_names[d]) == 0)
			break;
	if (d == 4)
		return fail("tensor '%s': unsupported dtype '%s' (gradc reads F32, F64, I32, "
			    "I64)", e->name, e->dtype);
	t->name = e->name;
	t->dtype = (gradc_st_dtype)d;
	t->rank = e->rank;
	uint64_t size = gradc_st_dtype_size(t->dtype), numel = 1;
	for (int i = 0; i < e->rank; i++) {
		t->shape[i] = (int64_t)e->shape[i];
		if (e->shape[i] && numel > dlen / size / e->shape[i])
			return fail("tensor '%s': shape larger than the file's %llu data bytes",
				    e->name, (unsigned long long)dlen);
		numel *= e->shape[i];
	}
	if (e->off[0] > e->off[1] || e->off[1] > dlen)
		return fail("tensor '%s': data_offsets [%llu, %llu] outside the %llu data bytes",
			    e->name, (unsigned long long)e->off[0],
			    (unsigned long long)e->off[1], (unsigned long long)dlen);
	if (e->off[1] - e->off[0] != numel * size)
		return fail("tensor '%s': data_offsets span %llu bytes but %s%s needs %llu",
			    e->name, (unsigned long long)(e->off[1] - e->off[0]), e->dtype,
			    e->rank ? " of that shape" : " scalar",
			    (unsigned long long)(numel * size));
	t->nbytes = (size_t)(numel * size);
	return NULL;
}

/* Duplicate names and overlapping data, each by sorting. */
static const char *check_all(Entry *ents, int n)
{
	const char *err = NULL;
	Entry **ix = malloc((size_t)(n ? n : 1) * sizeof *ix);
	if (!ix)
		return fail("out of memory");
	for (int i = 0; i < n; i++)
		ix[i] = &ents[i];
	qsort(ix, (size_t)n, sizeof *ix, cmp_name);
	for (int i = 1; i < n && !err; i++)
		if (strcmp(ix[i - 1]->name, ix[i]->name) == 0)
			err = fail("tensor '%s' appears twice in the header", ix[i]->name);
	qsort(ix, (size_t)n, sizeof *ix, cmp_offset);
	for (int i = 1; i < n && !err; i++)
		if (ix[i]->off[0] < ix[i - 1]->off[1])
			err = fail("tensors '%s' and '%s' overlap in the data", ix[i - 1]->name,
				   ix[i]->name);
	free(ix);
	return err;
}

/* ---- reading */

static const char *decode(const unsigned char *b, size_t n, gradc_st_file *f, Entry **ents)
{
	if (n < 8)
		return fail("truncated safetensors file: %zu bytes, less than the 8-byte header "
			    "length", n);
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | b[i];
	if (hlen > n - 8)
		return fail("truncated safetensors file: the header claims %llu bytes but %zu "
			    "follow", (unsigned long long)hlen, n - 8);
	if (hlen > MAX_HEADER)
		return fail("safetensors header of %llu bytes is too large",
			    (unsigned long long)hlen);
	Json j = {b + 8, b + 8, b + 8 + hlen, f, NULL};
	int n_ent;
	if (parse_header(&j, ents, &n_ent))
		return j.err;
	const unsigned char *data = b + 8 + hlen;
	uint64_t dlen = n - 8 - hlen;
	f->t = st_alloc(f, (size_t)(n_ent ? n_ent : 1) * sizeof *f->t);
	if (!f->t)
		return fail("out of memory");
	memset(f->t, 0, (size_t)(n_ent ? n_ent : 1) * sizeof *f->t);
	size_t total = 0;
	for (int i = 0; i < n_ent; i++) {
		const char *err = check_entry(&(*ents)[i], dlen, &f->t[i]);
		if (err)
			return err;
		total += (f->t[i].nbytes + 7) / 8 * 8;
	}
	const char *err = check_all(*ents, n_ent);
	if (err)
		return err;
	/* no overlap: total <= dlen + 7 n_ent, so it cannot overflow */
	unsigned char *mem = st_alloc(f, total ? total : 1);
	if (!mem)
		return fail("out of memory");
	int swap = !host_is_little_endian();
	for (int i = 0; i < n_ent; i++) {
		gradc_st_tensor *t = &f->t[i];
		t->data = mem;
		memcpy(mem, data + (*ents)[i].off[0], t->nbytes);
		if (swap)
			swap_elements(mem, t->nbytes, gradc_st_dtype_size(t->dtype));
		mem += (t->nbytes + 7) / 8 * 8;
	}
	f->n = n_ent;
	return NULL;
}

const char *gradc_st_decode(const void *buf, size_t n, gradc_st_file *f)
{
	Entry *ents = NULL;
	memset(f, 0, sizeof *f);
	const char *err = decode(buf, n, f, &ents);
	free(ents);
	if (err)
		gradc_st_free(f);
	return err;
}

const char *gradc_st_read(const char *path, gradc_st_file *f)
{
	memset(f, 0, sizeof *f);
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return fail("cannot open '%s': %s", path, strerror(errno));
	size_t cap = 1 << 16, n = 0;
	unsigned char *b = malloc(cap);
	for (size_t k; b && (k = fread(b + n, 1, cap - n, fp)) > 0;) {
		n += k;
		/* an impossible header length (/dev/zero: 0) stops the reading: what
		 * was read is enough for decode's message; and a size limit */
		uint64_t hl = 0;
		for (int i = 7; n >= 8 && i >= 0; i--)
			hl = hl << 8 | b[i];
		if (n >= 8 && (hl < 2 || hl > MAX_HEADER))
			break;
		if (n > GRADC_ST_MAX_FILE) {
			fclose(fp);
			free(b);
			return fail("cannot read '%s': larger than %d MiB", path,
				    (int)(GRADC_ST_MAX_FILE >> 20));
		}
		if (n == cap) {
			unsigned char *q = cap <= ((size_t)-1) / 2 ? realloc(b, cap * 2) : NULL;
			if (!q) {
				free(b);
				b = NULL;
			}
			b = q;
			cap *= 2;
		}
	}
	int bad = ferror(fp);
	fclose(fp);
	if (!b || bad) {
		free(b);
		return fail("cannot read '%s': %s", path, bad ? "read error" : "out of memory");
	}
	const char *err = gradc_st_decode(b, n, f);
	free(b);
	if (err) {
		static char msg[sizeof errbuf + 64];
		snprintf(msg, sizeof msg, "%s: %s", path, err);
		return msg;
	}
	return NULL;
}

/* ---- writing */

typedef struct Out {
	char *s;
	size_t len, cap;
	int oom;
} Out;

static void out_put(Out *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		while (cap < o->len + n + 1)
			cap *= 2;
		char *q = realloc(o->s, cap);
		if (!q) {
			o->oom = 1;
			return;
		}
		o->s = q;
		o->cap = cap;
	}
	memcpy(o->s + o->len, s, n);
	o->len += n;
	o->s[o->len] = 0;
}

static void out_printf(Out *o, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	out_put(o, tmp, (size_t)n);
}

static void out_json_string(Out *o, const char *s)
{
	out_put(o, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			out_put(o, esc, 2);
		} else if (c < 0x20) {
			out_printf(o, "\\u%04x", c);
		} else {
			out_put(o, (const char *)&c, 1);
		}
	}
	out_put(o, "\"", 1);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names present, unique, not "__metadata__". */
static const char *check_names(const gradc_st_tensor *t, int n)
{
	const char *err = NULL;
	const char **ix = malloc((size_t)(n ? n : 1) * sizeof *ix);
	if (!ix)
		return fail("out of memory");
	for (int i = 0; i < n && !err; i++) {
		ix[i] = t[i].name;
		if (!t[i].name || strcmp(t[i].name, "__metadata__") == 0)
			err = fail("tensor %d: missing or reserved name", i);
	}
	if (!err) {
		qsort(ix, (size_t)n, sizeof *ix, cmp_str);
		for (int i = 1; i < n && !err; i++)
			if (strcmp(ix[i - 1], ix[i]) == 0)
				err = fail("tensor '%s' given twice", ix[i]);
	}
	free(ix);
	return err;
}

const char *gradc_st_encode(const gradc_st_tensor *t, int n, unsigned char **out,
			    size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	const char *err = check_names(t, n);
	if (err)
		return err;
	Out h = {0};
	uint64_t off = 0;
	out_put(&h, "{", 1);
	for (int i = 0; i < n; i++) {
		if ((unsigned)t[i].dtype >= 4 || t[i].rank < 0 || t[i].rank > GRADC_ST_MAX_RANK) {
			free(h.s);
			return fail("tensor '%s': bad dtype or rank", t[i].name);
		}
		uint64_t numel = 1;
		out_put(&h, i ? "," : "", i ? 1 : 0);
		out_json_string(&h, t[i].name);
		out_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dtype_names[t[i].dtype]);
		for (int d = 0; d < t[i].rank; d++) {
			if (t[i].shape[d] < 0 || (t[i].shape[d] &&
						  numel > ((uint64_t)1 << 62) / (uint64_t)t[i].shape[d])) {
				free(h.s);
				return fail("tensor '%s': bad shape", t[i].name);
			}
			numel *= (uint64_t)t[i].shape[d];
			out_printf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
		}
		if (numel * gradc_st_dtype_size(t[i].dtype) != t[i].nbytes || (t[i].nbytes && !t[i].data)) {
			free(h.s);
			return fail("tensor '%s': nbytes %zu does not match its shape", t[i].name,
				    t[i].nbytes);
		}
		out_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
			   (unsigned long long)(off + t[i].nbytes));
		off += t[i].nbytes;
	}
	out_put(&h, "}", 1);
	while (!h.oom && h.len % 8)
		out_put(&h, " ", 1);
	size_t total = 8 + h.len + (size_t)off;
	unsigned char *b = h.oom ? NULL : malloc(total);
	if (!b) {
		free(h.s);
		return fail("out of memory");
	}
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
	memcpy(b + 8, h.s, h.len);
	free(h.s);
	unsigned char *p = b + 8 + h.len;
	for (int i = 0; i < n; i++) {
		if (t[i].nbytes)
			memcpy(p, t[i].data, t[i].nbytes);
		if (!host_is_little_endian())
			swap_elements(p, t[i].nbytes, gradc_st_dtype_size(t[i].dtype));
		p += t[i].nbytes;
	}
	*out = b;
	*out_len = total;
	return NULL;
}

const char *gradc_st_write(const char *path, const gradc_st_tensor *t, int n)
{
	unsigned char *b;
	size_t len;
	const char *err = gradc_st_encode(t, n, &b, &len);
	if (err)
		return err;
	size_t plen = strlen(path) + 32;
	char *tmp = malloc(plen);
	if (!tmp) {
		free(b);
		return fail("out of memory");
	}
	snprintf(tmp, plen, "%s.tmp%ld", path, (long)getpid());
	FILE *fp = fopen(tmp, "wb");
	if (!fp) {
		err = fail("cannot write '%s': %s", tmp, strerror(errno));
	} else {
		size_t k = fwrite(b, 1, len, fp);
		if (fclose(fp) != 0 || k != len)
			err = fail("cannot write '%s'", tmp);
		else if (rename(tmp, path) != 0)
			err = fail("cannot rename to '%s': %s", path, strerror(errno));
		if (err)
			remove(tmp);
	}
	free(tmp);
	free(b);
	return err;
}
