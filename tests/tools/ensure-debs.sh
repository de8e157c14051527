#!/bin/sh
# Install the Debian packages named as arguments, but only those dpkg does not
# already have: a machine with everything present never runs apt-get, and
# `apt-get update` runs only when something must be installed. Uses sudo when
# not root. Called by the Makefile before it builds .venv.
set -e

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "ensure-debs: no dpkg-query; not a Debian system, install by hand: $*" >&2
    exit 0
fi

missing=""
for pkg in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    case "$status" in
        ii*) ;;
        *) missing="$missing $pkg" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "ensure-debs: missing packages:$missing" >&2
    echo "ensure-debs: run as root, or install sudo, or: apt-get install$missing" >&2
    exit 1
fi

echo "ensure-debs: installing$missing" >&2
$sudo apt-get update
# shellcheck disable=SC2086 # word splitting of the package list is intended
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
