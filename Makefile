# The two commands of the README:
#   make reproduce   # set up .venv if needed, then run the default experiment (all its notebooks)
#   make test        # set up .venv if needed, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
EXPERIMENT ?= experiments/default.yaml
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: reproduce test install notebooks clean-venv

# One install step: requirements.txt pins torch==2.13.0 together with everything else.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -e .
	touch $@

install: $(VENV)/.installed

reproduce: $(VENV)/.installed
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) -m r1lib run $(EXPERIMENT)

test: $(VENV)/.installed
	WANDB_MODE=disabled $(PY) -m pytest -q $(PYTEST_ARGS)

# Notebooks are edited as their paired percent-format scripts (notebooks/*.py, pairing in
# notebooks/jupytext.toml); this rewrites the .ipynb from them (no outputs). Commit both.
notebooks: $(VENV)/.installed
	$(VENV)/bin/jupytext --sync notebooks/*.py

clean-venv:
	rm -rf $(VENV)
