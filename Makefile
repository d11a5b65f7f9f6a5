# `make demo` and `make test` do everything on a fresh Debian 12 machine.
.PHONY: install demo test unit lint bench clean-sandbox

install:
	scripts/bootstrap

demo: install
	scripts/demo

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
