# `make demo` and `make test` do everything on a fresh Debian 12 machine.
.PHONY: install demo demo-sites test unit lint bench clean-sandbox

install:
	scripts/bootstrap

demo: install
	scripts/demo

# Two sites (two sandboxes with rbd-mirror): plan, apply, render, install, verify across both.
demo-sites: install
	scripts/demo-sites

test: install
	.venv/bin/ruff check cephstack tests bench
	.venv/bin/python -m pytest -q tests

unit: install
	.venv/bin/python -m pytest -q tests/unit

lint: install
	.venv/bin/ruff check cephstack tests bench

bench: install
	.venv/bin/python bench/apply.py

clean-sandbox:
	-.venv/bin/cephstack sandbox down --dir sandbox
	-.venv/bin/cephstack sandbox down --dir sandbox-sites/central --cluster central
	-.venv/bin/cephstack sandbox down --dir sandbox-sites/edge1 --cluster edge1
