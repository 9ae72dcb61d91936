# The two commands of the README: `make book` and `make test`.
# Each creates .venv and installs requirements.txt (and the autograde package, editable) when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

CHROMIUM ?= /usr/bin/chromium

.PHONY: book test browser sandbox release check-release clean lab

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Strict, executed build: a failing cell or any Sphinx warning fails it.
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

# Debian's Chromium for tests/test_browser.py (Playwright drives it; no browser is downloaded).
# Installed with apt-get when missing: as root, or with passwordless sudo; elsewhere the browser
# test skips (outside CI) and this says how to install it.
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "make: no $(CHROMIUM) and no apt-get: install Chromium, then run make test CHROMIUM=/path/to/chromium BOOK_CHROMIUM=/path/to/chromium"; \
	  elif [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  elif sudo -n true 2>/dev/null; then \
	    sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else \
	    echo "make: no $(CHROMIUM): run 'sudo apt-get install chromium chromium-driver' for the browser test"; \
	  fi; \
	fi

# bubblewrap: the grader's sandbox (autograde/grading/isolation.py). Installed with apt-get when
# missing, as for Chromium; without it `grade` refuses to run student code unless --no-isolation.
sandbox:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "make: no bwrap and no apt-get: install bubblewrap for the grader's sandbox"; \
	  elif [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; \
	  elif sudo -n true 2>/dev/null; then \
	    sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; \
	  else \
	    echo "make: no bwrap: run 'sudo apt-get install bubblewrap' for the grader's sandbox"; \
	  fi; \
	fi

# pytest exits 5 when it collected no test; that is not a failure of the suite.
test: $(STAMP) browser sandbox
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

# The students' JupyterLab: nbgrader's own plugins (Validate button, Create Assignment...) hidden,
# see jupyter/README.md.
lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" $(VENV)/bin/jupyter lab

release: $(STAMP)
	$(PY) -m autograde release

check-release: $(STAMP)
	$(PY) -m autograde release --check

clean:
	rm -rf _build
