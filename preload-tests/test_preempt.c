/* Preemption (issue 19 §2): a thread that spins without calling anything must not keep its
 * OS thread from the others, as natively the OS runs them meanwhile. Under the preload every
 * case hung (the watchdog ends it with a failure) before the monitor thread preempted spinners.
 * 1. A green thread spins on an atomic that another green thread, runnable, sets (redis's main
 *    thread waiting for its I/O threads' counter).
 * 2. main spins in a loop with no calls while a green thread sleeps 10 ms at a time: the
 *    sleeper completes its rounds while main spins (progress, not timing).
 * 3. Registers survive preemption: a spinner computes with doubles in SSE vectors and plain
 *    integers while another thread computes with every vector register, and its result is the
 *    one the same computation gives undisturbed; the same in 256-bit AVX registers where the
 *    CPU has them.
 * 4. The program's own handler for the monitor's signal (SIGURG) runs when the program sends
 *    it, sigaction reports it, and preemption still works with it installed.
 * 5. Spinners and allocators mixed: threads that malloc, fill, check and free blocks of many
 *    sizes while others spin until they are done; no preemption lands inside malloc (the heap
 *    stays whole: every block keeps its pattern) and the spinners end.
 * 6. A spin that starts after its hub switched at every look for a while (the monitor's tick
 *    lengthens then): two threads yield to each other for 10 ms, then one spins on a flag
 *    that the other, runnable, sets once it sees the spin; twenty rounds, so that the spin
 *    starts at every point of the monitor's tick.
 * 7. AVX registers survive preemption at every stack alignment: a spinner aligns its own stack
 *    pointer to each of the eight 8-byte offsets in 64 and adds in a ymm register while
 *    another thread clobbers them. The handler once pushed the return address right below the
 *    red zone, where the kernel's signal frame still was: with the stack pointer 8 past a
 *    multiple of 64 that overwrote the frame's FP_XSTATE_MAGIC2, and the sigreturn restored
 *    only the SSE halves (numpy's OpenBLAS kernels computed wrong products). */
#include "gwtest.h"
#include <pthread.h>
#include <stdatomic.h>

static atomic_int flag;

static void *spin_until_flag(void *arg) {
    (void)arg;
    long spins = 0;
    while (!atomic_load_explicit(&flag, memory_order_relaxed)) spins++;
    return (void *)spins;
}

static void *set_flag(void *arg) {
    (void)arg;
    atomic_store(&flag, 1);
    return NULL;
}

static void spin_on_atomic(void) {
    gw_phase = "a green thread spins on an atomic another green thread sets";
    atomic_store(&flag, 0);
    pthread_t spinner, setter;
    CHECK_EQ(pthread_create(&spinner, NULL, spin_until_flag, NULL), 0);
    usleep(1000); /* the spinner runs first */
    CHECK_EQ(pthread_create(&setter, NULL, set_flag, NULL), 0);
    CHECK_EQ(pthread_join(spinner, NULL), 0);
    CHECK_EQ(pthread_join(setter, NULL), 0);
}

#define SLEEPS 20
static atomic_int slept;

static void *sleeper(void *arg) {
    (void)arg;
    for (int i = 0; i < SLEEPS; i++) {
        usleep(10 * 1000);
        atomic_fetch_add_explicit(&slept, 1, memory_order_relaxed);
    }
    return NULL;
}

static void main_spins_while_a_thread_sleeps(void) {
    gw_phase = "main spins with no calls while a green thread sleeps in a loop";
    atomic_store(&slept, 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, sleeper, NULL), 0);
    unsigned long x = 1;
    while (atomic_load_explicit(&slept, memory_order_relaxed) < SLEEPS)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    CHECK_EQ(atomic_load(&slept), SLEEPS);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(x != 0 || x == 0, "keeps x");
}

typedef double v2d __attribute__((vector_size(16)));

/* `rounds` steps of a computation held in vector and integer registers; `stop`, if given, ends
 * it early (its rounds are then returned in *done). */
static void compute(long rounds, atomic_int *stop, long *done, v2d out[4], unsigned long *mix) {
    v2d a = {1.0, 2.0}, b = {3.0, 5.0}, c = {7.0, 11.0}, d = {13.0, 17.0};
    const v2d k = {1.0000001, 0.9999999}, e = {1e-7, -1e-7};
    unsigned long m = 0x9e3779b97f4a7c15UL;
    long i = 0;
    for (; rounds < 0 || i < rounds; i++) {
        if (stop && (i & 1023) == 0 && atomic_load_explicit(stop, memory_order_relaxed)) break;
        a = a * k + e;
        b = b * k - e;
        c = c * k + b * e;
        d = d * k - a * e;
        m = (m ^ (m >> 29)) * 0xbf58476d1ce4e5b9UL + (unsigned long)i;
    }
    out[0] = a, out[1] = b, out[2] = c, out[3] = d;
    *mix = m;
    if (done) *done = i;
}

static atomic_int clobbered;

/* Fills every vector register with other values, again and again, then lets the spinner know. */
static void *clobber_registers(void *arg) {
    (void)arg;
    volatile double seed = 3.25;
    for (int round = 0; round < 50; round++) {
        double s = seed + round;
        __asm__ volatile("movq %0, %%xmm0\n\t"
                         "pshufd $0x44, %%xmm0, %%xmm0\n\t"
                         "movaps %%xmm0, %%xmm1\n\tmovaps %%xmm0, %%xmm2\n\tmovaps %%xmm0, %%xmm3\n\t"
                         "movaps %%xmm0, %%xmm4\n\tmovaps %%xmm0, %%xmm5\n\tmovaps %%xmm0, %%xmm6\n\t"
                         "movaps %%xmm0, %%xmm7\n\tmovaps %%xmm0, %%xmm8\n\tmovaps %%xmm0, %%xmm9\n\t"
                         "movaps %%xmm0, %%xmm10\n\tmovaps %%xmm0, %%xmm11\n\tmovaps %%xmm0, %%xmm12\n\t"
                         "movaps %%xmm0, %%xmm13\n\tmovaps %%xmm0, %%xmm14\n\tmovaps %%xmm0, %%xmm15\n\t"
                         :
                         : "r"(s)
                         : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                           "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
        usleep(2000);
    }
    atomic_store(&clobbered, 1);
    return NULL;
}

static void *vector_spinner(void *arg) {
    (void)arg;
    long done = 0;
    v2d got[4], want[4];
    unsigned long got_mix, want_mix;
    compute(-1, &clobbered, &done, got, &got_mix);
    compute(done, NULL, NULL, want, &want_mix);
    CHECK(memcmp(got, want, sizeof got) == 0, "vector registers changed across preemption");
    CHECK_EQ(got_mix, want_mix);
    return NULL;
}

static void registers_survive(void) {
    gw_phase = "a spinner computing in vector registers while another thread clobbers them";
    atomic_store(&clobbered, 0);
    gw_run_pair(vector_spinner, clobber_registers);
}

/* The same with the upper halves of the AVX registers (what fxsave would not keep). */
typedef double v4d __attribute__((vector_size(32)));

__attribute__((target("avx"))) static void compute_wide(long rounds, atomic_int *stop, long *done, v4d out[4]) {
    v4d a = {1.0, 2.0, 3.0, 4.0}, b = {5.0, 6.0, 7.0, 8.0}, c = {9.0, 10.0, 11.0, 12.0}, d = {13, 14, 15, 16};
    const v4d k = {1.0000001, 0.9999999, 1.0000002, 0.9999998}, e = {1e-7, -1e-7, 2e-7, -2e-7};
    long i = 0;
    for (; rounds < 0 || i < rounds; i++) {
        if (stop && (i & 1023) == 0 && atomic_load_explicit(stop, memory_order_relaxed)) break;
        a = a * k + e;
        b = b * k - e;
        c = c * k + b * e;
        d = d * k - a * e;
    }
    out[0] = a, out[1] = b, out[2] = c, out[3] = d;
    if (done) *done = i;
}

__attribute__((target("avx"))) static void *clobber_wide(void *arg) {
    (void)arg;
    for (int round = 0; round < 50; round++) {
        double s = 5.5 + round;
        __asm__ volatile("vbroadcastsd %0, %%ymm0\n\t"
                         "vmovapd %%ymm0, %%ymm1\n\tvmovapd %%ymm0, %%ymm2\n\tvmovapd %%ymm0, %%ymm3\n\t"
                         "vmovapd %%ymm0, %%ymm4\n\tvmovapd %%ymm0, %%ymm5\n\tvmovapd %%ymm0, %%ymm6\n\t"
                         "vmovapd %%ymm0, %%ymm7\n\tvmovapd %%ymm0, %%ymm8\n\tvmovapd %%ymm0, %%ymm9\n\t"
                         "vmovapd %%ymm0, %%ymm10\n\tvmovapd %%ymm0, %%ymm11\n\tvmovapd %%ymm0, %%ymm12\n\t"
                         "vmovapd %%ymm0, %%ymm13\n\tvmovapd %%ymm0, %%ymm14\n\tvmovapd %%ymm0, %%ymm15\n\t"
                         :
                         : "m"(s)
                         : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                           "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
        usleep(2000);
    }
    atomic_store(&clobbered, 1);
    return NULL;
}

static void *wide_spinner(void *arg) {
    (void)arg;
    long done = 0;
    v4d got[4], want[4];
    compute_wide(-1, &clobbered, &done, got);
    compute_wide(done, NULL, NULL, want);
    CHECK(memcmp(got, want, sizeof got) == 0, "AVX registers changed across preemption");
    return NULL;
}

static void wide_registers_survive(void) {
    if (!__builtin_cpu_supports("avx")) return;
    gw_phase = "a spinner computing in AVX registers while another thread clobbers them";
    atomic_store(&clobbered, 0);
    gw_run_pair(wide_spinner, clobber_wide);
}

static volatile sig_atomic_t urgent;
static void on_urgent(int sig) {
    (void)sig;
    urgent++;
}

static void own_sigurg_handler(void) {
    gw_phase = "the program's own SIGURG handler";
    struct sigaction sa = {.sa_handler = on_urgent, .sa_flags = SA_RESTART}, old;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGURG, &sa, NULL), 0);
    CHECK_EQ(sigaction(SIGURG, NULL, &old), 0);
    CHECK(old.sa_handler == on_urgent, "sigaction reports another handler");
    CHECK_EQ(pthread_kill(pthread_self(), SIGURG), 0);
    CHECK_EQ(urgent, 1);
    CHECK_EQ(kill(getpid(), SIGURG), 0);
    for (int i = 0; i < 100 && urgent < 2; i++) usleep(1000);
    CHECK_EQ(urgent, 2);
    /* Preemption with the handler installed. */
    spin_on_atomic();
    sa.sa_handler = SIG_DFL;
    CHECK_EQ(sigaction(SIGURG, &sa, NULL), 0);
}

#define ALLOCATORS 4
#define SPINNERS 2
static atomic_int allocators_done;

static void *spin_until_allocators_done(void *arg) {
    (void)arg;
    unsigned long x = 7;
    while (atomic_load_explicit(&allocators_done, memory_order_relaxed) < ALLOCATORS) x = x * 33 + 1;
    return (void *)x;
}

static void *allocate(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    enum { SLOTS = 64 };
    unsigned char *blocks[SLOTS] = {0};
    size_t sizes[SLOTS] = {0};
    for (int round = 0; round < 200000; round++) {
        seed = seed * 1103515245 + 12345;
        int slot = (int)(seed >> 16) % SLOTS;
        if (blocks[slot]) {
            for (size_t i = 0; i < sizes[slot]; i++)
                CHECK(blocks[slot][i] == (unsigned char)(slot + sizes[slot]), "block %d changed", slot);
            free(blocks[slot]);
        }
        sizes[slot] = 1 + (seed >> 8) % ((seed & 1) ? 64 : 4096);
        blocks[slot] = malloc(sizes[slot]);
        CHECK(blocks[slot] != NULL, "malloc");
        memset(blocks[slot], slot + (int)sizes[slot], sizes[slot]);
    }
    for (int slot = 0; slot < SLOTS; slot++) free(blocks[slot]);
    atomic_fetch_add(&allocators_done, 1);
    return NULL;
}

static void spinners_and_allocators(void) {
    gw_phase = "spinners and allocators mixed";
    atomic_store(&allocators_done, 0);
    pthread_t spinners[SPINNERS], allocators[ALLOCATORS];
    for (int i = 0; i < SPINNERS; i++)
        CHECK_EQ(pthread_create(&spinners[i], NULL, spin_until_allocators_done, NULL), 0);
    for (int i = 0; i < ALLOCATORS; i++)
        CHECK_EQ(pthread_create(&allocators[i], NULL, allocate, (void *)(uintptr_t)(i + 1)), 0);
    for (int i = 0; i < ALLOCATORS; i++) CHECK_EQ(pthread_join(allocators[i], NULL), 0);
    for (int i = 0; i < SPINNERS; i++) CHECK_EQ(pthread_join(spinners[i], NULL), 0);
}

#define SWITCH_ROUNDS 20
static atomic_int spinning, released;

static long ms_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void yield_for_10ms(void) {
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (ms_since(&start) < 10) sched_yield();
}

static void *yield_then_spin(void *arg) {
    (void)arg;
    yield_for_10ms();
    atomic_store(&spinning, 1);
    unsigned long x = 3;
    while (!atomic_load_explicit(&released, memory_order_relaxed)) x = x * 5 + 1;
    return (void *)x;
}

static void *yield_then_release(void *arg) {
    (void)arg;
    yield_for_10ms();
    while (!atomic_load(&spinning)) sched_yield();
    atomic_store(&released, 1);
    return NULL;
}

static void spin_after_switching(void) {
    gw_phase = "a spin that starts after its hub switched at every look";
    for (int round = 0; round < SWITCH_ROUNDS; round++) {
        atomic_store(&spinning, 0);
        atomic_store(&released, 0);
        gw_run_pair(yield_then_spin, yield_then_release);
    }
}

/* Adds {1, 2, 3, 4} into ymm3 until *stop, on a stack pointer `pad` below a multiple of 64;
 * the sum goes to out, the count is returned. */
__attribute__((target("avx"))) static long add_at_alignment(long pad, atomic_int *stop, double out[4]) {
    static const double step[4] = {1.0, 2.0, 3.0, 4.0};
    long n;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "and $-64, %%rsp\n\t"
                     "sub %[pad], %%rsp\n\t"
                     "vmovupd (%[step]), %%ymm2\n\t"
                     "vxorpd %%ymm3, %%ymm3, %%ymm3\n\t"
                     "xor %[n], %[n]\n"
                     "1:\n\t"
                     "vaddpd %%ymm2, %%ymm3, %%ymm3\n\t"
                     "inc %[n]\n\t"
                     "testl $1023, %k[n]\n\t"
                     "jnz 1b\n\t"
                     "cmpl $0, (%[stop])\n\t"
                     "je 1b\n\t"
                     "vmovupd %%ymm3, (%[out])\n\t"
                     "mov %%r12, %%rsp\n\t"
                     : [n] "=&r"(n)
                     : [pad] "r"(pad), [step] "r"(step), [stop] "r"(stop), [out] "r"(out)
                     : "r12", "xmm2", "xmm3", "memory", "cc");
    return n;
}

static long alignment_pad;

static void *aligned_spinner(void *arg) {
    (void)arg;
    double sum[4];
    long n = add_at_alignment(alignment_pad, &clobbered, sum);
    for (int lane = 0; lane < 4; lane++)
        CHECK(sum[lane] == (double)n * (lane + 1), "ymm lane %d lost across preemption, stack pointer %ld below a "
              "multiple of 64 (%.0f after %ld adds)", lane, alignment_pad, sum[lane], n);
    return NULL;
}

static void wide_registers_survive_at_every_alignment(void) {
    if (!__builtin_cpu_supports("avx")) return;
    gw_phase = "spinners in AVX registers at each stack alignment while another thread clobbers them";
    for (alignment_pad = 0; alignment_pad < 64; alignment_pad += 8) {
        atomic_store(&clobbered, 0);
        gw_run_pair(aligned_spinner, clobber_wide);
    }
}

int main(void) {
    gw_watchdog("test_preempt", 30);
    spin_on_atomic();
    main_spins_while_a_thread_sleeps();
    registers_survive();
    wide_registers_survive();
    own_sigurg_handler();
    spinners_and_allocators();
    spin_after_switching();
    wide_registers_survive_at_every_alignment();
    return 0;
}
