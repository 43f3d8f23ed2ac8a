/* microbatch.c: micro-batches for --fit (not built yet). */
#include "gradc.h"

bool try_micro(const Graph *fwd, const Options *o, Fit *r, int64_t *least, Fit *why)
{
	(void)fwd, (void)o, (void)r, (void)least, (void)why;
	return false;
}

int micro_sweep(const Graph *fwd, const Options *o, struct Row *row, int n, int max)
{
	(void)fwd, (void)o, (void)row, (void)max;
	return n;
}
