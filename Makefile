# The two commands of the README:  `make repro` (the whole pipeline)  and  `make test` (the tests).
# Both create .venv and install the pinned requirements on first use; they need Python 3.11+, make, bash and git.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
QUICK_DIR ?= build/quick
PYTEST_ARGS ?=

# The MIT-BIH copy: MITDB_DIR if set; else ../shared/data/mitdb when it exists; else ingest downloads.
SHARED_MITDB := $(abspath ../shared/data/mitdb)
ifeq ($(origin MITDB_DIR), undefined)
  ifneq ($(wildcard $(SHARED_MITDB)/100.hea),)
    MITDB_DIR := $(SHARED_MITDB)
  endif
endif
ifdef MITDB_DIR
  export MITDB_DIR := $(abspath $(MITDB_DIR))
endif
export PATH := $(BIN):$(PATH)
export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install repro quick test bench serve screenshots dvc clean help

help:
	@echo "make repro   - set up .venv and run the whole pipeline (dvc repro, default params.yaml)"
	@echo "make test    - set up .venv and run the test suite"
	@echo "make quick   - the whole DAG on the quick profile (profiles/quick.yaml) in $(QUICK_DIR)"
	@echo "make bench   - the speed benchmarks of benchmarks/"
	@echo "make serve   - the web page + JSON API on http://127.0.0.1:8000 (models/ from dvc repro; docs/webapp.md)"
	@echo "make dvc ARGS=\"...\" - any dvc command with .venv on PATH (the stages run its python)"

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The quick profile runs in a scratch copy of the working tree (tracked and untracked, not ignored,
# files) so that it never touches this checkout's params, dvc.lock or data.
quick: $(STAMP)
	rm -rf $(QUICK_DIR) && mkdir -p $(QUICK_DIR)
	git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C $(QUICK_DIR)
	cd $(QUICK_DIR) && $(BIN)/python -m pipelines.params params.yaml profiles/quick.yaml --out params.yaml \
	  && git init -q && git add -A && git -c user.name=quick -c user.email=quick@localhost commit -qm quick \
	  && $(BIN)/dvc repro

# Any dvc command with .venv first on PATH, e.g. make dvc ARGS="exp run -S render.engine=matplotlib".
dvc: $(STAMP)
	$(BIN)/dvc $(ARGS)

# The web app (docs/webapp.md) on uvicorn, localhost only; HOST/PORT override params.yaml's webapp section.
serve: $(STAMP)
	$(BIN)/python -m webapp $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# The page screenshots of docs/webapp.md, taken by the browser test (needs Debian's chromium).
screenshots: $(STAMP)
	WEBAPP_SCREENSHOTS=docs/img $(BIN)/python -m pytest -q tests/test_browser.py

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf build .pytest_cache
