# audiocraft-mmd. `make demo`: set up, then fine-tune the packaged pretrained codec with the MMD on the default music data.
# `make test`: set up and run the tests (< 10 min on 2 cores). See README.md.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
DORA := $(VENV)/bin/dora
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
DATA_STAMP := dataset/mmd_music/summary.json
# The release path at CPU scale: the packaged stand-in release (audiocraft_mmd/pretrained/encodec-cpu-standin, in
# transformers' format) fine-tuned with the MMD, encoder only, 2 x 60 updates (~3 min alone on one core); then what
# changed (TC, reconstruction) and where to listen (docs/finetune_rehearsal/README.md).
DEMO_ARGS := solver=compression/encodec_mmd_finetune_cpu device=cpu

.PHONY: install sync lock doctor system-deps data demo test test-slow test-slurm bench reproduce reproduce-quick reproduce-lm lint clean

install: $(STAMP)

# The Debian packages of the demo-set builder (FluidSynth, soundfonts, recorded music): only `make data` and the
# tests need them; as root with apt they are installed, otherwise named with how to get them (apt, conda, module).
system-deps: install
	@VPY=$(VPY) bash scripts/system_deps.sh

# Idempotent: re-runs only when the lock or the files that make it change. .venv is synced to requirements.lock
# exactly (uv pip sync: hashes required, packages not in the lock removed); see scripts/lock.sh for what the
# lock holds and why audiocraft, DAC and musicnn are in it without their published dependencies. Needs no root
# and no system package: ffmpeg comes from the lock (imageio-ffmpeg's static binary, linked as .venv/bin/ffmpeg;
# audiocraft_mmd/compat/ffmpeg.py says why).
$(STAMP): requirements.lock setup.cfg pyproject.toml Makefile audiocraft_mmd/compat/ffmpeg.py
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 12) else \
		"error: Python 3.11 or 3.12 is needed, $(PYTHON) is %d.%d (set PYTHON=python3.11)" % v)'
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@rm -f $(STAMP)
	# The installer itself comes from the lock, hash-checked: pip installs the locked uv, uv syncs the rest.
	sed -n '/^uv==/,/# via/p' requirements.lock > $(VENV)/uv.lock.txt
	$(VPY) -m pip install -q --no-deps --require-hashes -r $(VENV)/uv.lock.txt
	$(UV) pip sync -q --require-hashes --python $(VPY) requirements.lock
	$(UV) pip install -q --no-deps --no-build-isolation --python $(VPY) -e .
	$(VPY) -c 'from audiocraft_mmd.compat import ffmpeg; print(ffmpeg.link(ffmpeg.venv_bin()))'
	@touch $(STAMP)

# Re-sync .venv to the lock even when nothing changed since the last install (a hand-installed package, a drift).
sync:
	rm -f $(STAMP)
	$(MAKE) install

# Regenerate requirements.lock from setup.cfg, requirements/stack.txt and requirements/nodeps.in.
lock:
	bash scripts/lock.sh

# The environment check (also the first step of `make test`): compiled extensions import, .venv equals the lock.
doctor: install
	$(VPY) -m audiocraft_mmd.doctor

data: system-deps
	$(VPY) -m audiocraft_mmd.data.prepare

$(DATA_STAMP):
	$(MAKE) data

demo: install $(DATA_STAMP)
	$(DORA) run $(DEMO_ARGS)
	$(VPY) -m audiocraft_mmd.xp_summary $(DEMO_ARGS)
	$(VPY) -m audiocraft_mmd.finetune_demo $(DEMO_ARGS)

# PYTEST_ARGS narrows the run (a path, -k EXPR), e.g. `make test PYTEST_ARGS=tests/grids`.
test: system-deps
	$(VPY) -m audiocraft_mmd.doctor
	$(VPY) -m pytest -m "not slow and not slurm" -q --basetemp=.pytest_tmp $(PYTEST_ARGS)

test-slow: system-deps
	$(VPY) -m pytest -m "slow and not slurm" -q --basetemp=.pytest_tmp

# Real `dora grid` launches: starts the one-node cluster (scripts/local_slurm.sh, installs slurm-wlm/munge if
# missing), runs the `slurm` tests, stops the cluster even when they fail.
test-slurm: system-deps
	bash scripts/local_slurm.sh start
	$(VPY) -m pytest -m slurm -q --basetemp=.pytest_tmp_slurm; rc=$$?; bash scripts/local_slurm.sh stop; exit $$rc

bench: install
	$(VPY) benchmarks/bench_mmd.py
	$(VPY) benchmarks/bench_independence.py
	$(VPY) benchmarks/bench_step.py
	$(VPY) benchmarks/bench_musicnn.py

reproduce: install $(DATA_STAMP)
	$(VPY) -m audiocraft_mmd.studies.codecs

reproduce-quick: install $(DATA_STAMP)
	$(VPY) -m audiocraft_mmd.studies.codecs --quick

# LM study (delay vs flatten LMs on the codecs of `make reproduce`, read from its results.json; missing
# codecs are trained by it). Flatten LMs generate 16 clips (timing, no FAD): 256 would add ~15 min per
# flatten LM on 2 cores. REPRODUCE_LM_ARGS=--quick for the ~30 min version.
reproduce-lm: install $(DATA_STAMP)
	$(VPY) -m audiocraft_mmd.studies.lm.solver --codec-results reports/reproduce/results.json --flatten-clips 16 \
		$(REPRODUCE_LM_ARGS)

lint: install
	$(VENV)/bin/flake8 audiocraft_mmd tests grids benchmarks

clean:
	rm -rf $(VENV) outputs .pytest_cache .local_slurm
