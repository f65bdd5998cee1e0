# Thin wrappers over CMake; every target installs missing Debian build deps first.
#   make          release build in build/
#   make demo     build, then stream a greedy continuation from the bundled stories260K model
#   make test     release suite, then the same suite under ASan+UBSan (build-asan/)
#   make unit     release suite only (fast iteration)
#   make bench    build the benchmark programs (see bench/README.md)
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build demo test unit asan bench clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build build -j $(JOBS)

demo: build
	./build/slua recipes/greedy.lua --prompt "Once upon a time" --max-new-tokens 64

unit: build
	ctest --test-dir build --output-on-failure -j $(JOBS)

asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSL_SANITIZE=address,undefined $(CMAKE_FLAGS) >/dev/null
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS)

test: unit asan

bench: build

clean:
	rm -rf build build-asan
