# Two entry points: `make demo` (the main job on the embedded default) and `make test`.
# Both create .venv when missing and install everything; nothing else is needed.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
export PYTHONUNBUFFERED := 1

.PHONY: install demo test test-stress lint bench multimodal clean

install: $(STAMP)

# torch first, from its pin: an unpinned torch resolved by another package would pull a CUDA build.
# On a GPU machine, install a CUDA torch into .venv first (see README) and this step keeps it.
$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -c constraints.txt torch
	$(PIP) install -c constraints.txt -e ".[ros,test,lint]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/learned-control demo

test: install
	$(PY) -m pytest $(ARGS)

# The suite on a loaded machine: two busy CPU hogs beside it, always killed afterwards (also on
# failure or Ctrl-C). ARGS narrows the run, e.g. make test-stress ARGS=test/ros/test_robot_mode.py
test-stress: install
	$(PY) -c "while True: pass" & hog1=$$!; $(PY) -c "while True: pass" & hog2=$$!; \
	trap 'kill $$hog1 $$hog2 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	$(PY) -m pytest $(ARGS)

# ruff (lint and format check) and mypy on the package, zero findings; .ci/run runs it first.
lint: install
	$(VENV)/bin/ruff check src
	$(VENV)/bin/ruff format --check src
	$(VENV)/bin/mypy

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

# PointMaze fork: which policy classes keep both routes (aim: under 15 minutes on CPU).
multimodal: install
	$(PY) bench/multimodal.py

clean:
	rm -rf $(VENV) build install log runs
