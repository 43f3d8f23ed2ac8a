/* peak.c: the fp32 multiply-add peak of one core, measured (bench.sh).
 *
 * NACC independent accumulators of the widest vector the build targets
 * (GNU vector extensions, VBYTES from the compiler's macros: 64 with
 * AVX-512, 32 with AVX, else 16), each updated a = a * b + c in a loop
 * that the compiler turns into one FMA per accumulator (-O3, contraction
 * on): enough independent chains to cover the FMA latency (4 cycles) on
 * two pipes.  Prints "peak GFLOPS" (2 flops per lane per FMA), the best
 * of 300 runs of about 1 ms (short, so that some run is not preempted on
 * a loaded machine, where a run can only be slowed down).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
#define NACC 12
#define LANES (VBYTES / 4)

typedef float vf __attribute__((vector_size(VBYTES)));

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

volatile float sink;

static double run(long iters)
{
	vf a[NACC], b, c;
	for (int l = 0; l < LANES; l++) {
		b[l] = 0.999999f;
		c[l] = 1e-7f;
	}
	for (int i = 0; i < NACC; i++)
		for (int l = 0; l < LANES; l++)
			a[i][l] = (float)(i + l);
	double t0 = now();
	for (long k = 0; k < iters; k++) {
		for (int i = 0; i < NACC; i++)
			a[i] = a[i] * b + c;
		__asm__ volatile("" : "+x"(b));  /* keep the loop */
	}
	double t = now() - t0;
	float s = 0;
	for (int i = 0; i < NACC; i++)
		for (int l = 0; l < LANES; l++)
			s += a[i][l];
	sink = s;
	return 2.0 * LANES * NACC * (double)iters / t * 1e-9;
}

int main(void)
{
	long iters = 1000;
	while (iters < (1L << 40)) {  /* calibrate to about 1 ms */
		double t0 = now();
		run(iters);
		if (now() - t0 > 0.001)
			break;
		iters *= 2;
	}
	double best = 0;
	for (int r = 0; r < 300; r++) {
		double g = run(iters);
		best = g > best ? g : best;
	}
	printf("peak %.1f GFLOP/s (%d-bit vectors, %d accumulators)\n", best, VBYTES * 8, NACC);
	return 0;
}
