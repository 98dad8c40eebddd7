/* Shared helpers for the bench programs. These are plain pthread/socket C programs: they know
 * nothing of greenworld and run the same natively and under LD_PRELOAD. Each prints one
 * machine-readable line "RESULT key=value ..." on stdout. */
#ifndef BENCH_H
#define BENCH_H
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* A line "Key:   123 kB" of /proc/self/status (or another pid's), in kB; -1 if absent. */
static inline long proc_status_kb(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    char line[256];
    long v = -1;
    size_t k = strlen(key);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, k) == 0 && line[k] == ':') {
            v = strtol(line + k + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}
#endif
