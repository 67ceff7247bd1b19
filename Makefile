# Salus — the two commands.
#   make run    install what is missing, build, create a demo data dir on first run, serve HTTPS
#   make check  install what is missing, build (normal + ASan/UBSan + fuzz), run every test
JOBS   ?= $(shell nproc)
DATA   ?= demo-data
LISTEN ?= 127.0.0.1:8443
CMAKE_GEN := -G Ninja

.PHONY: all deps build build-asan build-fuzz run check test test-asan fuzz lint format clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B build $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DSALUS_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

build-fuzz: deps
	@CC=clang cmake -S . -B build-fuzz $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSALUS_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

run: build
	@scripts/run-demo.sh build/salus "$(DATA)" "$(LISTEN)"

test: build
	@cd build && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)

fuzz: build-fuzz
	@scripts/run-fuzz.sh build-fuzz

lint:
	@scripts/check-banned.sh

check: lint test test-asan fuzz
	@echo "make check: all green"

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-asan build-fuzz
