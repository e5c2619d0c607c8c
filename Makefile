# The two commands of the README: `make demo` and `make test`. Both create their own virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test check bench venv clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/starpromo demo

# Starts a throwaway PostgreSQL and Redis on loopback, then runs the whole suite against them.
# scripts/browser-deps.sh: chromium (apt-get) and axe-core (npm, into .cache/axe) for the browser tests.
test: venv
	scripts/browser-deps.sh >/dev/null
	PATH="$(abspath $(BIN)):$$PATH" scripts/with-services.sh $(MAKE) --no-print-directory check

# The suite on TEST_WORKERS processes (pytest-xdist; each worker has its own PostgreSQL and Redis database, see
# tests/conftest.py), a module's tests together; then the few marked `serial` in one process.
TEST_WORKERS ?= 2

check:
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile -m "not serial"
	$(BIN)/pytest -q -p no:cacheprovider -m serial
	$(BIN)/mypy
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: venv
	PATH="$(abspath $(BIN)):$$PATH" scripts/with-services.sh $(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
