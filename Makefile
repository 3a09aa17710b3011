# Developer entry points for plain-redis-saver.
# REDIS_URL (if set in the environment) is passed through to tests and the demo.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e ".[test,demo]"
	touch $(STAMP)

demo: venv
	$(VPY) examples/chatbot_functional.py

lint: venv
	$(VPY) -m ruff check .
	$(VPY) -m ruff format --check .
	$(VPY) -m mypy plain_redis_saver

test: venv
	$(MAKE) --no-print-directory lint
	$(VPY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# ---- benchmarks (see benchmarks/README.md); REDIS_URL, if set, is used instead of an
# embedded Valkey, and only the run's own keys are written and deleted.
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: bench bench-quick

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(VPY) -m pip install --quiet -e ".[bench,bench-peers]"
	touch $(BENCH_STAMP)

bench-quick: $(BENCH_STAMP)
	$(VPY) -m benchmarks.run --quick

bench: $(BENCH_STAMP)
	$(VPY) -m benchmarks.run
