# The two commands of the README: `make book` and `make test`.
# Each creates .venv and installs requirements.txt (and the autograde package, editable) when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: book test release check-release clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Strict, executed build: a failing cell or any Sphinx warning fails it.
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

# pytest exits 5 when it collected no test; that is not a failure of the suite.
test: $(STAMP)
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

release: $(STAMP)
	$(PY) -m autograde release

check-release: $(STAMP)
	$(PY) -m autograde release --check

clean:
	rm -rf _build
