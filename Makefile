# Set-up on a fresh machine is part of every target: `make demo`, `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: demo test install bench clean

$(PY):
	python3 -m venv $(VENV)

# A bare `torch` requirement on a machine without torch pulls a multi-GB CUDA build:
# install the pinned CPU wheel first, then the package (whose torch range it satisfies).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH)"
	$(PIP) install -e .
	touch $@

$(TSTAMP): $(STAMP)
	$(PIP) install -e ".[test,viz]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/latentlab demo

test: $(TSTAMP)
	$(PY) -m pytest -q

bench: $(TSTAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
