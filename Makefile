# Second-order autodiff in PyTorch: every target sets up .venv when it is missing,
# so on a fresh clone `make book` and `make test` are the only commands needed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BUILD  := _build
NOTEBOOKS_MD := $(wildcard notebooks/*.md)
BOOK_FLAGS := --warningiserror --nitpick --keep-going --quiet

.DEFAULT_GOAL := help
.PHONY: help setup book test lab sync execute student bench clean

help:  ## List the targets
	@echo "make <target>, where <target> is one of:"
	@grep -E '^[a-z.-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18 | sed 's/^/  /'

# pip compiles every installed file to bytecode one at a time (about 90 s of a fresh
# install here); compileall does the same on every core, then the stamp is written.
# Files pip would fail to compile too (templates that are not Python) are skipped.
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --no-compile
COMPILE_ALL := import compileall, sysconfig; \
  [compileall.compile_dir(sysconfig.get_path(k), quiet=2, workers=0) for k in ("purelib", "platlib")]

$(STAMP): requirements.txt requirements-nodeps.txt requirements-instructors.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements.txt -r requirements-instructors.txt
	$(PIP_INSTALL) --no-deps -r requirements-nodeps.txt
	$(PIP_INSTALL) --no-deps -e .
	@echo "Compiling the installed packages to bytecode"
	@$(PY) -c '$(COMPILE_ALL)'
	@touch $(STAMP)

setup: $(STAMP)  ## Create .venv and install the pinned environment (every target does this)

book: $(STAMP)  ## Build the HTML book into _build/html (warnings are errors)
	$(VENV)/bin/jupyter-book build . $(BOOK_FLAGS)
	@echo "Open $(BUILD)/html/index.html"

# One OpenMP thread per process in the tests and the chapters' executions: make test
# runs two test workers at once, each starting kernels (and chapter 13's torchrun
# workers), and two spinning OpenMP threads per process on 2 cores made single
# products 7 to 30 times slower. Chapters that time "in this run" say so.
test execute: export OMP_NUM_THREADS ?= 1

test: $(STAMP)  ## Run every test: helpers, notebooks under nbval, pairing, student bundle, book build
	$(PY) -m pytest -n 2 --dist loadscope --no-loadscope-reorder

lab: $(STAMP)  ## Open JupyterLab on the notebooks
	$(PY) -m jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

sync: $(STAMP)  ## Pair notebooks/*.md and *.ipynb with jupytext (newest side wins)
	$(PY) -m jupytext --sync $(NOTEBOOKS_MD)

execute: $(STAMP)  ## Re-execute every notebook in place, top to bottom, in a fresh kernel
	$(PY) scripts/execute.py notebooks/*.md

student: $(STAMP)  ## Write the student zip (notebooks, helpers wheel, README) and book to _build/student
	$(PY) scripts/student_bundle.py $(BUILD)/student
	$(VENV)/bin/jupyter-book build $(BUILD)/student $(BOOK_FLAGS)
	cp $(BUILD)/student/plain/*.ipynb $(BUILD)/student/_build/html/_sources/notebooks/
	@echo "Student zip: $(BUILD)/student/student-notebooks.zip; book: $(BUILD)/student/_build/html"

.PHONY: nbgrader
nbgrader: $(STAMP)  ## Write an nbgrader course directory (source/chNN; keeps your nbgrader_config.py) to _build/nbgrader
	$(PY) scripts/nbgrader_bundle.py $(BUILD)/nbgrader

bench: $(STAMP)  ## Time every method side by side, interleaved; CSV and figures in _build/bench (about 11 min)
	$(PY) -m helpers.bench --out $(BUILD)/bench

.PHONY: bench-closed-form
bench-closed-form: $(STAMP)  ## Time closed-form Hessians: per-sample route against the expanded one (minutes)
	$(PY) scripts/bench_closed_form.py

environment.yml: requirements.txt scripts/write_environment.py  ## Regenerate environment.yml from requirements.txt
	$(PYTHON) scripts/write_environment.py

.PHONY: lint linkcheck
lint: $(STAMP)  ## Lint (ruff) the code and the chapters; check the Python files' format
	$(PY) -m ruff check src tests scripts notebooks conftest.py
	$(PY) -m ruff format --check src tests scripts conftest.py

linkcheck: $(STAMP)  ## Check every external link of the book (needs the network)
	$(VENV)/bin/jupyter-book build . --builder linkcheck

.PHONY: pdf
pdf: $(STAMP)  ## The whole book as one PDF (SOLUTIONS=omit leaves them out), beside the HTML
	$(PY) scripts/pdf.py --out $(BUILD)/html/downloads/second-order-autodiff.pdf \
	  --solutions $(or $(SOLUTIONS),include)

.PHONY: screenshots
screenshots: $(STAMP)  ## Screenshot chapters (desktop, phone, dark, ch. 12) and JupyterLab into _build/screenshots
	$(PY) scripts/screenshots.py --out $(BUILD)/screenshots $(if $(CHAPTER),--chapter $(CHAPTER),)

clean:  ## Remove build output (keeps .venv)
	rm -rf $(BUILD) .pytest_cache .jupyter_cache
