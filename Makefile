# imunifyemail — developer entry points. Everything runs as root on Debian 12.
SHELL := /bin/bash
# Debian's Python: the daemon drops to _imunifyemail, which must be able to read the
# interpreter and its stdlib (a Python under /root would break its lazy imports).
PYTHON ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv exim4-daemon-heavy rspamd php-cli iproute2 util-linux procps passwd chromium \
	rpm rpmlint shellcheck patchelf gnupg systemd-container
STAMP := $(VENV)/.installed

TARGET ?= local
RELEASE ?= 1
SIGN_KEY ?=

.PHONY: rpm deps python39 venv run sandbox-start sandbox-stop demo test test-fast bench lint screenshots clean

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

test: deps venv
	$(PY) -m pytest -q

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
	rm -rf $(VENV) .sandbox .pytest_cache
