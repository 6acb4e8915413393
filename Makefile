# One-command set-up: every target creates the virtual environment from the pinned files first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_SUITE := tests/local/node

.PHONY: help setup browser run test lint bench package clean

help:
	@echo "make run      set up, then start the local cloud + gateway with a demo bucket (python -m local up)"
	@echo "make test     set up, then run lint (ruff, mypy) and the whole test suite"
	@echo "make bench    set up, then run every benchmark under bench/"
	@echo "make package  build dist/<function>.zip and dist/layer.zip (what template.yml deploys)"

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(NODE_SUITE)/node_modules/.installed: $(NODE_SUITE)/package.json $(NODE_SUITE)/package-lock.json
	cd $(NODE_SUITE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The portal's browser tests drive Debian's Chromium (Playwright's executable_path); a CJK font renders the
# Simplified Chinese page. Installed here when missing and we may (root with apt-get); otherwise say how. A missing
# browser fails those tests, it never skips them.
BROWSER_PACKAGES := chromium fonts-wqy-microhei
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$PORTAL_CHROMIUM" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get install -y --no-install-recommends $(BROWSER_PACKAGES) >/dev/null \
		|| { apt-get update >/dev/null && apt-get install -y --no-install-recommends $(BROWSER_PACKAGES) >/dev/null; }; \
	else echo "The portal's browser tests need Chromium: sudo apt-get install -y $(BROWSER_PACKAGES)" \
		"(Debian/Ubuntu), or set PORTAL_CHROMIUM to a Chromium binary." >&2; fi

setup: $(VENV)/.installed $(NODE_SUITE)/node_modules/.installed browser

run: setup
	$(PY) -m local up $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# One worker per core; a file's tests stay on one worker (module-scoped stacks and the archive build are shared).
test: setup lint
	$(PY) -m pytest -p no:cacheprovider -n auto --dist loadfile

bench: setup
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done
	$(PY) bench/readme.py

package: $(VENV)/.installed
	$(PY) -m local package --out dist

clean:
	rm -rf $(VENV) dist .local-data artifacts $(NODE_SUITE)/node_modules
