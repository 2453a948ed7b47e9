# Two commands matter: `make demo` and `make test`. Both set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= $(abspath ../shared)
# Debian packages: sctk is the NIST sclite scoring oracle used by the tests; the synthesisers
# (espeak-ng, flite, festival and its voices) make the offline corpus of recipes/synth.
APT_PACKAGES := sctk espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festlex-cmu sox
# KenLM's lmplz/build_binary/query are built from source by tools/install_kenlm.sh (asr lm).
APT_PACKAGES += cmake g++ make libboost-program-options-dev libboost-system-dev \
  libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev
# ffmpeg decodes WSJ's shorten-compressed SPHERE audio where sph2pipe is missing (recipes/wsj).
APT_PACKAGES += ffmpeg
# Slurm and munge: tests/test_slurm.py runs the slurm job launcher on a real one-node cluster.
APT_PACKAGES += slurm-wlm munge

.PHONY: setup apt demo demo-yesno test bench bench-setup wsj-tools lint clean

setup: apt $(VENV)/.installed tools/kenlm/bin/lmplz

# Installs only what is missing, so a machine that has everything makes no apt calls.
apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# torch is pinned to 2.13.0 in pyproject.toml: the CPU wheel, not gigabytes of CUDA packages.
$(VENV)/.installed: pyproject.toml setup.py asr/score/_calign.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# whisper's writers (whisper/utils.py, standard library only) read our JSON in the tests;
	# --no-deps: whisper's own model needs triton and numba, which nothing here imports
	$(BIN)/pip install -q --no-deps openai-whisper==20250625
	touch $@

# KenLM n-gram tools (about 1-2 min on 2 cores); the script is a no-op once they run.
tools/kenlm/bin/lmplz: tools/install_kenlm.sh | apt $(VENV)/.installed
	PIP=$(BIN)/pip tools/install_kenlm.sh tools/kenlm

# The embedded default: a corpus synthesised here (no download), phone and word models, %PER and
# %WER on unseen voices, one test utterance transcribed (recipes/synth; about 15 min on 2 cores).
demo: setup
	cd recipes/synth && ./run.sh

# Kaldi's yes/no: the corpus from ../shared, or downloaded from openslr. Its three models
# train two at a time, one thread each (the result does not depend on --jobs).
demo-yesno: setup
	@if [ -d "$(SHARED)/corpora/yesno/waves_yesno" ]; then \
	  cd recipes/yesno && ./run.sh --jobs 2 --corpus-dir $(SHARED)/corpora/yesno/waves_yesno; \
	else \
	  cd recipes/yesno && ./run.sh --jobs 2; \
	fi

test: setup
	$(BIN)/ruff check asr tests bench
	$(BIN)/ruff format --check asr tests bench
	ASR_SHARED=$(SHARED) $(BIN)/pytest -q

# WSJ's .wv1 audio needs sph2pipe or ffmpeg; sph2pipe is on neither PyPI nor Debian, so ffmpeg.
wsj-tools:
	@command -v sph2pipe >/dev/null || command -v ffmpeg >/dev/null || \
	  { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq ffmpeg; }

# The decoder benchmark's reference: pyctcdecode (which pins numpy<2 in its metadata but runs
# with numpy 2, hence --no-deps) with KenLM's Python module (compiled from source, ~1 min).
bench-setup: setup
	@$(BIN)/python -c "import pyctcdecode, kenlm" 2>/dev/null || \
	  $(BIN)/pip install -q --no-deps pyctcdecode pygtrie kenlm==0.3.0

bench: bench-setup
	@for b in bench/bench_*.py; do echo "== $$b"; ASR_SHARED=$(SHARED) $(BIN)/python $$b || exit 1; done

lint: setup
	$(BIN)/ruff check asr tests bench
	$(BIN)/ruff format --check asr tests bench

clean:
	rm -rf $(VENV) recipes/*/data recipes/*/exp recipes/*/downloads
