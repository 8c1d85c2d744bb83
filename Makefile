# The two Quickstart commands: `make quickstart` and `make test`.
PY ?= python3

.PHONY: quickstart install test
install:
	[ -x .venv/bin/python ] || $(PY) -m venv .venv
	.venv/bin/python -m pip install -q --upgrade pip
	.venv/bin/python -m pip install -q -e .

quickstart: install
	.venv/bin/selfcodealign run --preset quickstart

test:
	bash scripts/install-test-deps.sh
	.venv/bin/python -m pytest -q
