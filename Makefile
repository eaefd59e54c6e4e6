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

.PHONY: all build fixtures venv test unit-test lint demo bench test-flashinfer install clean

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

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

unit-test:
	$(CARGO) test --release --locked

test: build fixtures venv lint unit-test
	FLASHLOG_LIB=$(CURDIR)/$(LIB) FIXDIR=$(CURDIR)/$(FIXDIR) $(PY) -m pytest -q tests/python

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
	install -d $(DESTDIR)$(PREFIX)/lib/flashlog/python/flashlog
	install -m 0644 python/flashlog/*.py $(DESTDIR)$(PREFIX)/lib/flashlog/python/flashlog/

clean:
	$(CARGO) clean
	rm -rf $(VENV)
