/* mknpy.c: write NumPy .npy files for the script tests (t_train.sh).
 *
 *   mknpy [-f] OUT.npy DESCR D0,D1,... < VALUES
 *
 * DESCR is the array's dtype as NumPy spells it: <f4, <f8, <i4, <i8 (any
 * other string is written as given, with 1-byte elements, for the error
 * tests); -f marks the array Fortran-ordered.  VALUES: numbers separated
 * by commas, blanks or newlines, as many as the shape holds.  Writes
 * format version 1.0 with the header padded to a multiple of 64 bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	int fortran = argc > 1 && !strcmp(argv[1], "-f");
	if (argc != 4 + fortran) {
		fprintf(stderr, "usage: mknpy [-f] OUT.npy DESCR D0,D1,... < VALUES\n");
		return 2;
	}
	const char *out = argv[1 + fortran], *descr = argv[2 + fortran];
	char shape[256] = "", *dims = argv[3 + fortran];
	long count = 1;
	for (char *p = strtok(dims, ","); p; p = strtok(NULL, ",")) {
		long d = atol(p);
		count *= d;
		snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%ld, ", d);
	}
	if (strchr(shape, ',') == strrchr(shape, ',')) /* one dim: "(N,)" */
		shape[strlen(shape) - 1] = 0;
	else
		shape[strlen(shape) - 2] = 0;
	char header[512];
	int n = snprintf(header, sizeof header,
			 "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }", descr,
			 fortran ? "True" : "False", shape);
	while ((n + 11) % 64)
		header[n++] = ' ';
	header[n++] = '\n';
	FILE *f = fopen(out, "wb");
	if (!f)
		return 1;
	fwrite("\x93NUMPY\x01\x00", 1, 8, f);
	fputc(n & 255, f);
	fputc(n >> 8, f);
	fwrite(header, 1, (size_t)n, f);
	for (long i = 0; i < count; i++) {
		double v;
		if (scanf(" %lf ,", &v) != 1) {
			fprintf(stderr, "mknpy: %ld values, the shape needs %ld\n", i, count);
			return 1;
		}
		float f4 = (float)v;
		double f8 = v;
		int32_t i4 = (int32_t)v;
		int64_t i8 = (int64_t)v;
		int8_t i1 = (int8_t)v;
		if (!strcmp(descr, "<f4"))
			fwrite(&f4, 4, 1, f);
		else if (!strcmp(descr, "<f8"))
			fwrite(&f8, 8, 1, f);
		else if (!strcmp(descr, "<i4"))
			fwrite(&i4, 4, 1, f);
		else if (!strcmp(descr, "<i8"))
			fwrite(&i8, 8, 1, f);
		else
			fwrite(&i1, 1, 1, f);
	}
	return fclose(f) != 0;
}
