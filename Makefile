# flashlog: `make` builds the library and the launcher, `make test` runs every test (it creates the Python
# virtual environment and builds the C fixtures it needs), `make demo` shows real records, `make bench`
# prints the benchmark table, `make test-flashinfer` runs real FlashInfer modules (downloads several GB),
# `make wheel` builds dist/flashlog-<version>-py3-none-<manylinux tag>.whl.

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

# The wheel. Its binaries are linked by zig against glibc $(WHEEL_GLIBC) stubs, so they need nothing newer than
# the tag says, whatever glibc builds them (2.17 is the oldest glibc Rust's std supports on x86-64). The linker
# is a generated script around `maturin zig cc` (what `maturin --zig` itself runs, adapting rustc's linker
# arguments to zig), used by both cargo, for the library, and maturin, for the launcher, in one target
# directory: their dependencies are compiled once and every later `make wheel` is incremental. maturin,
# ziglang and auditwheel come from the registry into target/wheel-venv.
VERSION      := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
WHEEL_GLIBC  ?= 2.17
WHEEL_ARCH   := x86_64
WHEEL_VENV   := target/wheel-venv
WHEEL_TARGET := $(WHEEL_ARCH)-unknown-linux-gnu
WHEEL_LINKER := $(CURDIR)/target/wheel/zig-cc-$(WHEEL_ARCH)-linux-gnu.$(WHEEL_GLIBC)
WHEEL_ENV    := PATH="$(CURDIR)/$(WHEEL_VENV)/bin:$$PATH" CARGO_TARGET_DIR="$(CURDIR)/target/wheel" \
	CARGO_TARGET_$(shell echo $(WHEEL_TARGET) | tr a-z- A-Z_)_LINKER="$(WHEEL_LINKER)"

.PHONY: all build fixtures venv test unit-test lint demo bench test-flashinfer install clean wheel aarch64 test-aarch64

all: build

build:
	$(CARGO) build --release --locked

include tests/fixtures/ffi.mk
include tests/fixtures/cuda.mk
include tests/fixtures/stats.mk
include tests/fixtures/host.mk
include tests/fixtures/hostile.mk
include tests/fixtures/reads.mk

fixtures: tvm-fixtures cuda-fixtures stats-fixtures host-fixtures hostile-fixtures reads-fixtures

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

venv: $(VENV)/.installed

$(WHEEL_VENV)/.installed: scripts/wheel-requirements.txt
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/wheel-requirements.txt
	touch $@

$(WHEEL_LINKER): $(WHEEL_VENV)/.installed
	@mkdir -p $(@D)
	printf '#!/bin/sh\nPATH="%s:$$PATH" exec maturin zig cc -- -g -fno-sanitize=all -target %s "$$@"\n' \
		"$(CURDIR)/$(WHEEL_VENV)/bin" $(WHEEL_ARCH)-linux-gnu.$(WHEEL_GLIBC) > $@
	chmod +x $@

wheel: $(WHEEL_LINKER)
	$(WHEEL_ENV) $(CARGO) build --release --locked --lib --target $(WHEEL_TARGET)
	install -D -m 0755 target/wheel/$(WHEEL_TARGET)/release/libflashlog.so python/flashlog/lib/libflashlog.so
	install -D -m 0644 shim.h python/flashlog/include/flashlog.h
	rm -f dist/flashlog-$(VERSION)-*.whl
	$(WHEEL_ENV) maturin build --quiet --release --target $(WHEEL_TARGET) \
		--compatibility manylinux_$(subst .,_,$(WHEEL_GLIBC)) --out dist
	@# maturin audits the launcher it built, not the library copied into the package: auditwheel checks both.
	@w=$$(ls dist/flashlog-$(VERSION)-py3-none-*manylinux_$(subst .,_,$(WHEEL_GLIBC))_$(WHEEL_ARCH).whl) && \
	$(WHEEL_VENV)/bin/auditwheel show $$w | tr -s ' \n' '  ' | \
	grep -q 'consistent with the following platform tag: "manylinux_$(subst .,_,$(WHEEL_GLIBC))_$(WHEEL_ARCH)"' && \
	echo "$$w: auditwheel agrees with the tag" || { $(WHEEL_VENV)/bin/auditwheel show $$w; exit 1; }

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

unit-test:
	$(CARGO) test --release --locked

test: build fixtures venv lint unit-test wheel
	FLASHLOG_LIB=$(CURDIR)/$(LIB) FIXDIR=$(CURDIR)/$(FIXDIR) \
		AUDITWHEEL=$(CURDIR)/$(WHEEL_VENV)/bin/auditwheel $(PY) -m pytest -q tests/python
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
	install -d $(DESTDIR)$(PREFIX)/lib/flashlog/python/flashlog
	install -m 0644 python/flashlog/*.py $(DESTDIR)$(PREFIX)/lib/flashlog/python/flashlog/

clean:
	$(CARGO) clean
	rm -rf $(VENV) dist python/flashlog/lib python/flashlog/include
