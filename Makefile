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

# Until the trained nano tracker lands (issue 6), the default job is SAM 2's FIFO rule
# evaluated on the bundled synthetic sample with random nano weights: plumbing, not quality.
run: install
	$(VENV)/bin/sam2rl eval --data data/sample --model nano --random-weights \
		--controllers fifo --json runs/default/scores.json --dump-masks runs/default/masks

test: install
	$(PY) -m pytest -q

# Regenerate the bundled sample (same seed, same bytes).
sample: install
	rm -rf data/sample
	$(VENV)/bin/sam2rl synth --out data/sample --num 2 --seed 1000 --difficulty medium --frames 24 --size 128

clean:
	rm -rf $(VENV) runs .pytest_cache
