# Two commands do all the set-up: `make demo` and `make test`. Both create .venv, install
# the project and, when run as root on Debian, the system packages it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-soak check bench system-deps clean

$(STAMP): pyproject.toml scripts/system-packages.txt
	@bash scripts/install-system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,serial,ui,server,http]'
	@# pyscard compiles against libpcsclite: install it only where the headers are.
	@if [ -f /usr/include/PCSC/winscard.h ]; then \
		$(BIN)/pip install --quiet -e '.[pcsc]'; \
	else echo "libpcsclite-dev missing: PC/SC driver and its tests are skipped"; fi
	@touch $(STAMP)

system-deps:
	@bash scripts/install-system-packages.sh

demo: $(STAMP)
	$(BIN)/pos-client demo

test: $(STAMP)
	$(BIN)/pytest -q tests

# Long soak modes (many more crash cycles); not part of `make test`.
test-soak: $(STAMP)
	POS_CLIENT_SOAK=1 $(BIN)/pytest -q tests

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# One table of every figure beside its limit or peer (about 15 minutes on 2 cores).
bench: $(STAMP)
	$(BIN)/python benchmarks/table.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
