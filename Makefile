# greenworld: `make` builds the library and runs the demo; `make test` runs every test.
CC      ?= cc
CFLAGS  ?= -O2 -g -Wall -Wextra -Wno-unused-parameter
LIB     := target/release/libgreenworld.so
TBIN    := target/preload-tests
TEST_SRC := $(filter-out preload-tests/lib%.c,$(wildcard preload-tests/*.c))
TEST_BIN := $(patsubst preload-tests/%.c,$(TBIN)/%,$(TEST_SRC))
TEST_LIB := $(patsubst preload-tests/%.c,$(TBIN)/%.so,$(wildcard preload-tests/lib*.c))
# Tests linked against the library itself ("// link: greenworld"): run natively, they see it
# linked and not preloaded; under the preload, ld.so takes the preloaded copy for its SONAME.
TEST_LINKED := $(patsubst preload-tests/%.c,$(TBIN)/%,$(shell grep -l '^// link: greenworld' preload-tests/*.c))

.PHONY: all build demo test test-python test-programs preload-tests lint clean

all: demo

build: $(LIB)

$(LIB): Cargo.toml build.rs $(wildcard Cargo.lock) $(shell find src -name '*.rs')
	cargo build --release

preload-tests: $(TEST_LIB) $(TEST_BIN)

$(TBIN)/lib%.so: preload-tests/lib%.c preload-tests/gwtest.h
	@mkdir -p $(TBIN)
	$(CC) $(CFLAGS) -shared -fPIC -o $@ $< -pthread -ldl

# A test that names a preload-tests library in a "// link: libNAME" line is linked against it;
# "// link: greenworld", against the library (by its SONAME, a link beside the tests).
$(TBIN)/%: preload-tests/%.c preload-tests/gwtest.h $(TEST_LIB)
	@mkdir -p $(TBIN)
	$(CC) $(CFLAGS) -Iinclude -o $@ $< $$(sed -n -e 's|^// link: lib\([a-z0-9_]*\).*|-L$(TBIN) -l\1 -Wl,-rpath,$$ORIGIN|p' \
		-e 's|^// link: greenworld.*|$(TBIN)/libgreenworld.so.0 -Wl,-rpath,$$ORIGIN|p' $<) -pthread -ldl

$(TEST_LINKED): $(TBIN)/libgreenworld.so.0 include/greenworld.h

$(TBIN)/libgreenworld.so.0: $(LIB)
	@mkdir -p $(TBIN)
	ln -sf ../release/libgreenworld.so $@

# The demo: 10 000 pthreads that each sleep 100 ms twice, under greenrun.
demo: $(LIB) $(TBIN)/demo_sleepers
	scripts/greenrun $(TBIN)/demo_sleepers

test: $(LIB) preload-tests
	scripts/run-tests

# CPython's threading suites, natively and under the preload (make test runs them too).
test-python: $(LIB)
	scripts/test-python

# bash pipelines, python3 subprocesses and make -j4, natively and under greenrun (in make test).
test-programs: $(LIB)
	scripts/test-programs

lint:
	cargo fmt --check
	cargo clippy --release -- -D warnings

clean:
	cargo clean

# `make bench`: the same C programs (bench/*.c) natively, pinned native and under the preload;
# see bench/run for BENCH_RUNS, BENCH_ECHO_10K and the other knobs.
BENCH_BIN  := target/bench
BENCH_PROG := $(patsubst bench/%.c,$(BENCH_BIN)/%,$(wildcard bench/*.c))

.PHONY: bench
bench: $(LIB) $(BENCH_PROG)
	bench/run

$(BENCH_BIN)/%: bench/%.c bench/bench.h
	@mkdir -p $(BENCH_BIN)
	$(CC) $(CFLAGS) -o $@ $< -pthread
