# Two commands matter: `make demo` and `make test`. Both set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= $(abspath ../shared)
# Debian packages: sctk is the NIST sclite scoring oracle used by the tests.
APT_PACKAGES := sctk

.PHONY: setup apt demo test bench lint clean

setup: apt $(VENV)/.installed

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
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: setup
	@if [ -d "$(SHARED)/corpora/yesno/waves_yesno" ]; then \
	  cd recipes/yesno && PATH=$(CURDIR)/$(BIN):$$PATH ./run.sh --corpus-dir $(SHARED)/corpora/yesno/waves_yesno; \
	else \
	  cd recipes/yesno && PATH=$(CURDIR)/$(BIN):$$PATH ./run.sh; \
	fi

test: setup
	$(BIN)/ruff check asr tests bench
	$(BIN)/ruff format --check asr tests bench
	ASR_SHARED=$(SHARED) $(BIN)/pytest -q

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; ASR_SHARED=$(SHARED) $(BIN)/python $$b || exit 1; done

lint: setup
	$(BIN)/ruff check asr tests bench
	$(BIN)/ruff format --check asr tests bench

clean:
	rm -rf $(VENV) recipes/*/data recipes/*/exp recipes/*/downloads
