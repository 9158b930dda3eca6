# imunifyemail — developer entry points. Everything runs as root on Debian 12.
SHELL := /bin/bash
# Debian's Python: the daemon drops to _imunifyemail, which must be able to read the
# interpreter and its stdlib (a Python under /root would break its lazy imports).
PYTHON ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv exim4-daemon-heavy rspamd php-cli iproute2 util-linux procps passwd chromium \
	rpm rpmlint shellcheck patchelf gnupg systemd-container redis-server prometheus
STAMP := $(VENV)/.installed
# The second interpreter the suite runs on: EL8/EL9's 3.9 (make python39), in a venv of its own.
PYTHON39 := build/python3.9/bin/python3.9
VENV39 := .venv39
PY39 := $(VENV39)/bin/python
STAMP39 := $(VENV39)/.installed
# What runs on 3.9 besides the el8/el9 packages' installed runs: all but the Exim stack, the packages, the container
# and the browser (Playwright 1.61+ needs 3.10). Its own cache, so --lf stays per interpreter.
PYTEST39 := $(PY39) -m pytest -q -o cache_dir=.pytest_cache/py39 -m "not system and not rpm and not systemd and not browser"

TARGET ?= local
RELEASE ?= 1
SIGN_KEY ?=

.PHONY: rpm deps python39 venv venv39 run sandbox-start sandbox-stop demo test test-fast test-py39 bench lint screenshots clean

# System packages the product and its tests run on (real Exim, Rspamd, PHP).
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

# CPython 3.9 (EL8's python39, EL9's python3) for the EL packages and the suite's 3.9 run: build/python3.9.
python39: deps
	devtools/python39.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

$(STAMP39): pyproject.toml | python39
	$(PYTHON39) -m venv $(VENV39)
	$(PY39) -m pip install -q --upgrade pip
	$(PY39) -m pip install -q -e '.[test]'
	touch $(STAMP39)

venv39: $(STAMP39)

# The product on this machine (.sandbox/root): Exim on 127.0.0.1:2525 with the filter enabled,
# imunifyemaild, Rspamd, remote mail kept in .sandbox/sink/. Foreground until Ctrl-C.
run: deps venv
	$(PY) -m devtools.sandbox run

# The same in the background, for scripts; demo sends sample mail to a running sandbox.
sandbox-start: deps venv
	$(PY) -m devtools.sandbox start

sandbox-stop: venv
	$(PY) -m devtools.sandbox stop

demo: venv
	$(PY) -m devtools.sandbox demo

# The RPM (rpm/README.md): TARGET=local (this machine's Python), el8 or el9 (Python 3.9);
# SIGN_KEY=<gpg key id> signs it.
rpm: deps venv $(if $(filter el%,$(TARGET)),python39)
	rpm/build.sh --target $(TARGET) --release $(RELEASE) $(if $(SIGN_KEY),--sign $(SIGN_KEY))

# Every test on 3.11, then the unit, store, daemon, CLI and web tests on 3.9 (PYTEST39); both run,
# and a failure in either fails the target.
test: deps venv venv39
	@status=0; \
	echo "== $$($(PY) -V) ($(PY)): every test"; \
	$(PY) -m pytest -q || status=1; \
	echo "== $$($(PY39) -V) ($(PY39)): all but the system, rpm, systemd and browser tests"; \
	$(PYTEST39) || status=1; \
	exit $$status

# The 3.9 run of make test alone.
test-py39: deps venv39
	@echo "== $$($(PY39) -V) ($(PY39)): all but the system, rpm, systemd and browser tests"
	$(PYTEST39)

# The unit tests alone: no Exim stack, no service started, no RPM, no browser (the markers in pyproject.toml).
test-fast: deps venv
	$(PY) -m pytest -q -m "not system and not service and not rpm and not browser and not systemd"

bench: deps venv
	$(PY) -m bench

# The README's pictures of the pages, taken by the browser tests in real Chromium.
screenshots: deps venv
	IE_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/web/test_browser.py

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(VENV39) .sandbox .pytest_cache
