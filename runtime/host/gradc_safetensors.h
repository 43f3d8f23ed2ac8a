/* gradc_safetensors.h: read and write safetensors files (host only).
 *
 * The format: an 8-byte little-endian header length N, N bytes of JSON
 *   {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]},
 *    ..., "__metadata__": {"key": "value", ...}}
 * (padded with spaces), then the raw little-endian tensor data; offsets are
 * relative to the end of the header.  gradc reads and writes the dtypes
 * F32, F64, I32 and I64.
 *
 * Reading never trusts the file: the header length, every offset, shape
 * and byte count is checked (with overflow checks), the JSON is parsed
 * strictly (no unknown fields in a tensor entry, no duplicate names, no
 * overlapping tensors, nothing but spaces after the object), and any problem
 * is an error message, never a crash.
 *
 * This is host code (it allocates with malloc); it is linked into the
 * compiler for `gradc run` and `--params`, and never goes on a device.
 * Error messages live in a static buffer, valid until the next call into
 * this file: the functions are not thread-safe.
 */
#ifndef GRADC_SAFETENSORS_H
#define GRADC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum gradc_st_dtype {
	GRADC_ST_F32,  /* float */
	GRADC_ST_F64,  /* double */
	GRADC_ST_I32,  /* int32_t */
	GRADC_ST_I64,  /* int64_t */
} gradc_st_dtype;

enum { GRADC_ST_MAX_RANK = 8 };
/* gradc_st_read refuses larger files (1 GiB) */
#define GRADC_ST_MAX_FILE ((size_t)1 << 30)

typedef struct gradc_st_tensor {
	const char *name;                  /* NUL-terminated */
	gradc_st_dtype dtype;
	int rank;                          /* 0: a scalar (one element) */
	int64_t shape[GRADC_ST_MAX_RANK];  /* each >= 0 */
	void *data;                        /* nbytes, native byte order; 8-aligned when read */
	size_t nbytes;                     /* element count * element size */
} gradc_st_tensor;

/* A file as read: tensors in the order of the header.  Free with
 * gradc_st_free.  */
typedef struct gradc_st_file {
	gradc_st_tensor *t;  /* n tensors */
	int n;
	int n_meta;          /* __metadata__ entries: meta[2*i] = key, meta[2*i+1] = value */
	char **meta;
	void *mem;           /* owned storage behind every pointer above */
} gradc_st_file;

/* Read the file at 'path' into 'f'.  Returns NULL on success, or an error
 * message (then 'f' is empty and need not be freed, though freeing it is
 * harmless).  */
const char *gradc_st_read(const char *path, gradc_st_file *f);
/* The same from the bytes buf[0..n) (copied). */
const char *gradc_st_decode(const void *buf, size_t n, gradc_st_file *f);
/* Release what 'f' owns and empty it. */
void gradc_st_free(gradc_st_file *f);
/* The tensor named 'name' in 'f', or NULL. */
const gradc_st_tensor *gradc_st_find(const gradc_st_file *f, const char *name);

/* Encode tensors t[0..n) in that order (header padded to a multiple of 8,
 * data back to back) into a malloc'd buffer *out of *out_len bytes.
 * Returns NULL, or an error message (a bad dtype, rank, shape, nbytes or
 * name; a duplicate name).  */
const char *gradc_st_encode(const gradc_st_tensor *t, int n, unsigned char **out,
			    size_t *out_len);
/* Encode and write to 'path' atomically (a temporary file, then rename):
 * on an error no file is left behind.  Returns NULL or an error message.  */
const char *gradc_st_write(const char *path, const gradc_st_tensor *t, int n);

/* "F32", ...; the size of an element in bytes. */
const char *gradc_st_dtype_name(gradc_st_dtype d);
size_t gradc_st_dtype_size(gradc_st_dtype d);

#endif
