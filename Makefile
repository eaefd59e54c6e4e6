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

# The wheel. Its binaries are linked against zig's glibc $(WHEEL_GLIBC) stubs (cargo-zigbuild for the library,
# maturin --zig for the launcher), so they need nothing newer than the tag says, whatever glibc builds them;
# 2.17 is the oldest glibc Rust's std supports on x86-64. Built in target/wheel-venv (maturin, ziglang,
# cargo-zigbuild, auditwheel from the registry) and in their own target directories, so that the host
# build and the two wheel builds stay incremental instead of invalidating each other.
VERSION     := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
WHEEL_GLIBC ?= 2.17
WHEEL_ARCH  := x86_64
WHEEL_VENV  := target/wheel-venv
WHEEL_PATH  := PATH="$(CURDIR)/$(WHEEL_VENV)/bin:$$PATH"

.PHONY: all build fixtures venv test unit-test lint demo bench test-flashinfer install clean wheel

all: build

build:
	$(CARGO) build --release --locked

include tests/fixtures/ffi.mk
include tests/fixtures/cuda.mk
include tests/fixtures/stats.mk

fixtures: tvm-fixtures cuda-fixtures stats-fixtures

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

venv: $(VENV)/.installed

$(WHEEL_VENV)/.installed: scripts/wheel-requirements.txt
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/wheel-requirements.txt
	touch $@

wheel: $(WHEEL_VENV)/.installed
	$(WHEEL_PATH) $(CARGO) zigbuild --release --locked --lib --target $(WHEEL_ARCH)-unknown-linux-gnu.$(WHEEL_GLIBC) \
		--target-dir target/wheel-lib
	install -D -m 0755 target/wheel-lib/$(WHEEL_ARCH)-unknown-linux-gnu/release/libflashlog.so python/flashlog/lib/libflashlog.so
	install -D -m 0644 shim.h python/flashlog/include/flashlog.h
	rm -f dist/flashlog-$(VERSION)-*.whl
	$(WHEEL_PATH) CARGO_TARGET_DIR=target/wheel-bin maturin build --quiet --release --zig \
		--target $(WHEEL_ARCH)-unknown-linux-gnu --compatibility manylinux_$(subst .,_,$(WHEEL_GLIBC)) --out dist
	@ls dist/flashlog-$(VERSION)-py3-none-*manylinux_$(subst .,_,$(WHEEL_GLIBC))_$(WHEEL_ARCH).whl

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

unit-test:
	$(CARGO) test --release --locked

test: build fixtures venv lint unit-test wheel
	FLASHLOG_LIB=$(CURDIR)/$(LIB) FIXDIR=$(CURDIR)/$(FIXDIR) \
		AUDITWHEEL=$(CURDIR)/$(WHEEL_VENV)/bin/auditwheel $(PY) -m pytest -q tests/python

demo: build tvm-fixtures
	@bash scripts/demo.sh $(LIB) $(FIXDIR)

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
	rm -rf $(VENV) dist python/flashlog/lib python/flashlog/include
