# Chorus set-up for a fresh Debian/Ubuntu machine: `make demo`, then `make test`.
#
# `setup` installs what `chorus serve` and `chorus compose` need: the system packages (apt, with
# sudo when not root; redis-server too when CHORUS_QUEUE=celery, in the environment or .env),
# .venv with Python 3.11, 3.12 or 3.13, torch and the project. `test` and `lint` add the dev tools
# (pytest, ruff, ...) and the test machine's packages (redis-server for the Celery tests, systemd
# for `systemd-analyze verify` of deploy/). Every step checks before it acts, so a second run
# takes about a second. Stamp files inside .venv record finished steps; `make clean` removes them.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := setup

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Leave empty to pick python3.11, then python3.12, then python3.13, then python3 if it is one of them.
PYTHON ?=

TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# The queue backend (.env's CHORUS_QUEUE unless the environment sets it): celery needs redis-server.
CHORUS_QUEUE ?= $(shell sed -n 's/^CHORUS_QUEUE=//p' .env 2>/dev/null | tail -n 1)
# Empty these (`make setup SYSTEM_PACKAGES= TEST_PACKAGES=`) to skip apt on a machine set up by hand.
# libcairo2 and fonts-dejavu-core: the lead sheet is drawn by cairosvg (engine/media/sheet.py)
SYSTEM_PACKAGES ?= fluidsynth fluid-soundfont-gm ffmpeg libcairo2 fonts-dejavu-core $(if $(filter celery,$(strip $(CHORUS_QUEUE))),redis-server)
# What `make test` adds: Redis for the Celery tests, systemd-analyze for the deploy/ units.
TEST_PACKAGES ?= redis-server systemd

CHORUS_CORPUS_DIR ?= $(abspath ../shared/corpus)
export CHORUS_CORPUS_DIR
PYTEST_ARGS ?=
# pytest-xdist: one process more than the cores (at most 5; much of the suite waits on real bot,
# Redis and Celery processes), whole modules each, the longest first (tests/conftest.py)
TEST_PROCS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n + 1 < 5 ? n + 1 : 5 )))
PYTEST_XDIST ?= -n $(TEST_PROCS) --dist loadfile --no-loadscope-reorder

# Shell snippet: apt-get update + install of the packages in $$pkgs, via sudo when not root.
define APT_INSTALL
if [ "$$(id -u)" -eq 0 ]; then sudo=""; else
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install:$$pkgs" >&2; exit 1; }
  sudo=sudo
fi
echo "==> apt-get install$$pkgs"
$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update
$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$pkgs
endef

# Shell snippet: install those of the packages in $$want that dpkg does not list as installed.
define INSTALL_MISSING
[ -n "$$want" ] || exit 0
command -v dpkg-query >/dev/null || {
  echo "setup: no dpkg-query; install $$want yourself and run with SYSTEM_PACKAGES= TEST_PACKAGES=" >&2
  exit 1
}
pkgs=""
for p in $$want; do
  case "$$(dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null || true)" in
    *" installed") ;;
    *) pkgs="$$pkgs $$p" ;;
  esac
done
[ -z "$$pkgs" ] && exit 0
$(APT_INSTALL)
endef

.PHONY: setup setup-dev system-packages test-packages demo test test-fast lint clean

setup: system-packages $(VENV)/.chorus-deps

setup-dev: setup test-packages $(VENV)/.chorus-dev

system-packages:
	@want="$(strip $(SYSTEM_PACKAGES))"
	$(INSTALL_MISSING)

test-packages:
	@want="$(strip $(TEST_PACKAGES))"
	$(INSTALL_MISSING)

# pydub imports audioop, which Python 3.13 removed: on 3.13 the audioop-lts package stands in (pyproject).
$(VENV)/.chorus-venv:
	@ok_py() { "$$1" -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12), (3, 13)))' 2>/dev/null; }
	if [ -x "$(PY)" ] && ok_py "$(PY)"; then
	  echo "==> reusing $(VENV) ($$($(PY) --version))"
	  touch "$@"; exit 0
	fi
	find_py() {
	  for c in $(PYTHON) python3.11 python3.12 python3.13 python3; do
	    if command -v "$$c" >/dev/null && ok_py "$$c"; then echo "$$c"; return 0; fi
	  done
	  return 1
	}
	if ! py="$$(find_py)" && command -v dpkg-query >/dev/null; then
	  pkgs=" python3 python3-venv"
	  $(APT_INSTALL)
	fi
	py="$$(find_py)" || {
	  echo "setup: need Python 3.11, 3.12 or 3.13 (python3.11, python3.12, python3.13 or python3)." \
	       "Found: $$(python3 --version 2>&1 || true)" >&2
	  exit 1
	}
	# Debian/Ubuntu ship ensurepip (needed by venv) in a separate pythonX.Y-venv package.
	if ! "$$py" -c 'import ensurepip' 2>/dev/null && command -v dpkg-query >/dev/null; then
	  pkgs=" python$$("$$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
	  $(APT_INSTALL)
	fi
	echo "==> creating $(VENV) with $$(command -v "$$py") ($$("$$py" --version))"
	rm -rf "$(VENV)"
	"$$py" -m venv "$(VENV)" || { rm -rf "$(VENV)"; echo "setup: '$$py -m venv' failed" >&2; exit 1; }
	touch "$@"

# torch comes first so that a CPU machine never pulls the multi-GB CUDA build from PyPI.
$(VENV)/.chorus-torch-$(TORCH_VERSION): $(VENV)/.chorus-venv
	@rm -f $(VENV)/.chorus-torch-*
	if $(PY) -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "$(TORCH_VERSION)")' 2>/dev/null; then
	  echo "==> torch $(TORCH_VERSION) already installed"
	elif command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
	  echo "==> GPU found: installing torch $(TORCH_VERSION) (CUDA build)"
	  $(PIP) install "torch==$(TORCH_VERSION)"
	else
	  tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT
	  if $(PIP) download -q --no-deps --no-index -d "$$tmp" "torch==$(TORCH_VERSION)" 2>/dev/null; then
	    # A local wheel (pip's find-links) exists: install exactly that file.
	    echo "==> no GPU: installing local wheel $$(basename "$$tmp"/torch-*.whl)"
	    $(PIP) install "$$tmp"/torch-*.whl
	  else
	    # On x86_64 pin the +cpu build: PyPI (kept for torch's own dependencies) has no such
	    # version, so an unreachable CPU index fails here instead of falling back to CUDA.
	    spec="torch==$(TORCH_VERSION)"; [ "$$(uname -m)" = x86_64 ] && spec="$$spec+cpu"
	    echo "==> no GPU: installing $$spec from $(TORCH_CPU_INDEX)"
	    $(PIP) install "$$spec" --index-url "$(TORCH_CPU_INDEX)" \
	      --extra-index-url https://pypi.org/simple || {
	      echo "setup: could not install $$spec from $(TORCH_CPU_INDEX)" >&2; exit 1; }
	  fi
	fi
	touch "$@"

$(VENV)/.chorus-deps: pyproject.toml $(VENV)/.chorus-torch-$(TORCH_VERSION)
	@echo "==> installing chorus and its dependencies into $(VENV)"
	$(PIP) install -e .
	touch "$@"

# The dev tools (pytest, hypothesis, ruff), for `make test` and `make lint` only.
$(VENV)/.chorus-dev: pyproject.toml $(VENV)/.chorus-deps
	@echo "==> installing the dev tools into $(VENV)"
	$(PIP) install -e '.[dev]'
	touch "$@"

# Composes a 30 s jazz clip with the shipped checkpoint: out/clip.ogg, out/clip.mid, out/clip.png.
demo: setup
	@$(VENV)/bin/chorus compose jazz 30s --out out/

test: setup-dev
	@$(PY) -m pytest -q $(PYTEST_XDIST) --durations=15 $(PYTEST_ARGS)

# For local work: everything but the slow end-to-end modules (CI and `make test` run them all).
test-fast: setup-dev
	@$(PY) -m pytest -q $(PYTEST_XDIST) -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.chorus-dev
	@$(VENV)/bin/ruff check engine training bot tests bench

clean:
	rm -rf $(VENV) out/
