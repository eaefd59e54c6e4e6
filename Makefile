# flashlog: `make` builds the library and the launcher, `make test` runs every test (it creates the Python
# virtual environment and builds the C fixtures it needs), `make demo` shows real records, `make bench`
# prints the benchmark table, `make test-flashinfer` runs real FlashInfer modules (downloads several GB),
# `make wheel` builds dist/flashlog-<version>-py3-none-<manylinux tag>.whl for x86-64 and for aarch64.

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
AARCH64_RUSTC := /usr/bin/rustc
AARCH64_STD   := /usr/lib/rustlib/$(AARCH64)/lib
AARCH64_CARGO := RUSTC=$(AARCH64_RUSTC) CARGO_TARGET_DIR=$(AARCH64_DIR)/cargo \
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
# The aarch64 wheel: the same zig linking, for aarch64-linux-gnu.$(WHEEL_GLIBC) (2.17 is also aarch64 glibc's
# first version), with Debian's rustc (the one with an arm64 std), in its own target directory, apart from the
# x86-64 wheel's (another rustc) and from `make aarch64`'s (another linker). Skipped, saying why, when that
# rustc or its arm64 std is missing (`make aarch64` installs them).
WHEEL_ARM        := aarch64
WHEEL_ARM_DIR    := target/wheel-$(WHEEL_ARM)
WHEEL_ARM_LINKER := $(CURDIR)/$(WHEEL_ARM_DIR)/zig-cc-$(WHEEL_ARM)-linux-gnu.$(WHEEL_GLIBC)
WHEEL_ARM_ENV    := PATH="$(CURDIR)/$(WHEEL_VENV)/bin:$$PATH" RUSTC=$(AARCH64_RUSTC) \
	CARGO_TARGET_DIR="$(CURDIR)/$(WHEEL_ARM_DIR)" CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="$(WHEEL_ARM_LINKER)"
# $(call wheel_linker,ARCH): the recipe of the linker script for ARCH.
wheel_linker = @mkdir -p $(@D) && \
	printf '\#!/bin/sh\nPATH="%s:$$PATH" exec maturin zig cc -- -g -fno-sanitize=all -target %s "$$@"\n' \
		"$(CURDIR)/$(WHEEL_VENV)/bin" $(1)-linux-gnu.$(WHEEL_GLIBC) > $@ && chmod +x $@
# $(call wheel_audit,ARCH): auditwheel must confirm the tag of dist/'s ARCH wheel. maturin audits the launcher
# it built, not the library copied into the package: auditwheel checks both.
wheel_audit = w=$$(ls dist/flashlog-$(VERSION)-py3-none-*manylinux_$(subst .,_,$(WHEEL_GLIBC))_$(1).whl) && \
	$(WHEEL_VENV)/bin/auditwheel show $$w | tr -s ' \n' '  ' | \
	grep -q 'consistent with the following platform tag: "manylinux_$(subst .,_,$(WHEEL_GLIBC))_$(1)"' && \
	echo "$$w: auditwheel agrees with the tag" || { $(WHEEL_VENV)/bin/auditwheel show $$w; exit 1; }

.PHONY: all build fixtures venv test unit-test lint demo bench test-flashinfer install clean wheel wheel-aarch64 \
	aarch64 aarch64-fixtures test-aarch64 ptx ptx-check chromium report-vendor

all: build

build:
	$(CARGO) build --release --locked

include tests/fixtures/ffi.mk
include tests/fixtures/cuda.mk
include tests/fixtures/stats.mk
include tests/fixtures/host.mk
include tests/fixtures/hostile.mk
include tests/fixtures/reads.mk
include tests/fixtures/hoststate.mk
include tests/fixtures/ring.mk
include tests/fixtures/loader.mk

fixtures: tvm-fixtures cuda-fixtures stats-fixtures host-fixtures hostile-fixtures reads-fixtures hoststate-fixtures \
	ring-fixtures loader-fixtures

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

venv: $(VENV)/.installed

$(WHEEL_VENV)/.installed: scripts/wheel-requirements.txt
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/wheel-requirements.txt
	touch $@

$(WHEEL_LINKER) $(WHEEL_ARM_LINKER): $(WHEEL_VENV)/.installed
	$(call wheel_linker,$(if $(filter $(WHEEL_ARM_LINKER),$@),$(WHEEL_ARM),$(WHEEL_ARCH)))

wheel: $(WHEEL_LINKER)
	$(WHEEL_ENV) $(CARGO) build --release --locked --lib --target $(WHEEL_TARGET)
	install -D -m 0755 target/wheel/$(WHEEL_TARGET)/release/libflashlog.so python/flashlog/lib/libflashlog.so
	install -D -m 0644 shim.h python/flashlog/include/flashlog.h
	rm -f dist/flashlog-$(VERSION)-*.whl
	$(WHEEL_ENV) maturin build --quiet --release --target $(WHEEL_TARGET) \
		--compatibility manylinux_$(subst .,_,$(WHEEL_GLIBC)) --out dist
	@$(call wheel_audit,$(WHEEL_ARCH))
	@if [ -x $(AARCH64_RUSTC) ] && [ -d $(AARCH64_STD) ]; then $(MAKE) --no-print-directory wheel-aarch64; \
	else echo "make wheel: no aarch64 wheel: $(AARCH64_RUSTC) or its arm64 std ($(AARCH64_STD)) is missing (make aarch64 installs them)"; fi

# The aarch64 wheel alone (make wheel builds it after the x86-64 one). Its library goes into python/flashlog/lib
# for maturin, and the x86-64 wheel's goes back there afterwards, also when the build fails: the source tree's
# library_path() must keep finding a library this machine can load.
wheel-aarch64: $(WHEEL_ARM_LINKER)
	$(WHEEL_ARM_ENV) $(CARGO) build --release --locked --lib --target $(AARCH64)
	rm -f dist/flashlog-$(VERSION)-*_$(WHEEL_ARM).whl
	install -D -m 0755 $(WHEEL_ARM_DIR)/$(AARCH64)/release/libflashlog.so python/flashlog/lib/libflashlog.so
	install -D -m 0644 shim.h python/flashlog/include/flashlog.h
	$(WHEEL_ARM_ENV) maturin build --quiet --release --target $(AARCH64) \
		--compatibility manylinux_$(subst .,_,$(WHEEL_GLIBC)) --out dist; rc=$$?; \
	x86=target/wheel/$(WHEEL_TARGET)/release/libflashlog.so; \
	if [ -f $$x86 ]; then install -m 0755 $$x86 python/flashlog/lib/libflashlog.so; \
	else rm -f python/flashlog/lib/libflashlog.so; fi; exit $$rc
	@$(call wheel_audit,$(WHEEL_ARM))

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings
	# The modules are private (nothing but dlsym is exported), so missing_docs would see no item: check
	# with them public, without building anything (src/lib.rs, `flashlog_check_docs`).
	$(CARGO) rustc --locked --lib --profile check -- --cfg flashlog_check_docs

unit-test:
	$(CARGO) test --release --locked

# The statistics kernel's PTX (docs/gpu-stats.md): `make ptx` regenerates src/gpu/stats_kernel.ptx with the pinned
# NVRTC wheel (no nvcc); `make ptx-check` fails when the checked-in file is not what the source gives, and
# assembles it with ptxas 12.0 (sm_80, sm_90) and 12.9 (sm_100, sm_120) from the registry's wheels.
PTX_VENV   := target/ptx-venv
PTX_WHEELS := target/ptx-wheels
PTX_NVRTC  := nvidia-cuda-nvrtc-cu12==12.0.140

$(PTX_VENV)/.installed:
	$(PYTHON) -m venv $(PTX_VENV)
	$(PTX_VENV)/bin/pip install -q $(PTX_NVRTC)
	touch $@

ptx: $(PTX_VENV)/.installed
	$(PTX_VENV)/bin/python scripts/gen_ptx.py src/gpu/stats_kernel.ptx

ptx-check: $(PTX_VENV)/.installed
	$(PTX_VENV)/bin/python scripts/ptx_check.py $(PTX_WHEELS)

# The aarch64 toolchain and fixtures come first, so that the wheel target builds the aarch64 wheel too and
# test_wheel.py runs it under qemu.
# The PTX check, Chromium (for the report's page) and the vendored charting library's check come before the
# integration tests.
test: build fixtures venv lint unit-test aarch64-fixtures ptx-check chromium report-vendor
	$(MAKE) --no-print-directory wheel
	FLASHLOG_LIB=$(CURDIR)/$(LIB) FIXDIR=$(CURDIR)/$(FIXDIR) AARCH64_FIXDIR=$(CURDIR)/$(AARCH64_DIR)/fixtures \
		AUDITWHEEL=$(CURDIR)/$(WHEEL_VENV)/bin/auditwheel $(PY) -m pytest -q tests/python
	$(MAKE) --no-print-directory test-aarch64

# Headless Chromium for the report's browser tests (installed with apt-get when missing).
chromium:
	@bash scripts/chromium.sh

# The report's vendored uPlot equals the npm package its lock pins (when the registry is reachable).
report-vendor:
	@bash scripts/check-vendor.sh

# The aarch64 library and launcher, cross-built (installs Debian's cross toolchain when it is missing).
aarch64:
	@bash scripts/aarch64-toolchain.sh
	$(AARCH64_CARGO) build --release --locked --target $(AARCH64)

# The C fixtures cross-built for aarch64 (after the toolchain).
aarch64-fixtures: aarch64
	$(MAKE) --no-print-directory FIXCC=aarch64-linux-gnu-gcc FIXDIR=$(AARCH64_DIR)/fixtures fixtures

# The aarch64 build under qemu-user: the Rust unit tests, then the C fixtures cross-built and run with the aarch64
# library, their records compared line for line with the x86-64 library's on the same fixtures.
test-aarch64: aarch64-fixtures build fixtures venv
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
