# Thin wrappers over CMake; every target installs missing Debian build deps first.
#   make          release build in build/
#   make demo     build the host only (quietly; the log is shown if it fails), then stream a greedy
#                 continuation from the bundled stories260K model
#   make test     release suite, its C unit tests again with the kernels capped at AVX2 and at
#                 the portable level, then the whole suite under ASan+UBSan (build-asan/); every
#                 stage runs even when an earlier one fails, and the failed ones are listed at the end
#   make unit     release suite only (fast iteration)
#   make install  release build installed under PREFIX (default /usr/local): slua on PATH
#   make bench    build the benchmark programs (see bench/README.md)
#   make fuzz     build the libFuzzer targets (clang, ASan+UBSan, build-fuzz/) and run each for
#                 FUZZ_SECONDS (default 10) over its seeds in tests/fuzz/corpus/
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEMO_DIR ?= build
FUZZ_SECONDS ?= 10
PREFIX ?= /usr/local
TEST_STAGES ?= unit levels asan

.PHONY: all deps build demo install test unit levels asan bench fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build build -j $(JOBS)

demo: deps
	@mkdir -p $(DEMO_DIR)
	@{ cmake -S . -B $(DEMO_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) && \
	   cmake --build $(DEMO_DIR) -j $(JOBS) --target slua; } >$(DEMO_DIR)/demo-build.log 2>&1 || \
	  { cat $(DEMO_DIR)/demo-build.log; echo "make demo: the build failed (log above)" >&2; exit 1; }
	@$(DEMO_DIR)/slua recipes/greedy.lua --prompt "Once upon a time" --max-new-tokens 64

install: build
	cmake --install build --prefix $(PREFIX)

unit: build
	ctest --test-dir build --output-on-failure -j $(JOBS)

# The C unit tests with the kernel level capped (the suites check each level themselves where
# it matters; this runs every forward and session invariant on the other paths too).
levels: build
	@status=0; \
	SL_NO_AVX512=1 ctest --test-dir build --output-on-failure -j $(JOBS) -L unit || status=1; \
	SL_NO_AVX2=1 ctest --test-dir build --output-on-failure -j $(JOBS) -L unit || status=1; \
	exit $$status

asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSL_SANITIZE=address,undefined $(CMAKE_FLAGS) >/dev/null
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS)

# Each stage runs to its end whatever the others did, so one run reports every failure.
test:
	@failed=""; \
	for stage in $(TEST_STAGES); do \
	  $(MAKE) --no-print-directory $(addprefix -f ,$(MAKEFILE_LIST)) $$stage || failed="$$failed $$stage"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test: failed stages:$$failed" >&2; exit 1; fi; \
	echo "make test: all stages passed ($(TEST_STAGES))"

bench: build

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_FUZZ=ON \
	  -DSL_SANITIZE=address,undefined -DSL_BUILD_TESTS=OFF $(CMAKE_FLAGS) >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target fuzz_all
	bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-fuzz
