# fastpilot: `make run` serves the demo registry, `make test` runs every test. Both install
# what they need on a fresh Debian machine (apt for the C libraries, a virtualenv for the
# Python test peers).
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
VENV ?= .venv
APT_PACKAGES := liburing-dev libnghttp2-dev libssl-dev openssl pkg-config etcd-server etcd-client
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS ?=

.PHONY: help deps build release run test test-epoll unit interop tsan asan fuzz fuzz-build bench bench-scale profile soak venv clean

help:
	@echo "make run     build in release mode and serve the embedded demo registry (ARGS='--registry FILE ...')"
	@echo "make test    the whole test suite: Swift tests, then interop tests with real gRPC clients"
	@echo "make unit    Swift tests only"
	@echo "make interop interop tests only"
	@echo "make test-epoll  the whole test suite on the epoll backend (FASTPILOT_IO=epoll)"
	@echo "make bench   the short benchmark suite (under 5 minutes), one table"
	@echo "make bench-scale  the end-to-end scale scenarios of BENCHMARKS.md (about 10 minutes)"
	@echo "make profile SCENARIO=\"10000 10000\": a scale scenario under perf, flame graphs in bench-results/"
	@echo "make soak    SOAK_DURATION=10m of churn, reconnects and a slow client; prints the server RSS every minute"
	@echo "make tsan    Swift tests under ThreadSanitizer (TSAN_FILTER='FastPushTests\\.Push' for the push suites)"
	@echo "make asan    Swift tests under AddressSanitizer (ASAN_FILTER=... to narrow)"
	@echo "make fuzz    every libFuzzer target for FUZZ_SECONDS (60) each (FUZZ_TARGETS='proto h2' to pick)"

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

release: deps
	$(SWIFT) build -c release --product fastpilot

build: deps
	$(SWIFT) build --build-tests

run: release
	.build/release/fastpilot serve $(ARGS)

$(VENV)/.stamp: Tests/interop/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r Tests/interop/requirements.txt
	touch $@

venv: $(VENV)/.stamp

unit: build
	$(SWIFT) test --skip-build

interop: build venv
	$(VENV)/bin/python -m pytest -q Tests/interop --binary .build/debug/fastpilot

test: unit interop

# The whole test suite on the epoll backend: every EventLoopGroup created with the default
# backend (.auto) reads FASTPILOT_IO, in the Swift tests and in the server the interop tests
# start (it inherits the variable). Before the interop suite, a server is started once to check
# from its start-up line that it really runs on epoll.
EPOLL_SCRATCH ?= .build
test-epoll: deps venv
	$(SWIFT) build --build-tests --scratch-path $(EPOLL_SCRATCH)
	FASTPILOT_IO=epoll $(SWIFT) test --skip-build --scratch-path $(EPOLL_SCRATCH)
	@log=$$(mktemp); \
	FASTPILOT_IO=epoll $(EPOLL_SCRATCH)/debug/fastpilot serve --xds-address 127.0.0.1:0 --admin-address 127.0.0.1:0 2>$$log & pid=$$!; \
	for i in $$(seq 100); do grep -q 'event=started' $$log && break; sleep 0.1; done; \
	kill $$pid; wait $$pid; \
	if grep -q 'event=started.* io_backend=epoll' $$log; then echo "test-epoll: the server runs on epoll"; rm -f $$log; \
	else echo "test-epoll: the server did not start on epoll:"; cat $$log; rm -f $$log; exit 1; fi
	FASTPILOT_IO=epoll $(VENV)/bin/python -m pytest -q Tests/interop --binary $(EPOLL_SCRATCH)/debug/fastpilot

# ThreadSanitizer, in its own scratch path: every Swift test (the push pipeline's concurrency
# suites PushQueue, PushQueueStress, PushDispatcher, PushDebouncer and PushRequestMerge are the
# ones written to be raced; their stress sizes shrink under TSan). Narrow it with e.g.
# TSAN_FILTER='FastPushTests\.Push'. Known false positives (Synchronization.Mutex is invisible
# to TSan on Linux) and never-joined service threads are suppressed in
# Tests/tsan-suppressions.txt; any other report fails the run (TSan exits with 66).
TSAN_SCRATCH ?= .build-tsan
TSAN_FILTER ?=
tsan: deps
	TSAN_OPTIONS="suppressions=$(CURDIR)/Tests/tsan-suppressions.txt $(TSAN_OPTIONS)" \
	  $(SWIFT) test --scratch-path $(TSAN_SCRATCH) -c debug --sanitize=thread $(if $(TSAN_FILTER),--filter '$(TSAN_FILTER)')

# AddressSanitizer (and LeakSanitizer at exit), in its own scratch path: every Swift test. Any
# report fails the run (ASan aborts the test process; a leak report exits non-zero). Leaks kept
# alive on purpose by a few test harnesses, and false positives, are suppressed, each with its
# reason, in Tests/lsan-suppressions.txt. Narrow with e.g. ASAN_FILTER='FastPushTests\.Proto'.
ASAN_SCRATCH ?= .build-asan
ASAN_FILTER ?=
ASAN_OPTIONS ?= malloc_context_size=100:detect_leaks=1
asan: deps
	SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="$(ASAN_OPTIONS)" \
	  LSAN_OPTIONS="suppressions=$(CURDIR)/Tests/lsan-suppressions.txt:print_suppressions=0 $(LSAN_OPTIONS)" \
	  $(SWIFT) test --scratch-path $(ASAN_SCRATCH) -c debug --sanitize=address $(if $(ASAN_FILTER),--filter '$(ASAN_FILTER)')

# libFuzzer (Tests/Fuzz/README.md). One executable holds every target, chosen by FUZZ_TARGET.
# SwiftPM links executables with `--defsym main=<module>_main` and -sanitize=fuzzer links
# libFuzzer's own main whole-archive, so the two collide; instead the code gets libFuzzer's
# coverage instrumentation (-sanitize-coverage, as -sanitize=fuzzer would) plus ASan, and links
# libFuzzer without its main (libclang_rt.fuzzer_no_main); our main calls LLVMFuzzerRunDriver.
# Release (-O) for speed, with assert()s kept (-assert-config Debug).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= proto request h2 registry admin delta
FUZZ_SCRATCH ?= .build-fuzz
FUZZ_OUT ?= fuzz-artifacts
FUZZ_RSS_MB ?= 2048
FUZZ_TIMEOUT ?= 10
FUZZ_CLANG = $(dir $(realpath $(shell command -v $(SWIFT))))clang
FUZZER_LIB = $(shell $(FUZZ_CLANG) -print-resource-dir)/lib/linux/libclang_rt.fuzzer_no_main-$(shell uname -m).a
FUZZ_BUILD_FLAGS = -c release --scratch-path $(FUZZ_SCRATCH) --product fastpilot-fuzz \
  -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
  -Xswiftc -assert-config -Xswiftc Debug -Xswiftc -DFUZZING -Xlinker $(FUZZER_LIB) -Xlinker -lstdc++

fuzz-build: deps
	@test -f "$(FUZZER_LIB)" || { echo "no libFuzzer runtime at $(FUZZER_LIB) (needs a swift.org Linux toolchain)"; exit 1; }
	$(SWIFT) build $(FUZZ_BUILD_FLAGS)

fuzz: fuzz-build
	FUZZ_OUT=$(FUZZ_OUT) FUZZ_RSS_MB=$(FUZZ_RSS_MB) FUZZ_TIMEOUT=$(FUZZ_TIMEOUT) \
	  bash Tests/Fuzz/run-fuzz.sh $(FUZZ_SCRATCH)/release/fastpilot-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: deps
	$(SWIFT) build -c release
	.build/release/fastpilot-bench all --short

bench-scale: deps
	$(SWIFT) build -c release
	.build/release/fastpilot-bench scale-suite

# A scale scenario with the server and the load generator under `perf record -e cpu-clock -g`;
# flame graphs (SVG, drawn by fastpilot-bench from `perf script`) and the top symbols per thread
# group land in bench-results/profile-*/ (BENCHMARKS.md, "Profiling").
SCENARIO ?= 10000 10000
profile: deps
	@dpkg -s linux-perf >/dev/null 2>&1 || { echo "installing: linux-perf"; $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq linux-perf; }
	$(SWIFT) build -c release
	.build/release/fastpilot-bench profile $(SCENARIO)

SOAK_DURATION ?= 10m
soak: deps
	$(SWIFT) build -c release
	.build/release/fastpilot-bench soak --duration $(SOAK_DURATION)

clean:
	rm -rf .build $(TSAN_SCRATCH) $(ASAN_SCRATCH) $(FUZZ_SCRATCH) $(VENV)
