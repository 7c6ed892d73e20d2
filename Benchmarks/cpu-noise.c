// Steals a server's core on a schedule: spins for BURN_MS out of every PERIOD_MS, like the
// kernel threads (DAMON's kdamond, rcu_preempt) that take the bench's server CPU on this VM for
// 1-12 ms at a time. Used by Benchmarks/latency-ab --noise; not part of the library.
//
//   cc -O2 -o .build/cpu-noise Benchmarks/cpu-noise.c && taskset -c 1 .build/cpu-noise 1 20
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: cpu-noise BURN_MS PERIOD_MS\n");
        return 2;
    }
    double burn = atof(argv[1]) / 1e3, period = atof(argv[2]) / 1e3;
    if (burn <= 0 || period <= burn) {
        fprintf(stderr, "cpu-noise: need 0 < BURN_MS < PERIOD_MS\n");
        return 2;
    }
    for (;;) {
        double start = now();
        while (now() - start < burn) {}
        usleep((useconds_t)((period - burn) * 1e6));
    }
}
