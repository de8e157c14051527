#!/bin/bash
# Builds the YakYak rootfs for one Debian architecture, or finds it in the cache.
#
#   image/rootfs.sh ARCH      (amd64: the CI-fast rootfs for systemd-nspawn; arm64: the boards)
#
# The same recipe for every architecture: packages/common.list + packages/ARCH.list from
# Debian bookworm through mmdebstrap --mode=unshare, overlay/ copied in, then
# hooks/customize.sh (the appliance's venv from a wheelhouse, our systemd/ units, the
# read-only layout). The result, keyed by a hash of every input, is
#   .cache/image/rootfs/ARCH-KEY.tar   and its unpacked tree   ARCH-KEY/
# and a second run with unchanged inputs only prints the tree's path (the last line of
# stdout). Wheels: on a bookworm host of the same architecture `pip wheel` runs here;
# otherwise in a throwaway bookworm chroot of ARCH (qemu-user), see image/README.md.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

arch=${1:?usage: rootfs.sh ARCH}
[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap unshare needs the root user's namespaces; tar keeps owners)"
command -v mmdebstrap >/dev/null || die "mmdebstrap missing: make image-test installs IMAGE_DEBS"
[ -f "$IMAGE_DIR/packages/$arch.list" ] || die "no image/packages/$arch.list"

units=${YAKYAK_UNITS:-$REPO_DIR/systemd}
[ -f "$units/yakyak.service" ] || die "no $units/yakyak.service"
# shellcheck disable=SC2046
py_key=$(hash_tree $(python_inputs))
# The certificate update bundles must be signed with (a development one unless given).
rauc_cert=$("$IMAGE_DIR/bundle.sh" key)
sources=(
    "deb $MIRROR $SUITE main non-free-firmware"
    "deb $MIRROR $SUITE-updates main non-free-firmware"
)
# YAKYAK_SECURITY_MIRROR=none: for a mirror without a usable security suite (this CI
# machine's serves a stale armhf index of it); such a rootfs lacks Debian's security fixes
if [ "$SECURITY_MIRROR" = none ]; then
    note "WARNING: building without $SUITE-security (YAKYAK_SECURITY_MIRROR=none): not for release"
else
    sources+=("deb $SECURITY_MIRROR $SUITE-security main non-free-firmware")
fi
# The rootfs's own inputs only: the SD card and bundle scripts do not invalidate it.
recipe=(image/rootfs.sh image/lib.sh image/hooks image/overlay image/early image/packages)
key=$(printf '%s %s %s %s %s' "$arch" "$py_key" "$(hash_tree "${recipe[@]}" "${units#"$REPO_DIR"/}")" \
    "$(sha256sum <"$rauc_cert")" "${sources[*]}" \
    | sha256sum | cut -c1-16)
tree=$CACHE_DIR/rootfs/$arch-$key
# one build per architecture at a time (parallel `make test` runs share the cache)
mkdir -p "$CACHE_DIR/rootfs"
exec 9>"$CACHE_DIR/rootfs/$arch.lock"
flock 9
if [ -f "$tree.done" ]; then
    note "rootfs $arch: cached ($tree)"
    echo "$tree"
    exit 0
fi

logs=$CACHE_DIR/logs/$arch-$key
STEP_TOTAL=3
mkdir -p "$CACHE_DIR/rootfs" "$CACHE_DIR/wheels" "$CACHE_DIR/debs/$arch" "$logs"
ensure_binfmt "$arch"

list() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$@" | tr '\n' ',' | sed 's/,$//'; }
# APT::Sandbox::User root: apt's _apt sandbox user cannot write /dev/null on hosts where
# it is not world-writable (this CI machine's is 0644); the chroot is thrown away anyway.
mm_common=(
    --mode=unshare --variant=apt --architectures="$arch"
    --aptopt='APT::Sandbox::User "root"'
    --aptopt='Acquire::Retries "3"'
    --skip=essential/unlink
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/'
    --setup-hook="sync-in $CACHE_DIR/debs/$arch /var/cache/apt/archives/"
)

# --- 1. wheels for this architecture ---
# packages/ARCH.python: Debian packages that provide some requirements on this architecture
pydebs=$IMAGE_DIR/packages/$arch.python
system_site=0
[ -f "$pydebs" ] && system_site=1
# the wheel chroot's package lists: build.list, and ARCH.python and ARCH.build where present
wheel_lists=(image/packages/build.list)
for f in "$arch.python" "$arch.build"; do
    if [ -f "$IMAGE_DIR/packages/$f" ]; then wheel_lists+=("image/packages/$f"); fi
done
wheel_inputs=(image/hooks/wheels.sh "${wheel_lists[@]}")
wheels=$CACHE_DIR/wheels/$arch-$(printf '%s %s' "$py_key" "$(hash_tree "${wheel_inputs[@]}")" | sha256sum | cut -c1-16)
build_wheels_here() {
    local pip=$REPO_DIR/.venv/bin/pip
    [ -x "$pip" ] || pip="python3 -m pip"
    rm -rf "$wheels.tmp"
    $pip wheel --disable-pip-version-check --cache-dir "$CACHE_DIR/pip" \
        --wheel-dir "$wheels.tmp" "$REPO_DIR[systemd]"
    mv "$wheels.tmp" "$wheels"
}
build_wheels_chroot() {
    rm -rf "$wheels.tmp" && mkdir -p "$wheels.tmp"
    local tmp
    tmp=$(mktemp -d) && mkdir "$tmp/src"
    # shellcheck disable=SC2046
    tar -C "$REPO_DIR" --exclude=__pycache__ --exclude='*.pyc' -cf - $(python_inputs) | tar -C "$tmp/src" -xf -
    # pip in the chroot trusts what the build host trusts (a TLS-inspecting proxy's CA,
    # as on this CI machine, is not in Debian's bundle); the chroot is thrown away
    cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$tmp/host-ca.pem"
    cp "$IMAGE_DIR/hooks/wheels.sh" "$tmp/wheels.sh"
    # pip's cache survives the chroot: wheels it compiled (soxr, cffi on armhf) are reused
    # when only the appliance changed
    local pip_cache=$CACHE_DIR/pip-$arch
    mkdir -p "$pip_cache"
    mmdebstrap "${mm_common[@]}" --include="$(cd "$REPO_DIR" && list "${wheel_lists[@]}")" \
        --customize-hook="sync-out /var/cache/apt/archives $CACHE_DIR/debs/$arch" \
        --customize-hook="copy-in $tmp/src /" \
        --customize-hook="copy-in $tmp/host-ca.pem $tmp/wheels.sh /" \
        --customize-hook='mkdir -p "$1/pip-cache"' \
        --customize-hook="sync-in $pip_cache /pip-cache" \
        --customize-hook="chroot \"\$1\" env -i PATH=/usr/bin:/bin PIP_CERT=/host-ca.pem PIP_CACHE_DIR=/pip-cache YY_SYSTEM_SITE=$system_site sh /wheels.sh" \
        --customize-hook="sync-out /pip-cache $pip_cache" \
        --customize-hook="sync-out /wheels $wheels.tmp" \
        "$SUITE" /dev/null "${sources[@]}"
    rm -rf "$tmp"
    mv "$wheels.tmp" "$wheels"
}
if [ -d "$wheels" ]; then
    STEP_NO=$((STEP_NO + 1)); note "[$STEP_NO/$STEP_TOTAL] wheels $arch: cached"
elif [ "$arch" = "$(host_arch)" ] && grep -q 'VERSION_CODENAME=bookworm' /etc/os-release; then
    run_step "wheels $arch (pip wheel on this bookworm host)" "$logs/wheels.log" build_wheels_here
else
    run_step "wheels $arch (pip wheel in a bookworm $arch chroot, qemu-user)" "$logs/wheels.log" build_wheels_chroot
fi

# --- 2. the rootfs ---
rootfs_lists=("$IMAGE_DIR/packages/common.list" "$IMAGE_DIR/packages/$arch.list")
if [ "$system_site" = 1 ]; then rootfs_lists+=("$pydebs"); fi
packages=$(list "${rootfs_lists[@]}")
build_rootfs() {
    YY_REPO=$REPO_DIR YY_UNITS=$units YY_WHEELS=$wheels YY_RAUC_CERT=$rauc_cert \
    YY_ARCH=$arch YY_SYSTEM_SITE=$system_site \
    mmdebstrap "${mm_common[@]}" --include="$packages" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --essential-hook="sync-in $IMAGE_DIR/early /" \
        --customize-hook="sync-out /var/cache/apt/archives $CACHE_DIR/debs/$arch" \
        --customize-hook="sync-in $IMAGE_DIR/overlay /" \
        "${boot_hooks[@]}" \
        --customize-hook="$IMAGE_DIR/hooks/customize.sh \"\$1\"" \
        "$SUITE" "$tree.tar" "${sources[@]}"
}
# packages/ARCH.boot: .debs fetched for the boot partition, next to the tree in ARCH-KEY.boot/
boot_hooks=()
if [ -f "$IMAGE_DIR/packages/$arch.boot" ]; then
    rm -rf "$tree.boot" && mkdir -p "$tree.boot"
    # as an essential hook: later systemd-resolved points /etc/resolv.conf at its stub,
    # which does not resolve inside the chroot
    boot_hooks=(
        --essential-hook="mkdir -p \"\$1/tmp/boot-debs\""
        --essential-hook="chroot \"\$1\" sh -c 'cd /tmp/boot-debs && apt-get download $(list "$IMAGE_DIR/packages/$arch.boot" | tr , " ")'"
        --essential-hook="sync-out /tmp/boot-debs $tree.boot"
        --essential-hook="rm -rf \"\$1/tmp/boot-debs\""
    )
fi
run_step "rootfs $arch (mmdebstrap --mode=unshare, $SUITE)" "$logs/rootfs.log" build_rootfs

# --- 3. the unpacked tree (systemd-nspawn boots it, mkfs.ext4 -d copies it) ---
unpack() {
    rm -rf "$tree" && mkdir -p "$tree"
    tar -C "$tree" --numeric-owner --xattrs --xattrs-include='*' -xpf "$tree.tar"
    du -sh "$tree"
}
run_step "unpack $arch" "$logs/unpack.log" unpack
touch "$tree.done"
# Older builds of this architecture go, and what interrupted ones left: one rootfs and one
# wheelhouse per architecture are kept (this is under the architecture's lock).
for old in "$CACHE_DIR/rootfs/$arch"-*; do
    case $old in "$tree" | "$tree".*) continue ;; esac
    rm -rf "$old"
done
for old in "$CACHE_DIR/wheels/$arch"-*; do
    [ "$old" = "$wheels" ] || rm -rf "$old"
done
note "rootfs $arch: $tree ($(du -sh "$tree" | cut -f1))"
echo "$tree"
