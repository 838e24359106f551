# The two commands a newcomer runs: `make demo` and `make test`.
PY := .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: bootstrap demo test lint bench clean

bootstrap:
	@scripts/bootstrap

demo: bootstrap
	@scripts/demo

test: bootstrap
	$(PY) -m pytest -q

lint: bootstrap
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy
	.venv/bin/lint-imports --no-cache

bench:
	@scripts/bootstrap --bench
	$(PY) bench/run.py

clean:
	@# the demo's lab may hold a mounted volume: take it down before deleting
	@if [ -x .venv/bin/haprotect ] && [ -f demo-out/lab/lab.json ]; then \
	  .venv/bin/haprotect lab down --dir demo-out/lab --purge; fi
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache demo-out bench/out
