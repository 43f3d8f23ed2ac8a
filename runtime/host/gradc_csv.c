/* gradc_csv.c: numeric CSV reading (see the header).  One pass over the
 * file with strtod per field; the first data row fixes the width; the value
 * array grows by doubling.  Limits: at most INT32_MAX values.  */
#include "gradc_csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char errbuf[512];

static const char *fail(gradc_csv *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	gradc_csv_free(c);
	return errbuf;
}

void gradc_csv_free(gradc_csv *c)
{
	free(c->v);
	memset(c, 0, sizeof *c);
}

/* Parse the fields of 'line' (NUL-terminated, no newline) onto c->v. */
static const char *parse_line(gradc_csv *c, char *line, size_t *cap, const char *path, int ln)
{
	int n = 0;
	for (char *p = line;; n++) {
		char *end;
		errno = 0;
		double v = strtod(p, &end);
		while (*end == ' ' || *end == '\t')
			end++;
		if (end == p || (*end != ',' && *end != 0) || errno == ERANGE)
			return fail(c, "%s:%d: field %d is not a number", path, ln, n + 1);
		size_t at = (size_t)c->rows * (size_t)(c->cols ? c->cols : 0) + (size_t)n;
		if (at >= INT32_MAX)
			return fail(c, "%s:%d: too many values", path, ln);
		if (at >= *cap) {
			size_t nc = *cap ? *cap * 2 : 1024;
			double *q = realloc(c->v, nc * sizeof *q);
			if (!q)
				return fail(c, "%s: out of memory", path);
			c->v = q;
			*cap = nc;
		}
		c->v[at] = v;
		if (*end == 0)
			break;
		p = end + 1;
	}
	if (c->rows == 0)
		c->cols = n + 1;
	else if (n + 1 != c->cols)
		return fail(c, "%s:%d: %d fields, but the first row has %d", path, ln, n + 1,
			    c->cols);
	c->rows++;
	return NULL;
}

const char *gradc_csv_read(const char *path, int skip, gradc_csv *c)
{
	memset(c, 0, sizeof *c);
	FILE *f = fopen(path, "r");
	if (!f)
		return fail(c, "cannot open '%s': %s", path, strerror(errno));
	char line[1 << 16];
	size_t cap = 0;
	const char *err = NULL;
	for (int ln = 1; !err && fgets(line, sizeof line, f); ln++) {
		size_t len = strlen(line);
		if (len == sizeof line - 1 && line[len - 1] != '\n') {
			err = fail(c, "%s:%d: line too long", path, ln);
			break;
		}
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (ln <= skip || strspn(line, " \t") == len)
			continue;
		err = parse_line(c, line, &cap, path, ln);
	}
	fclose(f);
	if (!err && c->rows == 0)
		err = fail(c, "%s: no data rows", path);
	return err;
}
