# YakYak developer entry points.
#
#   make run    demo data in ./var, then `yakyak serve` in the foreground (Ctrl-C stops it)
#   make test   the whole pytest suite, with sipp/sipsak/baresip for tests/e2e, then image-test
#   make lint   ruff format --check, ruff check, mypy
#   make bench  side by side with references, in one run: REGISTER rate, RSS and start-up
#               time vs Kamailio; call setups/s vs sippy's B2BUA and Kamailio; relayed
#               and transcoded RTP streams vs rtpengine (bench-register, bench-calls,
#               bench-relay run one of them)
#   make clean  caches and build leftovers (distclean also removes .venv and var)
#   make image  the OS images (Raspberry Pi 4 and BeagleBone Black SD cards, qemu virt disks
#               for arm64 and armhf) and signed RAUC bundles in build/image/
#               (image/README.md); needs root
#   make image-test-vm  the arm64 virt image in qemu: boot, then A/B updates and rollback
#   make image-test-vm-armhf  the same with the armhf rootfs (the BeagleBone's) in qemu-system-arm
#   make image-test     the host architecture's rootfs (same recipe, cached in .cache/image)
#               booted with systemd-nspawn and checked from outside (tests/image); needs root
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
# OS image: mmdebstrap (unshare mode wants uidmap), systemd-nspawn, iproute2 for the test's
# network namespace; for the ARM images also qemu-user (binfmt), the SD card tools that
# need no loop devices (sfdisk, mkfs.vfat + mtools, mkfs.ext4 -d), RAUC and openssl for
# the bundle and its development key, and U-Boot's mkimage.
IMAGE_TEST_DEBS := mmdebstrap uidmap systemd-container iproute2 rauc squashfs-tools openssl \
	e2fsprogs
IMAGE_DEBS := $(IMAGE_TEST_DEBS) qemu-user-static binfmt-support arch-test fdisk dosfstools \
	mtools u-boot-tools libubootenv-tool
# the virt image in qemu: system emulation, ssh for the test's diagnostic channel
IMAGE_VM_DEBS := $(IMAGE_DEBS) $(TEST_DEBS) qemu-system-arm openssh-client
# the image scripts need root (mmdebstrap's namespaces, nspawn, netns, file owners)
AS_ROOT := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo -E)

DATA ?= var
SIP ?= 0.0.0.0:5060
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: setup run test lint bench hil clean distclean image image-test image-test-vm \
	image-test-vm-armhf

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
	$(BIN)/pytest --ignore=tests/image $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory image-test

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

# The OS image (image/README.md). Build outputs in build/image, caches in .cache/image
# (rootfs per architecture keyed by a hash of its inputs, .debs, wheels, the dev RAUC key).
image: setup
	@$(ENSURE_DEBS) $(IMAGE_DEBS)
	$(AS_ROOT) image/build.sh
	YAKYAK_IMAGE_OUT=build/image $(AS_ROOT) $(BIN)/pytest tests/image/test_sdimage.py $(PYTEST_ARGS)

# The arm64 virt image in qemu (software emulation) booted by U-Boot, checked from outside
# like image-test, then updated through the web UI's API: unsigned and foreign bundles
# refused, a signed one installed into slot B and booted, a broken one rolled back.
# Boots four times under emulation: too slow for every `make test` (see image/README.md).
image-test-vm: setup
	@$(ENSURE_DEBS) $(IMAGE_VM_DEBS)
	$(AS_ROOT) image/build.sh virt
	YAKYAK_IMAGE_VM=build/image YAKYAK_IMAGE_ROOT_EXT4=$$(ls .cache/image/sdimage/rootfs-arm64-*.ext4) \
		$(AS_ROOT) $(BIN)/pytest -p no:cacheprovider tests/image/test_vm.py $(PYTEST_ARGS)

# The armhf rootfs the BeagleBone Black's card carries, on qemu-system-arm's virt machine
# (no qemu machine emulates the AM335x board): the same boot script (bootz), checks and
# updates as image-test-vm.
image-test-vm-armhf: setup
	@$(ENSURE_DEBS) $(IMAGE_VM_DEBS)
	$(AS_ROOT) image/build.sh virt-armhf
	YAKYAK_IMAGE_VM=build/image YAKYAK_IMAGE_VM_ARCH=armhf \
		YAKYAK_IMAGE_ROOT_EXT4=$$(ls .cache/image/sdimage/rootfs-armhf-*.ext4) \
		$(AS_ROOT) $(BIN)/pytest -p no:cacheprovider tests/image/test_vm.py $(PYTEST_ARGS)

# The host architecture's rootfs (cached: a second run only boots it), booted in
# systemd-nspawn and checked from outside: service, SIP OPTIONS, HTTPS sign-in page, a sipp
# REGISTER, the watchdog. Logs and the journal in test-artifacts/image/.
image-test: setup
	@$(ENSURE_DEBS) $(TEST_DEBS) $(IMAGE_TEST_DEBS)
	rootfs=$$($(AS_ROOT) image/rootfs.sh $$(dpkg --print-architecture)) && \
	YAKYAK_IMAGE_ROOTFS=$$rootfs $(AS_ROOT) $(BIN)/pytest tests/image $(PYTEST_ARGS)
