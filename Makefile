# The commands of the README:
#   make reproduce   # set up .venv if needed, then run the default experiment (all its notebooks)
#   make test        # set up .venv if needed, then run the test suite
#   make lab         # set up .venv if needed, then open the notebooks in Jupyter Lab (the venv's kernel)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
EXPERIMENT ?= experiments/default.yaml
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: reproduce test lab install notebooks clean-venv
LAB_PORT ?= 8888

# One install step: requirements.txt pins torch==2.13.0 together with everything else. --no-compile: pip skips
# byte-compiling every installed module (thousands in torch, transformers, deepspeed; half of the install's time);
# Python compiles the modules it imports on first use.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt -e .
	touch $@

install: $(VENV)/.installed

reproduce: $(VENV)/.installed
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) -m r1lib run $(EXPERIMENT)

# One pytest worker per core, one torch thread each: the small models' tests do not scale to a second thread, two
# processes do (results/benchmarks/parallel_arms.json); the local Slurm cluster's tests share one worker (conftest.py).
# PYTEST_WORKERS=1 runs it in one process.
PYTEST_WORKERS ?= logical
test: $(VENV)/.installed
	WANDB_MODE=disabled OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Jupyter Lab on the project: the "python3" kernel is the venv's (ipykernel installs its spec into the venv),
# the notebooks open in notebooks/ and find experiments/ from there (r1lib.config.load_config); jupytext keeps
# each .ipynb and its .py in step when saved; --allow-root only for root (containers). Extra options: make lab LAB_ARGS="--no-browser --ip=0.0.0.0".
lab: $(VENV)/.installed
	WANDB_MODE=$${WANDB_MODE:-offline} $(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) \
		--LabApp.default_url=/lab/tree/notebooks --port=$(LAB_PORT) $(if $(filter 0,$(shell id -u)),--allow-root) \
		$(LAB_ARGS)

# Notebooks are edited as their paired percent-format scripts (notebooks/*.py, pairing in
# notebooks/jupytext.toml); this rewrites the .ipynb from them (no outputs). Commit both.
notebooks: $(VENV)/.installed
	$(VENV)/bin/jupytext --sync notebooks/*.py

clean-venv:
	rm -rf $(VENV)
