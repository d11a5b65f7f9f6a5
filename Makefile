# `make demo` and `make test` do everything on a fresh Debian 12 machine.
.PHONY: install demo demo-sites test unit lint bench clean-sandbox

install:
	scripts/bootstrap

demo: install
	scripts/demo

# Two sites (two sandboxes with rbd-mirror): plan, apply, render, install, verify across both.
demo-sites: install
	scripts/demo-sites

# The Reef and Tentacle roots first (built when missing, scripts/releases): the
# release-sensitive tests run on all three releases (docs/releases.md).
test: install
	scripts/releases
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

# Other Ceph releases (docs/releases.md): a Debian root each for Reef (trixie) and Tentacle
# (forky) in /var/cache/cephstack/releases, built as root (about 2 minutes and 1 GB each).
.PHONY: releases test-releases clean-releases bench-releases
releases: install
	.venv/bin/python -m cephstack.sandbox.release build reef tentacle

# The seed cold apply on Pacific, Reef and Tentacle side by side (bench/releases.py).
bench-releases: install
	scripts/releases
	.venv/bin/python bench/releases.py

# The release-sensitive tests on Pacific, Reef and Tentacle, building missing roots first.
test-releases: install
	CEPHSTACK_BUILD_RELEASES=1 .venv/bin/python -m pytest -q tests/integration/test_releases.py \
	    tests/integration/test_key_migration.py tests/integration/test_release_day2.py

clean-releases:
	.venv/bin/python -m cephstack.sandbox.release remove reef tentacle
