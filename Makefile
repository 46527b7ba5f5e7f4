# audiocraft-mmd. `make demo`: set up and train a CPU-sized EnCodec-MMD on the default music data.
# `make test`: set up and run the tests (< 10 min on 2 cores). See README.md.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
DORA := $(VENV)/bin/dora
STAMP := $(VENV)/.installed
DATA_STAMP := dataset/mmd_music/summary.json
# The CPU recipe, shortened to 5 x 60 updates (~6 min on one core): long enough to be a live codec.
DEMO_ARGS := solver=compression/encodec_mmd_cpu device=cpu optim.epochs=5 evaluate.every=5

.PHONY: install system-deps data demo test test-slow bench reproduce reproduce-quick reproduce-lm lint clean

install: $(STAMP)

system-deps:
	@bash scripts/system_deps.sh

# Idempotent: re-runs only when setup.cfg, pyproject.toml or this file change.
$(STAMP): setup.cfg pyproject.toml Makefile scripts/system_deps.sh
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 12) else \
		"error: Python 3.11 or 3.12 is needed, $(PYTHON) is %d.%d (set PYTHON=python3.11)" % v)'
	@bash scripts/system_deps.sh
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "torch==2.11.*" "torchaudio==2.11.*"
	# audiocraft's published pins (torch 2.1, numpy<2, old xformers) cannot hold next to torch 2.11:
	# install it without them; setup.cfg declares the runtime dependencies it really imports.
	$(VPY) -m pip install -q --no-deps audiocraft==1.3.0
	# descript-audio-codec (DAC's modules for models/dac_codec.py, no weights) needs descript-audiotools, whose
	# metadata pins protobuf<3.20 (the 2022 3.19 series; `import dac` reaches protobuf only through tensorboard and
	# runs with current releases) and a dozen notebook and metric tools that our code paths never import: install
	# both without their pins; setup.cfg declares the modules `import dac` really loads, protobuf at current ranges.
	$(VPY) -m pip install -q --no-deps descript-audio-codec==1.0.0 descript-audiotools==0.7.2
	# musicnn's wheel ships the pretrained checkpoints our offline FAD/KL read (audiocraft_mmd.metrics.musicnn);
	# its metadata pins numpy<1.17 and its own code needs TensorFlow, neither used here: install without them.
	$(VPY) -m pip install -q --no-deps musicnn==0.1.0
	$(VPY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

data: install
	$(VPY) -m audiocraft_mmd.data.prepare

$(DATA_STAMP):
	$(MAKE) data

demo: install $(DATA_STAMP)
	$(DORA) run $(DEMO_ARGS)
	$(VPY) -m audiocraft_mmd.xp_summary $(DEMO_ARGS)

test: install
	$(VPY) -m pytest -m "not slow" -q --basetemp=.pytest_tmp

test-slow: install
	$(VPY) -m pytest -m slow -q --basetemp=.pytest_tmp

bench: install
	$(VPY) benchmarks/bench_mmd.py
	$(VPY) benchmarks/bench_independence.py
	$(VPY) benchmarks/bench_step.py
	$(VPY) benchmarks/bench_musicnn.py

reproduce: install $(DATA_STAMP)
	$(VPY) -m audiocraft_mmd.reproduce

reproduce-quick: install $(DATA_STAMP)
	$(VPY) -m audiocraft_mmd.reproduce --quick

# LM study (delay vs flatten LMs on the codecs of `make reproduce`, read from its results.json; missing
# codecs are trained by it). Flatten LMs generate 16 clips (timing, no FAD): 256 would add ~15 min per
# flatten LM on 2 cores. REPRODUCE_LM_ARGS=--quick for the ~30 min version.
reproduce-lm: install $(DATA_STAMP)
	$(VPY) -m audiocraft_mmd.reproduce_lm --codec-results reports/reproduce/results.json --flatten-clips 16 \
		$(REPRODUCE_LM_ARGS)

lint: install
	$(VENV)/bin/flake8 audiocraft_mmd tests grids benchmarks

clean:
	rm -rf $(VENV) outputs .pytest_cache
