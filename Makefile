# SPDX-License-Identifier: Apache-2.0
# The two commands of README.md, and a few more for developers.
#   make run    install what is missing, build a release binary, start msgstore
#   make check  install what the tests need, build, run every test
.PHONY: all build release run check test unit asan valgrind fuzz bench format format-check clean

JOBS ?= $(shell nproc)

all: build

build:
	@scripts/deps build
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j $(JOBS)

release:
	@scripts/deps run
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build-release -j $(JOBS)

run: release
	exec build-release/src/cli/msgstore serve

check:
	scripts/check

# Only the unit tests of a normal build (fast, no servers).
unit: build
	cd build && ctest --output-on-failure -L unit

asan:
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMSGSTORE_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -L 'unit|integration'

# Unit and integration tests under valgrind memcheck (slow: minutes).
valgrind:
	@scripts/deps check
	cmake -S . -B build-valgrind -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMSGSTORE_VALGRIND=ON >/dev/null
	cmake --build build-valgrind -j $(JOBS)
	cd build-valgrind && ctest --output-on-failure -L 'unit|integration'

fuzz:
	@scripts/deps check
	CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMSGSTORE_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS)
	scripts/fuzz build-fuzz

bench: release
	scripts/bench build-release

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf build build-asan build-release build-fuzz build-valgrind
