/* test_host_io.c: the host helpers' file formats (runtime/host/):
 * safetensors round trips (memory and file), foreign layouts, malformed,
 * truncated and mutated files, tensors the encoder refuses; CSV data sets
 * and ragged rows.  (Split from test_runtime.c.)  */
#define _POSIX_C_SOURCE 200809L  /* mkdtemp, mkstemp, fdopen */
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "gradc_csv.h"
#include "gradc_safetensors.h"
#include "testutil.h"

/* ------------------------------------------------------------ safetensors */

static float t_f32[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
static double t_f64[1] = {3.141592653589793};
static int32_t t_i32[4] = {0, -1, 2147483647, -2147483647 - 1};
static int64_t t_i64[3] = {INT64_MIN, 5, INT64_MAX};

static void sample_tensors(gradc_st_tensor t[5])
{
	memset(t, 0, 5 * sizeof *t);
	t[0] = (gradc_st_tensor){"x", GRADC_ST_F32, 2, {2, 3}, t_f32, sizeof t_f32};
	t[1] = (gradc_st_tensor){"objective", GRADC_ST_F64, 0, {0}, t_f64, sizeof t_f64};
	t[2] = (gradc_st_tensor){"y", GRADC_ST_I32, 1, {4}, t_i32, sizeof t_i32};
	t[3] = (gradc_st_tensor){"grad.W \"q\"\n", GRADC_ST_I64, 3, {1, 3, 1}, t_i64,
				 sizeof t_i64};
	t[4] = (gradc_st_tensor){"empty", GRADC_ST_F32, 2, {0, 5}, NULL, 0};
}

static void check_same(const gradc_st_file *f, const gradc_st_tensor *t, int n)
{
	ck_assert_int_eq(f->n, n);
	for (int i = 0; i < n; i++) {
		const gradc_st_tensor *a = &f->t[i];
		ck_assert_str_eq(a->name, t[i].name);
		ck_assert_int_eq(a->dtype, t[i].dtype);
		ck_assert_int_eq(a->rank, t[i].rank);
		for (int d = 0; d < a->rank; d++)
			ck_assert_int_eq(a->shape[d], t[i].shape[d]);
		ck_assert_uint_eq(a->nbytes, t[i].nbytes);
		ck_assert_uint_eq((uintptr_t)a->data % 8, 0);
		if (a->nbytes)
			ck_assert_mem_eq(a->data, t[i].data, a->nbytes);
		ck_assert_ptr_eq(gradc_st_find(f, t[i].name), a);
	}
	ck_assert_ptr_null(gradc_st_find(f, "nope"));
}

START_TEST(st_round_trip_memory)
{
	gradc_st_tensor t[5];
	sample_tensors(t);
	unsigned char *b;
	size_t n;
	ck_assert_ptr_null(gradc_st_encode(t, 5, &b, &n));
	uint64_t hlen;
	memcpy(&hlen, b, 8);
	ck_assert_uint_eq(hlen % 8, 0);
	ck_assert_uint_eq(n, 8 + hlen + sizeof t_f32 + sizeof t_f64 + sizeof t_i32 + sizeof t_i64);
	ck_assert_int_eq(b[8], '{');
	/* keys in the given order */
	const char *h = (const char *)b + 8;
	const char *first = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},";
	ck_assert_int_eq(strncmp(h, first, strlen(first)), 0);
	gradc_st_file f;
	ck_assert_ptr_null(gradc_st_decode(b, n, &f));
	check_same(&f, t, 5);
	gradc_st_free(&f);
	ck_assert_int_eq(f.n, 0);
	gradc_st_free(&f);  /* twice is harmless */
	free(b);
	/* no tensors at all */
	ck_assert_ptr_null(gradc_st_encode(t, 0, &b, &n));
	ck_assert_uint_eq(n, 16);
	ck_assert_ptr_null(gradc_st_decode(b, n, &f));
	ck_assert_int_eq(f.n, 0);
	gradc_st_free(&f);
	free(b);
}
END_TEST

START_TEST(st_round_trip_file)
{
	char dir[] = "/tmp/gradc_test_XXXXXX", path[64], tmpname[96];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/t.safetensors", dir);
	gradc_st_tensor t[5];
	sample_tensors(t);
	ck_assert_ptr_null(gradc_st_write(path, t, 5));
	snprintf(tmpname, sizeof tmpname, "%s.tmp%ld", path, (long)getpid());
	ck_assert_int_ne(access(tmpname, F_OK), 0);
	gradc_st_file f;
	ck_assert_ptr_null(gradc_st_read(path, &f));
	check_same(&f, t, 5);
	gradc_st_free(&f);
	/* a failed write leaves nothing behind */
	t[1].nbytes = 4;
	remove(path);
	ck_assert_ptr_nonnull(gradc_st_write(path, t, 5));
	ck_assert_int_ne(access(path, F_OK), 0);
	const char *err = gradc_st_read(path, &f);
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));
	rmdir(dir);
}
END_TEST

/* A file from its header text and data bytes. */
static size_t make_file(unsigned char *buf, const char *header, const void *data, size_t n)
{
	uint64_t hlen = strlen(header);
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(hlen >> (8 * i));
	memcpy(buf + 8, header, hlen);
	if (n)
		memcpy(buf + 8 + hlen, data, n);
	return 8 + hlen + n;
}

static unsigned char file[4096];

/* The error of decoding 'header' + 'n' data bytes (NULL if it decodes). */
static const char *decode_header(const char *header, size_t n)
{
	static const unsigned char data[64] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	size_t len = make_file(file, header, data, n);
	gradc_st_file f;
	const char *err = gradc_st_decode(file, len, &f);
	if (err) {
		ck_assert_int_eq(f.n, 0);
		ck_assert_ptr_null(f.mem);
	}
	gradc_st_free(&f);
	return err;
}

START_TEST(st_reads_foreign_layout)
{
	/* unpadded header (data unaligned in the file), metadata, blanks, escapes */
	const char *h = " { \"__metadata__\" : {\"format\":\"pt\", \"k\\u00e9\":\"\\ud83d\\ude00\"},"
			"\n\"b\":{\"data_offsets\":[4,12],\"shape\":[1],\"dtype\":\"F64\"},"
			"\t\"a\\/\\u0041\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]} }  ";
	double v = -1.25;
	unsigned char data[12] = {7, 0, 0, 0};
	memcpy(data + 4, &v, 8);
	size_t len = make_file(file, h, data, sizeof data);
	gradc_st_file f;
	ck_assert_ptr_null(gradc_st_decode(file, len, &f));
	ck_assert_int_eq(f.n, 2);
	ck_assert_str_eq(f.t[0].name, "b");
	ck_assert_str_eq(f.t[1].name, "a/A");
	ck_assert_int_eq(f.t[1].rank, 0);
	ck_assert_int_eq(*(int32_t *)f.t[1].data, 7);
	ck_assert(*(double *)f.t[0].data == -1.25);
	ck_assert_int_eq(f.n_meta, 2);
	ck_assert_str_eq(f.meta[0], "format");
	ck_assert_str_eq(f.meta[1], "pt");
	ck_assert_str_eq(f.meta[2], "k\xc3\xa9");
	ck_assert_str_eq(f.meta[3], "\xf0\x9f\x98\x80");
	gradc_st_free(&f);
}
END_TEST

#define ENTRY(name, dtype, shape, b, e) \
	"\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" b "," e "]}"

START_TEST(st_malformed_refused)
{
	static const struct {
		const char *header;
		size_t n;       /* data bytes */
		const char *msg;  /* part of the message */
	} bad[] = {
		{"", 0, "expected '{'"},
		{"[]", 0, "expected '{'"},
		{"{", 0, "expected '\"'"},
		{"{\"x\"", 0, "expected ':'"},
		{"{\"x\":{\"dtype\":\"F32\",}}", 0, "expected '\"'"},
		{"{" ENTRY("x", "F32", "[1]", "0", "4") ",}", 4, "expected '\"'"},
		{"{" ENTRY("x", "F32", "[1]", "0", "4") "}x", 4, "after the header"},
		{"{" ENTRY("x", "F32", "[1]", "0", "4") "}{}", 4, "after the header"},
		{"{\"x", 0, "unterminated string"},
		{"{\"x\\", 0, "unterminated string"},
		{"{\"a\tb\":1}", 0, "control character"},
		{"{\"a\\qb\":1}", 0, "bad escape"},
		{"{\"a\\u12g4\":1}", 0, "bad \\u escape"},
		{"{\"a\\u0000\":1}", 0, "NUL"},
		{"{\"a\\ud800\":1}", 0, "surrogate"},
		{"{\"a\\udc00\":1}", 0, "surrogate"},
		{"{\"x\":1}", 0, "expected '{'"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "lacks"},
		{"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4,
		 "unknown"},
		{"{\"x\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		 "repeated"},
		{"{" ENTRY("x", "F32", "[-1]", "0", "4") "}", 4, "non-negative integer"},
		{"{" ENTRY("x", "F32", "[1.0]", "0", "4") "}", 4, "expected an integer"},
		{"{" ENTRY("x", "F32", "[1e0]", "0", "4") "}", 4, "expected an integer"},
		{"{" ENTRY("x", "F32", "[01]", "0", "4") "}", 4, "leading zero"},
		{"{" ENTRY("x", "F32", "[99999999999999999999]", "0", "4") "}", 4, "too large"},
		{"{" ENTRY("x", "F32", "[1,1,1,1,1,1,1,1,1]", "0", "4") "}", 4, "rank above 8"},
		{"{" ENTRY("x", "F32", "[1]", "0", "4,8") "}", 4, "expected 2 numbers"},
		{"{" ENTRY("x", "F32", "[1 2]", "0", "4") "}", 4, "expected ','"},
		{"{" ENTRY("x", "F16", "[1]", "0", "2") "}", 4, "unsupported dtype 'F16'"},
		{"{" ENTRY("x", "XYZ", "[1]", "0", "4") "}", 4, "unsupported dtype 'XYZ'"},
		{"{" ENTRY("x", "F32", "[1]", "0", "8") "}", 4, "outside the 4 data bytes"},
		{"{" ENTRY("x", "F32", "[1]", "4", "0") "}", 4, "outside"},
		{"{" ENTRY("x", "F32", "[1]", "0", "4611686018427387904") "}", 4, "outside"},
		{"{" ENTRY("x", "F32", "[2]", "0", "4") "}", 8, "needs 8"},
		{"{" ENTRY("x", "F32", "[]", "0", "8") "}", 8, "scalar needs 4"},
		{"{" ENTRY("x", "F64", "[4294967296,4294967296]", "0", "8") "}", 8, "shape larger"},
		{"{" ENTRY("x", "I64", "[4611686018427387904,4]", "0", "8") "}", 8, "shape larger"},
		{"{" ENTRY("x", "F32", "[1]", "0", "4") "," ENTRY("x", "F32", "[1]", "4", "8") "}", 8,
		 "'x' appears twice"},
		{"{" ENTRY("a", "F32", "[2]", "0", "8") "," ENTRY("b", "F32", "[1]", "4", "8") "}", 8,
		 "overlap"},
		{"{\"__metadata__\":{\"a\":1}}", 0, "expected '\"'"},
		{"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "two __metadata__"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *err = decode_header(bad[i].header, bad[i].n);
		if (!err || !strstr(err, bad[i].msg))
			ck_abort_msg("case %zu (%s): got \"%s\", want \"...%s...\"", i, bad[i].header,
				     err ? err : "(accepted)", bad[i].msg);
	}
}
END_TEST

START_TEST(st_bad_length_field)
{
	gradc_st_file f;
	unsigned char b[16] = {0};
	ck_assert_ptr_nonnull(strstr(gradc_st_decode(b, 0, &f), "truncated"));
	ck_assert_ptr_nonnull(strstr(gradc_st_decode(b, 7, &f), "truncated"));
	b[0] = 9;  /* header of 9 bytes, 8 follow */
	ck_assert_ptr_nonnull(strstr(gradc_st_decode(b, 16, &f), "truncated"));
	memset(b, 0xff, 8);  /* 2^64 - 1 */
	ck_assert_ptr_nonnull(strstr(gradc_st_decode(b, 16, &f), "truncated"));
	ck_assert_int_eq(f.n, 0);
}
END_TEST

/* Every truncation and every byte changed to a few values: decoding never
 * crashes (ASan watches), and only the whole file decodes.  */
START_TEST(st_truncations_and_mutations)
{
	gradc_st_tensor t[5];
	sample_tensors(t);
	unsigned char *b, *m;
	size_t n;
	gradc_st_file f;
	ck_assert_ptr_null(gradc_st_encode(t, 5, &b, &n));
	for (size_t k = 0; k < n; k++) {
		m = malloc(k ? k : 1);  /* exactly k bytes, so ASan sees overreads */
		memcpy(m, b, k);
		ck_assert_ptr_nonnull(gradc_st_decode(m, k, &f));
		free(m);
	}
	static const unsigned char vals[] = {0, '"', '\\', '{', '}', ',', ':', '9', 0xff};
	m = malloc(n);
	for (size_t k = 0; k < n; k++)
		for (size_t v = 0; v < sizeof vals; v++) {
			memcpy(m, b, n);
			m[k] = vals[v];
			if (!gradc_st_decode(m, n, &f))
				gradc_st_free(&f);
		}
	free(m);
	free(b);
}
END_TEST

START_TEST(st_encode_refuses_bad_tensors)
{
	gradc_st_tensor t[5];
	unsigned char *b;
	size_t n;
	sample_tensors(t);
	t[2].name = "x";
	ck_assert_ptr_nonnull(strstr(gradc_st_encode(t, 5, &b, &n), "given twice"));
	ck_assert_ptr_null(b);
	sample_tensors(t);
	t[0].nbytes = 20;
	ck_assert_ptr_nonnull(strstr(gradc_st_encode(t, 5, &b, &n), "does not match"));
	sample_tensors(t);
	t[0].shape[1] = -3;
	ck_assert_ptr_nonnull(strstr(gradc_st_encode(t, 5, &b, &n), "bad shape"));
	sample_tensors(t);
	t[0].rank = 9;
	ck_assert_ptr_nonnull(gradc_st_encode(t, 5, &b, &n));
	sample_tensors(t);
	t[4].name = "__metadata__";
	ck_assert_ptr_nonnull(gradc_st_encode(t, 5, &b, &n));
	ck_assert_str_eq(gradc_st_dtype_name(GRADC_ST_I64), "I64");
	ck_assert_uint_eq(gradc_st_dtype_size(GRADC_ST_I32), 4);
}
END_TEST

/* ------------------------------------------------------------ csv */

START_TEST(csv_reads_data_sets)
{
	gradc_csv c;
	ck_assert_ptr_null(gradc_csv_read("data/iris.csv", 1, &c));
	ck_assert_int_eq(c.rows, 150);
	ck_assert_int_eq(c.cols, 5);
	ck_assert(c.v[0] == 5.1 && c.v[4] == 0 && c.v[149 * 5 + 4] == 2);
	gradc_csv_free(&c);
	ck_assert_ptr_null(gradc_csv_read("data/digits.csv", 0, &c));
	ck_assert_int_eq(c.rows, 1797);
	ck_assert_int_eq(c.cols, 65);
	gradc_csv_free(&c);
	const char *err = gradc_csv_read("data/iris.csv", 0, &c);
	ck_assert_ptr_nonnull(strstr(err, "iris.csv:1: field 3 is not a number"));
	ck_assert_ptr_null(c.v);
	ck_assert_ptr_nonnull(strstr(gradc_csv_read("data/nope.csv", 0, &c), "cannot open"));
}
END_TEST

START_TEST(csv_ragged_refused)
{
	char path[] = "/tmp/gradc_csv_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	fputs("1,2,3\r\n\n4,5,6\n7,8\n", f);
	fclose(f);
	gradc_csv c;
	const char *err = gradc_csv_read(path, 0, &c);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, ":4: 2 fields, but the first row has 3"));
	remove(path);
}
END_TEST

static Suite *host_io_suite(void)
{
	Suite *s = suite_create("host_io");
	TCase *tc = tcase_create("safetensors");
	tcase_add_test(tc, st_round_trip_memory);
	tcase_add_test(tc, st_round_trip_file);
	tcase_add_test(tc, st_reads_foreign_layout);
	tcase_add_test(tc, st_malformed_refused);
	tcase_add_test(tc, st_bad_length_field);
	tcase_add_test(tc, st_truncations_and_mutations);
	tcase_add_test(tc, st_encode_refuses_bad_tensors);
	suite_add_tcase(s, tc);
	tc = tcase_create("csv");
	tcase_add_test(tc, csv_reads_data_sets);
	tcase_add_test(tc, csv_ragged_refused);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(host_io_suite)
