# moq-relay: the commands users run. See README.md.
BUILD        ?= build
BUILD_ASAN   ?= build-asan
BUILD_FUZZ   ?= build-fuzz
BUILD_TSAN   ?= build-tsan
CONFIG       ?= dev/relay.toml
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
MAKEFLAGS    += --no-print-directory
CMAKE_FLAGS  ?=
PREFIX       ?= /usr/local
SYSCONFDIR   ?= /etc
UNITDIR      ?= $(PREFIX)/lib/systemd/system
DESTDIR      ?=
CONTAINER    ?= $(shell command -v podman || command -v docker || echo podman)
IMAGE        ?= moq-relay

.PHONY: all build bins deps run test sanitize tsan fuzz fuzz-smoke bench format clean install deb \
	container container-test docs soak

# Configure $(BUILD) once; `make build` reconfigures every time (CMAKE_FLAGS may change).
CONFIGURED = $(BUILD)/CMakeCache.txt
$(CONFIGURED):
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

all: build

deps:
	@scripts/deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Only what is run: the relay, not the tests.
run: deps $(CONFIGURED)
	@cmake --build $(BUILD) -j $(JOBS) --target moq-relay
	./$(BUILD)/moq-relay $(CONFIG)

# The binaries and their manual pages, without the tests.
bins: deps $(CONFIGURED)
	@cmake --build $(BUILD) -j $(JOBS) --target moq-relay moq moq-token man

# moq-relay, moq, moq-token and their manual pages into $(PREFIX), the systemd unit into
# $(UNITDIR), and $(SYSCONFDIR)/moq/relay.toml unless it exists; all under $(DESTDIR).
install: bins
	@DESTDIR="$(DESTDIR)" dist/install.sh $(BUILD) $(PREFIX) $(SYSCONFDIR) $(UNITDIR)

# The Debian package, in $(BUILD)/deb.
deb: bins
	@dist/debian/build-deb.sh $(BUILD) $(BUILD)/deb

# The container image (podman or docker), and its test: a Debian 12 root filesystem from
# mmdebstrap stands in for debian:12-slim where no registry serves it (docs/operations.md).
container:
	$(CONTAINER) build -t $(IMAGE) .

container-test: bins
	@MOQ_DEPS_CONTAINER=1 scripts/deps.sh
	@MOQ_BUILD_DIR=$(abspath $(BUILD)) MOQ_SOURCE_DIR=$(CURDIR) \
		MOQ_RELAY_BIN=$(abspath $(BUILD))/moq-relay IMAGE=$(IMAGE) tests/container/test_container.sh

# Rewrite the reference table of docs/config.md from the option table.
docs: bins
	@scripts/config-reference.sh $(BUILD)/moq-relay docs/config.md

test: deps build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

# Sanitizer builds use clang when it is installed: its UBSan also catches what gcc's does not
# (pointer arithmetic on NULL, for one).
SANITIZE_CC ?= $(shell command -v clang >/dev/null 2>&1 && echo clang || echo cc)

sanitize: deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DMOQ_SANITIZE=ON \
		-DCMAKE_C_COMPILER=$(SANITIZE_CC) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)
	@cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

# ThreadSanitizer build; runs the suites labelled tsan (the relay on two worker threads).
tsan: deps
	@cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=Debug -DMOQ_TSAN=ON \
		-DCMAKE_C_COMPILER=$(SANITIZE_CC) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_TSAN) -j $(JOBS)
	@cd $(BUILD_TSAN) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		ctest --output-on-failure -L tsan $(CTEST_FLAGS)

fuzz: deps
	@CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=Debug -DMOQ_FUZZ=ON >/dev/null
	@cmake --build $(BUILD_FUZZ) -j $(JOBS)
	@echo "fuzzers built in $(BUILD_FUZZ)/tests: run e.g. $(BUILD_FUZZ)/tests/fuzz_varint tests/fuzz/corpus/fuzz_varint"

# Run every libFuzzer target for FUZZ_SECONDS; what they find is kept in
# $(BUILD_FUZZ)/corpus-new/ for later runs (see scripts/fuzz_smoke.sh).
FUZZ_SECONDS ?= 15
fuzz-smoke: fuzz
	@scripts/fuzz_smoke.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

bench: deps build
	@bench/baseline_quic.sh
	@bench/run.sh
	@bench/sessions.sh

# The relay under a steady load with churn for SOAK_DURATION seconds (an hour by default; CI
# runs three minutes): the sd preset to 200 subscribers plus one joining and leaving every
# second. Samples into $(BUILD)/soak/soak.csv; fails when RSS grows beyond the cache bound.
SOAK_DURATION ?= 3600
soak: bins
	@BUILD=$(BUILD) bench/soak.sh $(SOAK_DURATION)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_TSAN)
