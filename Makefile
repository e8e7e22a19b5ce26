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

# Until the finished nano tracker and the default training job land, the default job scores
# SAM 2's FIFO rule and the baseline controllers on the bundled synthetic sample with the
# work-in-progress nano weights (data/nano-wip.md).
run: install
	$(VENV)/bin/sam2rl eval --data data/sample --model nano --checkpoint data/nano-wip.pt \
		--controllers fifo,samurai,dam4sam,sam2long,oracle --json runs/default/scores.json \
		--csv runs/default/scores.csv --plots runs/default/plots --dump-masks runs/default/masks

test: install
	$(PY) -m pytest -q

# Regenerate the bundled sample (same seed, same bytes).
sample: install
	rm -rf data/sample
	$(VENV)/bin/sam2rl synth --out data/sample --num 2 --seed 1000 --difficulty medium --frames 24 --size 128

clean:
	rm -rf $(VENV) runs .pytest_cache
