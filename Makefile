# Quickstart: `make run` (main job on the bundled defaults) and `make test`.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install run test sample clean

install: $(STAMP)

# sam2 is an sdist whose build imports torch: torch first, then sam2 without build isolation
# (SAM2_BUILD_CUDA=0: its optional CUDA extension only fills mask holes).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation sam2==1.1.0
	$(PIP) install -q -e '.[dev]'
	touch $@

# The default job: one PPO agent per track of the bundled sample (sam2rl/sample) on our trained
# nano tracker, then FIFO, SAMURAI, DAM4SAM, SAM2Long, the oracle and the agents scored on the
# same tracks; table on the console, results and plots in runs/overfit/.
run: install
	$(VENV)/bin/lightning run recipes/overfit.yaml

test: install
	$(PY) -m pytest -q

# Regenerate the bundled sample (same seed, same bytes).
sample: install
	rm -rf sam2rl/sample
	$(VENV)/bin/sam2rl synth --out sam2rl/sample --num 2 --seed 1000 --difficulty medium --frames 24 --size 128

clean:
	rm -rf $(VENV) runs .pytest_cache
