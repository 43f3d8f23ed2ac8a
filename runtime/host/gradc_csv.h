/* gradc_csv.h: a tiny reader of numeric CSV files (host only), for demos
 * and tests: rows of comma-separated decimal numbers, all of one width.
 * Blank lines are skipped, CRLF line ends accepted; no quoting.  */
#ifndef GRADC_CSV_H
#define GRADC_CSV_H

#include <stddef.h>

typedef struct gradc_csv {
	int rows, cols;
	double *v;  /* rows * cols values, row-major (malloc) */
} gradc_csv;

/* Read 'path', skipping its first 'skip' lines (a header), into 'c'.
 * Returns NULL, or an error message "PATH:LINE: ..." in a static buffer
 * (then 'c' is empty).  */
const char *gradc_csv_read(const char *path, int skip, gradc_csv *c);
void gradc_csv_free(gradc_csv *c);

#endif
