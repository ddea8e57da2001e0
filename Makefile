# The two commands of the README: `make run` serves the app, `make test` runs every test.
# Both set everything up on a fresh machine (Python 3.11): .venv and the pinned requirements.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: install run test test-lowest qa fuzz bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

run: install
	./scripts/run.sh

test: install
	$(BIN)/python -m pytest

# The suite once more against the LOWEST versions setup.cfg allows (its install_requires and
# extras, each pinned at its lower bound by scripts/lowest_requirements.py), with the dev/test
# tools of requirements-dev.txt but not its newest runtime pins, in a second environment built
# anew whenever setup.cfg, requirements-dev.txt or the script changes.
LOWEST_VENV  := .venv-lowest
LOWEST_STAMP := $(LOWEST_VENV)/.installed-$(shell cat setup.cfg requirements-dev.txt scripts/lowest_requirements.py | cksum | cut -d' ' -f1)

$(LOWEST_STAMP): setup.cfg requirements-dev.txt scripts/lowest_requirements.py
	rm -rf $(LOWEST_VENV)
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(PYTHON) scripts/lowest_requirements.py --dev requirements-dev.txt > $(LOWEST_VENV)/requirements.txt
	$(LOWEST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(LOWEST_VENV)/requirements.txt
	touch $@

test-lowest: $(LOWEST_STAMP)
	$(LOWEST_VENV)/bin/python -m pytest

# The app on a throwaway embedded database (its own ports), the curl smoke test and the
# Schemathesis runs against it, everything stopped afterwards. `make fuzz`: Schemathesis only.
qa: install
	./scripts/qa_run.sh

fuzz: install
	./scripts/qa_run.sh fuzz

# Ours against a minimal reference (bench/reference_app.py) on one embedded database, in one
# run: prints a table and writes bench/results.json (about 15 minutes on 2 cores).
bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(LOWEST_VENV) var .pytest_cache

# Ralph, a real xAPI LRS for the tests (tests/lrs.py), in its own venv: its `cli` extra pins
# click<8.2.1, which clashes with .venv. Same stamp scheme as .venv; `make test` needs it.
RALPH_VENV  := .venv-ralph
RALPH_STAMP := $(RALPH_VENV)/.installed-$(shell cksum < requirements-ralph.txt | cut -d' ' -f1)

.PHONY: ralph clean-ralph system-deps

$(RALPH_STAMP): requirements-ralph.txt
	test -x $(RALPH_VENV)/bin/python || $(PYTHON) -m venv $(RALPH_VENV)
	$(RALPH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-ralph.txt
	rm -f $(RALPH_VENV)/.installed-*
	touch $@

ralph: $(RALPH_STAMP)

test test-lowest: ralph system-deps

# Debian's chromium, ffmpeg and prometheus, which the tests drive for real (installed only
# when missing; nothing is started).
system-deps:
	./scripts/system_deps.sh

clean: clean-ralph

clean-ralph:
	rm -rf $(RALPH_VENV)
