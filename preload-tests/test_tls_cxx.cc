// C++ thread_local objects with constructors and destructors, in 200 std::threads: each thread
// constructs its own on first use and keeps it across parks (sleep, a contended mutex), and its
// destructor runs at that thread's end, in that thread (it sees the thread's other
// thread_locals), before join returns. Under GREENWORLD_TLS=shared green threads share their OS
// thread's thread-locals by request: not applicable.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <thread>
#include <unistd.h>

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);       \
            std::fprintf(stderr, __VA_ARGS__);                                                  \
            std::fprintf(stderr, "\n");                                                         \
            std::_Exit(1);                                                                      \
        }                                                                                       \
    } while (0)

static constexpr int THREADS = 200;
static std::atomic<int> constructed{0}, destroyed{0}, destroyed_in_own_thread{0};
static thread_local int ident = 0;

struct Tracked {
    int id;
    char tag[16];
    Tracked() : id(ident) {
        std::snprintf(tag, sizeof tag, "t%d", ident);
        constructed++;
    }
    ~Tracked() {
        destroyed++;
        if (id == ident) destroyed_in_own_thread++;
    }
};
static thread_local Tracked tracked;
static std::mutex lock;

int main() {
    const char *tls = std::getenv("GREENWORLD_TLS");
    if (dlsym(RTLD_DEFAULT, "greenworld_is_monkey_patched") && tls && std::strcmp(tls, "shared") == 0)
        return 77;
    std::thread threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        threads[i] = std::thread([i] {
            ident = i + 1;
            CHECK(tracked.id == i + 1, "thread %d got thread %d's object", i + 1, tracked.id);
            usleep(1000);
            { std::lock_guard<std::mutex> g(lock); usleep(50); }
            char want[16];
            std::snprintf(want, sizeof want, "t%d", i + 1);
            CHECK(tracked.id == i + 1 && std::strcmp(tracked.tag, want) == 0 && ident == i + 1,
                  "thread %d sees %d/%s/%d after parking", i + 1, tracked.id, tracked.tag, ident);
        });
    for (auto &t : threads) t.join();
    CHECK(constructed == THREADS, "%d constructed", constructed.load());
    CHECK(destroyed == THREADS, "%d destroyed by the joins", destroyed.load());
    CHECK(destroyed_in_own_thread == THREADS, "%d destroyed in their own thread", destroyed_in_own_thread.load());
    return 0;
}
