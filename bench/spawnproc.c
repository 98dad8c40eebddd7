/* spawnproc: start short-lived processes from one or many threads at once.
 *   spawnproc spawn  T [N]  T threads share N posix_spawn("/bin/true") + waitpid
 *   spawnproc system T [N]  T threads share N system("true")
 * Every thread starts at once (a barrier) and does its share back to back. Children inherit
 * the environment, as a program's would (under the preload, LD_PRELOAD too).
 * RESULT ns_per_op = wall ns from main reaching the barrier to the last thread's end, per process. */
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include "bench.h"

extern char **environ;

static int use_system;
static int per_thread[1024];
static pthread_barrier_t start;

static void one(void) {
    int status;
    if (use_system) {
        status = system("true");
        if (status == -1) die("spawnproc: system: %s", strerror(errno));
    } else {
        static char *const argv[] = {"true", NULL};
        pid_t pid;
        int rc = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
        if (rc) die("spawnproc: posix_spawn: %s", strerror(rc));
        pid_t got;
        while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
        }
        if (got != pid) die("spawnproc: waitpid: %s", strerror(errno));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("spawnproc: child status %#x", status);
}

static void *worker(void *arg) {
    int k = per_thread[(intptr_t)arg];
    pthread_barrier_wait(&start);
    for (int i = 0; i < k; i++) one();
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "spawn";
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    int n = argc > 3 ? atoi(argv[3]) : 1000;
    use_system = strcmp(mode, "system") == 0;
    if ((!use_system && strcmp(mode, "spawn") != 0) || threads < 1 || threads > 1024 || n < threads)
        die("usage: spawnproc spawn|system T [N]  (1 <= T <= 1024, N >= T)");
    for (int i = 0; i < threads; i++) per_thread[i] = n / threads + (i < n % threads);
    for (int i = 0; i < 10; i++) one(); /* warm-up: lazy binding, page cache of the child */
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    if (!t) die("spawnproc: out of memory");
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        int rc = pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
        if (rc) die("spawnproc: pthread_create: %s", strerror(rc));
    }
    uint64_t t0 = now_ns(); /* before the barrier: no worker can start before main reaches it */
    pthread_barrier_wait(&start);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    uint64_t t1 = now_ns();
    printf("RESULT ns_per_op=%.1f processes=%d threads=%d mode=%s\n", (double)(t1 - t0) / n, n, threads, mode);
    return 0;
}
