# fer-study: `make study` sets up .venv and runs the whole study on the embedded default;
# `make test` runs the test suite. Both work offline apart from the package registry.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PARAMS ?= params/default.yaml

.PHONY: study test lint lab clean-venv

$(VENV)/.installed: requirements-lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-lock.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

# One line per notebook with its time (a progress bar of its cells meanwhile, on a terminal), then
# where the report is; the kernels' TensorFlow/Jupyter start-up lines are discarded
# (TF_CPP_MIN_LOG_LEVEL=0 shows them).
study: $(VENV)/.installed
	@$(PY) -m fer_lib report --params $(PARAMS)

# Ray, the optional `scale` extra (`batch`, `ablate --ray`): `make study` does not need it, the tests do.
$(VENV)/.scale-installed: $(VENV)/.installed requirements-scale-lock.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-lock.txt -r requirements-scale-lock.txt
	touch $@

# The linter and formatter (ruff, settings in pyproject.toml) first, then the tests (Ray's included), in
# two pytest-xdist workers that each take whole test files (tests/conftest.py joins two that share a
# fixture; TEST_WORKERS=0 runs them in this process).
TEST_WORKERS ?= 2
test: lint $(VENV)/.scale-installed
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Jupyter refuses to start as root ("Running as root is not recommended"), the usual user in a container:
# there it gets --allow-root.
lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

clean-venv:
	rm -rf $(VENV)
