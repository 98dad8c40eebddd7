// A function-local static whose constructor blocks (a sleep: a green thread parks in it) while
// other threads reach the same static: natively they wait until the first one's constructor
// has finished, then all see the one object. libstdc++ takes its guard without any waiting
// when glibc's __libc_single_threaded says the process has one thread, and throws
// recursive_init_error (abort) when it finds the guard pending; so that flag must go false
// with the first green thread, as glibc's pthread_create makes it, and the guard's futex wait
// must park the waiting green thread. Also: shared_ptr copies from many threads keep an exact
// count (libstdc++ uses plain increments while the flag says single-threaded).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sys/single_threaded.h>
#include <thread>
#include <unistd.h>
#include <vector>

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);       \
            std::fprintf(stderr, __VA_ARGS__);                                                  \
            std::fprintf(stderr, "\n");                                                         \
            std::_Exit(1);                                                                      \
        }                                                                                       \
    } while (0)

static std::atomic<int> constructions{0};

struct Slow {
    int value;
    Slow() : value(42) {
        constructions++;
        usleep(50 * 1000);
    }
};

static Slow &the_slow() {
    static Slow slow;
    return slow;
}

int main() {
    constexpr int THREADS = 16;
    std::vector<std::thread> threads;
    std::atomic<int> seen{0};
    for (int i = 0; i < THREADS; i++)
        threads.emplace_back([&] {
            if (the_slow().value == 42) seen++;
        });
    for (auto &t : threads) t.join();
    CHECK(constructions == 1, "%d constructions", constructions.load());
    CHECK(seen == THREADS, "%d of %d threads saw the object", seen.load(), THREADS);
    CHECK(__libc_single_threaded == 0, "__libc_single_threaded still says one thread after %d",
          THREADS);

    // shared_ptr counts across threads that switch in the middle of their copies.
    auto shared = std::make_shared<int>(7);
    threads.clear();
    for (int i = 0; i < THREADS; i++)
        threads.emplace_back([shared] {
            for (int k = 0; k < 2000; k++) {
                auto copy = shared;
                if (k % 500 == 0) usleep(100);
                CHECK(*copy == 7, "bad value");
            }
        });
    for (auto &t : threads) t.join();
    CHECK(shared.use_count() == 1, "use_count %ld after every copy ended", shared.use_count());
    std::printf("ok: one construction seen by %d threads; shared_ptr count exact\n", THREADS);
    return 0;
}
