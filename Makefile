# greenworld: `make` builds the library and runs the demo; `make test` runs every test.
CC      ?= cc
CFLAGS  ?= -O2 -g -Wall -Wextra -Wno-unused-parameter
LIB     := target/release/libgreenworld.so
TBIN    := target/preload-tests
TEST_SRC := $(filter-out preload-tests/lib%.c preload-tests/pq_%.c,$(wildcard preload-tests/*.c))
TEST_BIN := $(patsubst preload-tests/%.c,$(TBIN)/%,$(TEST_SRC)) \
	$(patsubst preload-tests/%.cc,$(TBIN)/%,$(wildcard preload-tests/test_*.cc))
TEST_LIB := $(patsubst preload-tests/%.c,$(TBIN)/%.so,$(wildcard preload-tests/lib*.c))
# Tests linked against the library itself ("// link: greenworld"): run natively, they see it
# linked and not preloaded; under the preload, ld.so takes the preloaded copy for its SONAME.
TEST_LINKED := $(patsubst preload-tests/%.c,$(TBIN)/%,$(shell grep -l '^// link: greenworld' preload-tests/*.c))

.PHONY: all build demo test test-hubs test-install test-postgres test-aarch64 test-python test-programs preload-tests lint clean install uninstall header

all: demo

build: $(LIB)

$(LIB): Cargo.toml build.rs $(wildcard Cargo.lock) $(shell find src -name '*.rs')
	cargo build --release

preload-tests: $(TEST_LIB) $(TEST_BIN)

$(TBIN)/lib%.so: preload-tests/lib%.c $(wildcard preload-tests/*.h)
	@mkdir -p $(TBIN)
	$(CC) $(CFLAGS) -shared -fPIC -o $@ $< -pthread -ldl

# A test that names a preload-tests library in a "// link: libNAME" line is linked against it;
# "// link: greenworld", against the library (by its SONAME, a link beside the tests); a
# "// build: FLAGS" line adds compiler flags (-no-pie).
$(TBIN)/%: preload-tests/%.c $(wildcard preload-tests/*.h) $(TEST_LIB)
	@mkdir -p $(TBIN)
	$(CC) $(CFLAGS) $$(sed -n 's|^// build: ||p' $<) -Iinclude -o $@ $< $$(sed -n -e 's|^// link: lib\([a-z0-9_]*\).*|-L$(TBIN) -l\1 -Wl,-rpath,$$ORIGIN|p' \
		-e 's|^// link: greenworld.*|$(TBIN)/libgreenworld.so.0 -Wl,-rpath,$$ORIGIN|p' $<) -pthread -ldl

# C++ tests (thread_local objects with destructors).
$(TBIN)/%: preload-tests/%.cc
	@mkdir -p $(TBIN)
	$(CXX) -O2 -g -Wall -Wextra -o $@ $< -pthread -ldl

$(TEST_LINKED): $(TBIN)/libgreenworld.so.0 include/greenworld.h

$(TBIN)/libgreenworld.so.0: $(LIB)
	@mkdir -p $(TBIN)
	ln -sf ../release/libgreenworld.so $@

# The demo: 10 000 pthreads that each sleep 100 ms twice, under greenrun.
demo: $(LIB) $(TBIN)/demo_sleepers
	scripts/greenrun $(TBIN)/demo_sleepers

test: $(LIB) preload-tests
	scripts/run-tests

# Only the preload tests' third pass of make test: each under the preload with its green threads
# spread over two hubs (GREENWORLD_HUBS=2).
test-hubs: $(LIB) preload-tests
	scripts/run-tests --hubs 2

# CPython's threading suites, natively and under the preload (make test runs them too).
test-python: $(LIB)
	scripts/test-python

# make install into a temporary prefix, examples/fetch.c and examples/curl_fetch.c built with
# pkg-config and run, make uninstall (in make test).
test-install: $(LIB)
	scripts/test-install

# eventlet's psycopg: a PostgreSQL server of its own, 100 green libpq clients (in make test).
test-postgres: $(LIB)
	scripts/test-postgres

# import_patched on aarch64: the library and the scoped tests cross-built, run under qemu-aarch64
# (not in make test: it needs the Rust target, a cross compiler and qemu-user).
test-aarch64:
	scripts/test-aarch64

# bash pipelines, python3 subprocesses and make -j4, natively and under greenrun (in make test).
test-programs: $(LIB)
	scripts/test-programs

# `make install PREFIX=/usr/local DESTDIR=`: the library as a system library (a versioned file,
# its SONAME link and the link-time name), the header, pkg-config's file, greenrun (which finds
# ../lib/libgreenworld.so.0 from where it is installed), and the README and licenses.
# `make uninstall` with the same PREFIX and DESTDIR removes exactly those.
PREFIX  ?= /usr/local
DESTDIR ?=
# Run as root with no DESTDIR (scripts/test-install sets it to true: no system cache to touch).
LDCONFIG ?= ldconfig
VERSION := $(shell sed -n '/^\[package\]/,/^\[/ s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
I_LIB   := $(DESTDIR)$(PREFIX)/lib
I_DOC   := $(DESTDIR)$(PREFIX)/share/doc/greenworld
INSTALLED := $(I_LIB)/libgreenworld.so.$(VERSION) $(I_LIB)/libgreenworld.so.0 $(I_LIB)/libgreenworld.so \
	$(I_LIB)/pkgconfig/greenworld.pc $(DESTDIR)$(PREFIX)/include/greenworld.h \
	$(DESTDIR)$(PREFIX)/bin/greenrun $(I_DOC)/README.md $(I_DOC)/LICENSE-MIT $(I_DOC)/LICENSE-APACHE

install: $(LIB)
	install -d $(I_LIB)/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(I_DOC)
	install -m 755 $(LIB) $(I_LIB)/libgreenworld.so.$(VERSION)
	ln -sfn libgreenworld.so.$(VERSION) $(I_LIB)/libgreenworld.so.0
	ln -sfn libgreenworld.so.0 $(I_LIB)/libgreenworld.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' greenworld.pc.in >$(I_LIB)/pkgconfig/greenworld.pc
	install -m 644 include/greenworld.h $(DESTDIR)$(PREFIX)/include/greenworld.h
	install -m 755 scripts/greenrun $(DESTDIR)$(PREFIX)/bin/greenrun
	install -m 644 README.md LICENSE-MIT LICENSE-APACHE $(I_DOC)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null; then $(LDCONFIG); fi

uninstall:
	rm -f $(INSTALLED)
	-rmdir $(I_DOC) 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null; then $(LDCONFIG); fi

# include/greenworld.h's green twins, written afresh from the hook rows (cargo test fails while
# the checked-in header differs from them).
header:
	GREENWORLD_WRITE_HEADER=1 cargo test --release --quiet --lib the_header_declares_every_twin

lint:
	cargo fmt --check
	cargo clippy --release -- -D warnings -D clippy::undocumented_unsafe_blocks
	scripts/check-layers

clean:
	cargo clean

# `make bench`: the same C programs (bench/*.c) natively, pinned native and under the preload,
# and their Go peer (bench/go/peer.go) when `go` is installed; see bench/run for BENCH_RUNS,
# BENCH_GO, BENCH_ECHO_10K and the other knobs.
BENCH_BIN  := target/bench
BENCH_PROG := $(patsubst bench/%.c,$(BENCH_BIN)/%,$(wildcard bench/*.c))

.PHONY: bench
bench: $(LIB) $(BENCH_PROG)
	bench/run

$(BENCH_BIN)/%: bench/%.c bench/bench.h
	@mkdir -p $(BENCH_BIN)
	$(CC) $(CFLAGS) -o $@ $< -pthread
