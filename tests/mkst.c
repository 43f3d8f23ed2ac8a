/* mkst.c: write and list safetensors files for the script tests (t_run.sh).
 *
 *   mkst FILE NAME:DTYPE:SHAPE:VALUES ...   write FILE with those tensors
 *   mkst -l FILE                            list FILE: "NAME DTYPE [SHAPE]" per line
 *   mkst -p FILE NAME                       print tensor NAME's values, one a line (%.17g)
 *
 * DTYPE is F32, F64, I32 or I64; SHAPE is dims separated by commas ("4,64"),
 * or "-" for a scalar; VALUES is one of
 *   randS      uniform in [-1, 1) from seed S (an LCG, the same everywhere)
 *   modN       element i is i % N
 *   v=X        every element is X (strtod: "inf" and "nan" work)
 *   l=A,B,...  the list, repeated to fill the tensor
 * Uses the runtime's own writer (runtime/host/gradc_safetensors.c).
 * Build: cc -std=c99 -Iruntime/host tests/mkst.c runtime/host/gradc_safetensors.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradc_safetensors.h"

static void fail(const char *what, const char *arg)
{
	fprintf(stderr, "mkst: %s '%s'\n", what, arg);
	exit(2);
}

static int list(const char *path)
{
	gradc_st_file f = {0};
	const char *msg = gradc_st_read(path, &f);
	if (msg) {
		fprintf(stderr, "mkst: %s: %s\n", path, msg);
		return 1;
	}
	for (int i = 0; i < f.n; i++) {
		printf("%s %s [", f.t[i].name, gradc_st_dtype_name(f.t[i].dtype));
		for (int r = 0; r < f.t[i].rank; r++)
			printf("%s%lld", r ? ", " : "", (long long)f.t[i].shape[r]);
		printf("]\n");
	}
	gradc_st_free(&f);
	return 0;
}

static int print(const char *path, const char *name)
{
	gradc_st_file f = {0};
	const char *msg = gradc_st_read(path, &f);
	const gradc_st_tensor *t = msg ? NULL : gradc_st_find(&f, name);
	if (!t) {
		fprintf(stderr, "mkst: %s: %s\n", path, msg ? msg : "no such tensor");
		return 1;
	}
	size_t n = t->nbytes / gradc_st_dtype_size(t->dtype);
	for (size_t i = 0; i < n; i++)
		switch (t->dtype) {
		case GRADC_ST_F32:
			printf("%.17g\n", (double)((const float *)t->data)[i]);
			break;
		case GRADC_ST_F64:
			printf("%.17g\n", ((const double *)t->data)[i]);
			break;
		case GRADC_ST_I32:
			printf("%ld\n", (long)((const int32_t *)t->data)[i]);
			break;
		case GRADC_ST_I64:
			printf("%lld\n", (long long)((const int64_t *)t->data)[i]);
			break;
		}
	gradc_st_free(&f);
	return 0;
}

/* Element i of the value spec 'v' (after the last ':'). */
static double value(const char *v, size_t i, uint64_t *rng)
{
	if (!strncmp(v, "rand", 4)) {
		*rng = *rng * 6364136223846793005u + 1442695040888963407u;
		return (double)(*rng >> 11) * (2.0 / 9007199254740992.0) - 1;
	}
	if (!strncmp(v, "mod", 3))
		return (double)(i % strtoul(v + 3, NULL, 10));
	if (!strncmp(v, "v=", 2))
		return strtod(v + 2, NULL);
	if (!strncmp(v, "l=", 2)) {
		size_t n = 1;
		for (const char *p = v + 2; *p; p++)
			n += *p == ',';
		const char *p = v + 2;
		for (size_t k = i % n; k > 0; k--)
			p = strchr(p, ',') + 1;
		return strtod(p, NULL);
	}
	fail("bad values", v);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "-l"))
		return list(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "-p"))
		return print(argv[2], argv[3]);
	if (argc < 2)
		fail("usage: mkst FILE NAME:DTYPE:SHAPE:VALUES ... | mkst -l FILE | mkst -p FILE "
		     "NAME",
		     "");
	int n = argc - 2;
	gradc_st_tensor *t = calloc((size_t)n + 1, sizeof *t);
	for (int k = 0; k < n; k++) {
		char *spec = argv[k + 2];
		char *f[4];
		f[0] = spec;
		for (int i = 1; i < 4; i++) {
			f[i] = f[i - 1] ? strchr(f[i - 1], ':') : NULL;
			if (!f[i])
				fail("bad tensor spec", argv[k + 2]);
			*f[i]++ = 0;
		}
		gradc_st_tensor *x = &t[k];
		x->name = f[0];
		if (!strcmp(f[1], "F32"))
			x->dtype = GRADC_ST_F32;
		else if (!strcmp(f[1], "F64"))
			x->dtype = GRADC_ST_F64;
		else if (!strcmp(f[1], "I32"))
			x->dtype = GRADC_ST_I32;
		else if (!strcmp(f[1], "I64"))
			x->dtype = GRADC_ST_I64;
		else
			fail("bad dtype", f[1]);
		size_t count = 1;
		if (strcmp(f[2], "-")) {
			for (char *p = f[2]; x->rank < GRADC_ST_MAX_RANK;) {
				x->shape[x->rank] = strtoll(p, &p, 10);
				count *= (size_t)x->shape[x->rank++];
				if (*p != ',')
					break;
				p++;
			}
		}
		size_t es = gradc_st_dtype_size(x->dtype);
		x->nbytes = count * es;
		x->data = malloc(x->nbytes ? x->nbytes : 1);
		uint64_t rng = strtoull(f[3] + (strncmp(f[3], "rand", 4) ? 0 : 4), NULL, 10);
		for (size_t i = 0; i < count; i++) {
			double v = value(f[3], i, &rng);
			switch (x->dtype) {
			case GRADC_ST_F32:
				((float *)x->data)[i] = (float)v;
				break;
			case GRADC_ST_F64:
				((double *)x->data)[i] = v;
				break;
			case GRADC_ST_I32:
				((int32_t *)x->data)[i] = (int32_t)v;
				break;
			case GRADC_ST_I64:
				((int64_t *)x->data)[i] = (int64_t)v;
				break;
			}
		}
	}
	const char *msg = gradc_st_write(argv[1], t, n);
	if (msg) {
		fprintf(stderr, "mkst: %s: %s\n", argv[1], msg);
		return 1;
	}
	for (int k = 0; k < n; k++)
		free(t[k].data);
	free(t);
	return 0;
}
