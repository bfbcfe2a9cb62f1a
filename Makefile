# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv and install what they need the first time.
PY      := .venv/bin/python
STAMP   := .venv/.installed
JS      := js/node_modules/.package-lock.json
PYTEST_ARGS ?=

.PHONY: demo test lint bench bench-quick install js data browser clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) js

demo: $(STAMP) js
	.venv/bin/ganfactory demo --out out/demo

test: $(STAMP) js data browser
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest $(PYTEST_ARGS)

# Debian's torcs-data (the cars benchmark's 3-D models); a no-op when present.
data:
	sh scripts/install-torcs-data.sh

# Debian's chromium (the annotator's browser tests drive it with Playwright; not Playwright's own browser
# download, which fetches from outside the package registries); a no-op when present.
browser:
	sh scripts/apt-install.sh chromium chromium "install chromium by hand (the browser tests skip without it)"

# three.js for `ganfactory view` (the pages serve it themselves, no CDN): npm ci into js/node_modules, the exact
# versions of js/package-lock.json; redone when the lock file changes.
js: $(JS)

$(JS): js/package-lock.json
	sh scripts/npm-ci.sh

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/generator.py

# The cars benchmark end to end on tiny splits (CI runs it once, after `make test`): the slow test in tests/bench
# drives `ganfactory bench cars --quick` and checks results.json, the report and resuming.
bench-quick: $(STAMP) data
	$(PY) -m pytest -m slow tests/bench -q $(PYTEST_ARGS)

clean-venv:
	rm -rf .venv
