# YakYak developer entry points.
#
#   make run    demo data in ./var, then `yakyak serve` in the foreground (Ctrl-C stops it)
#   make test   the whole pytest suite, with sipp/sipsak/baresip for tests/e2e
#   make lint   ruff format --check, ruff check, mypy
#   make bench  side by side with references, in one run: REGISTER rate, RSS and start-up
#               time vs Kamailio; call setups/s vs sippy's B2BUA and Kamailio; relayed
#               and transcoded RTP streams vs rtpengine (bench-register, bench-calls,
#               bench-relay run one of them)
#   make clean  caches and build leftovers (distclean also removes .venv and var)
#
# Setup works on a fresh Debian 12 machine: tests/tools/ensure-debs.sh installs
# the missing apt packages (sudo when not root; nothing when all are present),
# then .venv is built and `pip install -e '.[test,systemd]'` runs. A stamp in
# .venv skips that until pyproject.toml changes.

SHELL := /bin/sh
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.yakyak-setup
ENSURE_DEBS := tests/tools/ensure-debs.sh

# Prompts and music on hold (CC-BY-SA 3.0, see README): Debian's Asterisk sound sets.
SOUND_DEBS := asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav \
	asterisk-core-sounds-fr-wav asterisk-moh-opsound-wav
RUN_DEBS := python3 python3-venv python3-dev gcc pkg-config libsystemd-dev libasound2-dev \
	$(SOUND_DEBS)
TEST_DEBS := $(RUN_DEBS) sip-tester sipsak baresip chromium chromium-driver systemd
BENCH_DEBS := $(TEST_DEBS) kamailio kamailio-sqlite-modules sqlite3 rtpengine-daemon

DATA ?= var
SIP ?= 0.0.0.0:5060
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: setup run test lint bench hil clean distclean

setup:
	@$(ENSURE_DEBS) $(RUN_DEBS)
	@$(MAKE) --no-print-directory -q $(STAMP) || $(MAKE) --no-print-directory $(STAMP)

# python3 -m venv leaves a .venv without pip when python3-venv was missing;
# such a .venv is rebuilt.
$(STAMP): pyproject.toml
	test -x $(BIN)/pip || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,systemd]'
	touch $@

run: setup
	$(BIN)/yakyak demo --data $(DATA)
	exec $(BIN)/yakyak serve --data $(DATA) --sip $(SIP)

test: setup
	@$(ENSURE_DEBS) $(TEST_DEBS)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: bench-register bench-calls bench-relay bench-playback

.PHONY: bench-register bench-calls bench-relay bench-playback
bench-register: setup
	@$(ENSURE_DEBS) $(BENCH_DEBS)
	$(BIN)/python tests/bench/register_bench.py $(BENCH_ARGS)

# call setups/s through sippy's B2BUA (PyPI, throwaway venv), Kamailio and yakyak
bench-calls: setup
	@$(ENSURE_DEBS) $(BENCH_DEBS)
	$(BIN)/python tests/bench/call_bench.py $(BENCH_ARGS)

# concurrent RTP streams relayed (and transcoded) by yakyak's relay and by rtpengine
bench-relay: setup
	@$(ENSURE_DEBS) $(BENCH_DEBS)
	$(BIN)/python tests/bench/rtp_relay_bench.py $(BENCH_ARGS)

# prompt playback to N legs by yakyak's media engine and by rtpengine's "play media"
bench-playback: setup
	@$(ENSURE_DEBS) $(BENCH_DEBS)
	$(BIN)/python tests/bench/playback_bench.py $(BENCH_ARGS)

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build bench-results
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -f $(STAMP)

distclean: clean
	rm -rf $(VENV) $(DATA) *.egg-info

# Hardware-in-the-loop scenarios against the sim board (a report in hil-results/);
# also run by `make test` through tests/e2e/test_hil_sim.py.
hil: setup
	@$(ENSURE_DEBS) $(TEST_DEBS)
	$(BIN)/python -m hil.run
