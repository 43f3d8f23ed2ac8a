/* stcmp.c: compare the tensors of two safetensors files (make demo-onnx and
 * tests/t_onnx.sh check gradc's results against PyTorch's with it).
 *
 *   stcmp GOT.safetensors WANT.safetensors TOL [NAME ...]
 *
 * Compares every tensor of WANT (or the NAMEs given) with the tensor of the
 * same name in GOT, element by element in row-major order (shapes may
 * differ if the counts agree: PyTorch's conv bias [C] is gradc's
 * [C, 1, 1]).  The error of a tensor is max |got - want| / max |want| (the
 * absolute error if want is all zeros).  Prints one line per tensor and
 * exits 1 if a tensor is missing, has another count or an error above TOL;
 * a tensor of two dimensions [N, C] also gets "argmax agrees on K of N".
 * Build: cc -Iruntime/host examples/onnx/stcmp.c runtime/host/gradc_safetensors.c -lm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradc_safetensors.h"

static double elem(const gradc_st_tensor *t, size_t i)
{
	switch (t->dtype) {
	case GRADC_ST_F32:
		return ((const float *)t->data)[i];
	case GRADC_ST_F64:
		return ((const double *)t->data)[i];
	case GRADC_ST_I32:
		return ((const int *)t->data)[i];
	case GRADC_ST_I64:
		return (double)((const long long *)t->data)[i];
	}
	return 0;
}

static size_t count(const gradc_st_tensor *t)
{
	return t->nbytes / gradc_st_dtype_size(t->dtype);
}

/* Compare one tensor; 0 if within 'tol'. */
static int compare(const gradc_st_file *got, const gradc_st_tensor *w, double tol)
{
	const gradc_st_tensor *g = gradc_st_find(got, w->name);
	if (!g) {
		printf("%s: missing\n", w->name);
		return 1;
	}
	size_t n = count(w);
	if (count(g) != n) {
		printf("%s: %zu values; expected %zu\n", w->name, count(g), n);
		return 1;
	}
	double diff = 0, scale = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs(elem(g, i) - elem(w, i));
		diff = d > diff || d != d ? d : diff;
		scale = fabs(elem(w, i)) > scale ? fabs(elem(w, i)) : scale;
	}
	double err = scale > 0 ? diff / scale : diff;
	printf("%-28s %8zu values  error %.3g", w->name, n, err);
	if (w->rank == 2 && w->shape[1] > 1) {
		size_t rows = (size_t)w->shape[0], cols = (size_t)w->shape[1], agree = 0;
		for (size_t r = 0; r < rows; r++) {
			size_t bg = 0, bw = 0;
			for (size_t c = 1; c < cols; c++) {
				bg = elem(g, r * cols + c) > elem(g, r * cols + bg) ? c : bg;
				bw = elem(w, r * cols + c) > elem(w, r * cols + bw) ? c : bw;
			}
			agree += bg == bw;
		}
		printf("  argmax agrees on %zu of %zu", agree, rows);
	}
	int bad = !(err <= tol);
	printf("%s\n", bad ? "  ABOVE THE TOLERANCE" : "");
	return bad;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: stcmp GOT WANT TOL [NAME ...]\n");
		return 2;
	}
	gradc_st_file got = {0}, want = {0};
	const char *msg = gradc_st_read(argv[1], &got);
	if (!msg)
		msg = gradc_st_read(argv[2], &want);
	if (msg) {
		fprintf(stderr, "stcmp: %s\n", msg);
		return 2;
	}
	double tol = strtod(argv[3], NULL);
	int bad = 0;
	for (int k = 0; k < want.n; k++) {
		int named = argc == 4;
		for (int a = 4; a < argc; a++)
			named |= !strcmp(argv[a], want.t[k].name);
		if (named)
			bad |= compare(&got, &want.t[k], tol);
	}
	for (int a = 4; a < argc; a++)
		if (!gradc_st_find(&want, argv[a])) {
			printf("%s: not in %s\n", argv[a], argv[2]);
			bad = 1;
		}
	gradc_st_free(&got);
	gradc_st_free(&want);
	return bad;
}
