# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create and use .venv at the repository root.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Pins reach every pip process, isolated build environments included (torch CPU wheel).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
# sam2 is built from its sdist without its optional CUDA extension.
export SAM2_BUILD_CUDA := 0

.PHONY: demo test lint install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[all]"
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check samem tests bench
	$(VENV)/bin/lint-imports

test: $(STAMP) lint
	$(PY) -m pytest -q

# `make demo VIEW=127.0.0.1:8765` also serves the live browser view and opens it (replay at 10 frames/s)
demo: $(STAMP)
	$(PY) -m samem.cli.demo $(if $(VIEW),--view $(VIEW) --open --fps 10)

clean-venv:
	rm -rf $(VENV)
