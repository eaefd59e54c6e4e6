# flashlog: `make` builds the library and the launcher, `make test` runs every test (it creates the Python
# virtual environment and builds the C fixtures it needs), `make demo` shows real records, `make bench`
# prints the benchmark table, `make test-flashinfer` runs real FlashInfer modules (downloads several GB).

FIXDIR   ?= target/fixtures
VENV     ?= .venv
PYTHON   ?= python3
PREFIX   ?= /usr/local
CARGO    ?= cargo
PY       := $(VENV)/bin/python
LIB      := target/release/libflashlog.so
LAUNCHER := target/release/flashlog
CFLAGS_FIX := -O2 -g -Wall -Wextra -Werror -fPIC
# The C compiler of the test fixtures (aarch64-linux-gnu-gcc for `make test-aarch64`).
FIXCC    ?= gcc
# aarch64: Debian's rustc (it has the arm64 standard library) with its own target folder, run under qemu-user.
AARCH64       := aarch64-unknown-linux-gnu
AARCH64_DIR   := target/aarch64
AARCH64_CARGO := RUSTC=/usr/bin/rustc CARGO_TARGET_DIR=$(AARCH64_DIR)/cargo \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64-static $(CARGO)
AARCH64_BIN   := $(AARCH64_DIR)/cargo/$(AARCH64)/release

.PHONY: all build fixtures venv test unit-test lint demo bench test-flashinfer install clean aarch64 test-aarch64

all: build

build:
	$(CARGO) build --release --locked

include tests/fixtures/ffi.mk
include tests/fixtures/cuda.mk
include tests/fixtures/stats.mk
include tests/fixtures/host.mk

fixtures: tvm-fixtures cuda-fixtures stats-fixtures host-fixtures

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

venv: $(VENV)/.installed

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

unit-test:
	$(CARGO) test --release --locked

test: build fixtures venv lint unit-test
	FLASHLOG_LIB=$(CURDIR)/$(LIB) FIXDIR=$(CURDIR)/$(FIXDIR) $(PY) -m pytest -q tests/python
	$(MAKE) --no-print-directory test-aarch64

# The aarch64 library and launcher, cross-built (installs Debian's cross toolchain when it is missing).
aarch64:
	@bash scripts/aarch64-toolchain.sh
	$(AARCH64_CARGO) build --release --locked --target $(AARCH64)

# The aarch64 build under qemu-user: the Rust unit tests, then the C fixtures cross-built and run with the aarch64
# library, their records compared line for line with the x86-64 library's on the same fixtures.
test-aarch64: aarch64 build fixtures venv
	$(MAKE) --no-print-directory FIXCC=aarch64-linux-gnu-gcc FIXDIR=$(AARCH64_DIR)/fixtures fixtures
	@bash scripts/aarch64-python.sh $(AARCH64_DIR)/python
	$(AARCH64_CARGO) test --release --locked --target $(AARCH64)
	FLASHLOG_LIB=$(CURDIR)/$(LIB) FIXDIR=$(CURDIR)/$(FIXDIR) AARCH64_LIB=$(CURDIR)/$(AARCH64_BIN)/libflashlog.so \
		AARCH64_FIXDIR=$(CURDIR)/$(AARCH64_DIR)/fixtures AARCH64_PYTHON=$(CURDIR)/$(AARCH64_DIR)/python \
		NATIVE_PYTHON=$(CURDIR)/$(PY) $(PY) -m pytest -q tests/aarch64

demo: build fixtures venv
	@bash scripts/demo.sh $(LAUNCHER) $(FIXDIR) $(PY)

bench: build fixtures venv
	@$(PY) scripts/bench.py --lib $(LIB) --fixdir $(FIXDIR)

test-flashinfer: build fixtures
	bash tests/flashinfer/run.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libflashlog.so
	install -m 0755 $(LAUNCHER) $(DESTDIR)$(PREFIX)/bin/flashlog
	install -m 0644 shim.h $(DESTDIR)$(PREFIX)/include/flashlog.h

clean:
	$(CARGO) clean
	rm -rf $(VENV)
