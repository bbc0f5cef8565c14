# Two commands do all the set-up: `make demo` and `make test`. Both create .venv, install
# the project and, when run as root on Debian, the system packages it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-soak check bench system-deps clean i18n

$(STAMP): pyproject.toml scripts/system-packages.txt
	@bash scripts/install-system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,serial,ui,server,http,printer,camera]'
	@# pyscard compiles against libpcsclite: install it only where the headers are.
	@if [ -f /usr/include/PCSC/winscard.h ]; then \
		$(BIN)/pip install --quiet -e '.[pcsc]'; \
	else echo "libpcsclite-dev missing: PC/SC driver and its tests are skipped"; fi
	@touch $(STAMP)

system-deps:
	@bash scripts/install-system-packages.sh

# Translations: ui/locale/<lang>/LC_MESSAGES/pos.po are the sources (committed); the .mo
# files are build outputs (not committed), compiled here and used when newer than the .po.
LOCALE := ui/locale
MO := $(patsubst %.po,%.mo,$(wildcard $(LOCALE)/*/LC_MESSAGES/pos.po))

$(LOCALE)/%/LC_MESSAGES/pos.mo: $(LOCALE)/%/LC_MESSAGES/pos.po | $(STAMP)
	$(BIN)/pybabel -q compile -D pos -l $* -i $< -o $@

# After changing messages in .py/.kv: new keys into the template and every catalog (fill
# their msgstr, English first in en), keys no longer used dropped, then compiled.
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o $(LOCALE)/pos.pot --no-location --sort-output \
		--project pos-client --version 0.1.0 --msgid-bugs-address "" ui
	$(BIN)/pybabel update -D pos -i $(LOCALE)/pos.pot -d $(LOCALE) --no-fuzzy-matching \
		--ignore-obsolete
	$(BIN)/pybabel compile -D pos -d $(LOCALE) --statistics

# The store server with its console (address and a demo login printed) runs beside the
# terminal's demo, until Ctrl+C.
demo: $(STAMP) $(MO)
	$(BIN)/loyalty-server demo --then $(BIN)/pos-client demo

# The suite runs in TEST_WORKERS pytest-xdist processes, a test file to a worker (module
# fixtures such as a PostgreSQL cluster or the private pcscd stay one per file); most tests
# wait on the processes they start, so two workers keep two cores busy.
# The layout walk (every screen x 4 languages x 5 window sizes) runs in a process of its
# own: after dozens of other apps in one process it was seen to loop on layout (see README).
TEST_WORKERS ?= 2
PYTEST_PARALLEL := $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP) $(MO)
	$(PYTEST_PARALLEL) tests --ignore=tests/ui/test_layout.py
	$(BIN)/pytest -q tests/ui/test_layout.py

# Long soak modes (many more crash cycles); not part of `make test`.
test-soak: $(STAMP) $(MO)
	POS_CLIENT_SOAK=1 $(PYTEST_PARALLEL) tests --ignore=tests/ui/test_layout.py
	$(BIN)/pytest -q tests/ui/test_layout.py

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# One table of every figure beside its limit or peer (about 15 minutes on 2 cores); the app
# with its catalogs compiled, as shipped (without .mo it parses the .po files at start).
bench: $(STAMP) $(MO)
	$(BIN)/python benchmarks/table.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
