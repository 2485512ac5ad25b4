# Set-up on a fresh machine is part of every target: `make demo`, `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

# open_clip imports torchvision, which only imports beside a matching torch: the pair below
# (a CUDA build, ~6 GB, ~2 min from the local mirror) lives in its own venv, used only for the
# open_clip tests, so the main venv stays on the light CPU torch.
MVENV  ?= .venv-models
MPY    := $(MVENV)/bin/python
MTORCH ?= torch==2.14.1 torchvision==0.29.1
MSTAMP := $(MVENV)/.installed

.PHONY: demo test test-fast install bench browser clean

$(PY):
	python3 -m venv $(VENV)

# A bare `torch` requirement on a machine without torch pulls a multi-GB CUDA build:
# install the pinned CPU wheel first, then the package (whose torch range it satisfies).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH)"
	$(PIP) install -e .
	touch $@

$(TSTAMP): $(STAMP)
	$(PIP) install -e ".[test,viz]" "$(TORCH)"
	touch $@

$(MPY):
	python3 -m venv $(MVENV)

$(MSTAMP): pyproject.toml | $(MPY)
	$(MPY) -m pip --disable-pip-version-check -q install $(MTORCH)
	$(MPY) -m pip --disable-pip-version-check -q install -e ".[openclip]" pytest $(MTORCH)
	touch $@

# CI (CI=true, root) installs Debian's chromium for the browser test of the HTML report.
browser:
	@if [ -n "$$CI" ] && ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser test will skip"; fi

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/latentlab demo

test: $(TSTAMP) $(MSTAMP) browser
	$(PY) -m pytest -q
	LATENTLAB_REQUIRE_MODELS=1 $(MPY) -m pytest -q tests/loaders/test_openclip.py

# The edit loop: unit tests without the coverage simulations, notebooks, browser and model loading.
test-fast: $(TSTAMP)
	$(PY) -m pytest -q -m "not slow and not browser and not models" --ignore=tests/test_notebooks.py --ignore=tests/loaders

# The peers' table (bench/results/latest.md); the peers come from the bench extra, not from test.
# Run it on a quiet machine: the timings move with other jobs' load.
bench: $(STAMP)
	$(PIP) install -e ".[bench]" "$(TORCH)"
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(MVENV) build *.egg-info .pytest_cache
