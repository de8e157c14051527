#!/bin/sh
# Builds the appliance's wheelhouse inside a throwaway bookworm chroot of the target
# architecture (rootfs.sh, under qemu-user): /src is the project, /wheels the output.
#
# With YY_SYSTEM_SITE=1 (packages/ARCH.python lists Debian packages that provide some of the
# requirements, already installed here) pip resolves against them first and only what they do
# not satisfy is built; the rootfs's venv sees the same Debian packages.
set -eu
if [ "${YY_SYSTEM_SITE:-0}" = 1 ]; then
    python3 -m venv --system-site-packages /b
    # what `pip install` would add to this system: the requirements left for wheels
    /b/bin/pip install --dry-run --quiet --disable-pip-version-check --report /b/plan.json '/src[systemd]'
    /b/bin/python3 - /b/plan.json >/b/requirements.txt <<'PY'
import json
import sys

plan = json.load(open(sys.argv[1]))
for item in plan["install"]:
    meta = item["metadata"]
    if meta["name"] != "yakyak":
        print(f'{meta["name"]}=={meta["version"]}')
PY
    echo "wheels to build or fetch:" && cat /b/requirements.txt
    /b/bin/pip wheel --use-pep517 --no-deps --disable-pip-version-check --wheel-dir /wheels \
        -r /b/requirements.txt /src
else
    python3 -m venv /b
    /b/bin/pip wheel --use-pep517 --disable-pip-version-check --wheel-dir /wheels '/src[systemd]'
fi
