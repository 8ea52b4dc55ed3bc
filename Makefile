# Fresh-machine entry points: `make demo` and `make test` both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: this machine serves 2.13.0 as a CPU build; anything unpinned
	# would pull gigabytes of CUDA packages.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The papers' verifier, for the cross-check tests: wheels exist only for CPython <= 3.11
	# on x86-64, so it is best effort (its tests skip, saying why, where it is missing).
	$(BIN)/python -m pip install --quiet 'maraboupy==2.0.0' \
		|| echo "maraboupy unavailable here: the marabou backend's tests will skip"
	# Ray, for the NAP learner's distributed executor (optional extra; its test skips
	# where it is missing).
	$(BIN)/python -m pip install --quiet 'ray>=2.9' \
		|| echo "ray unavailable here: the ray executor's test will skip"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/relucid demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/why.py
	$(BIN)/python benchmarks/guard.py
	$(BIN)/python benchmarks/verify.py
	$(BIN)/python benchmarks/nap.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
