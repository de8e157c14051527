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
py_key=$(hash_tree $(python_inputs))
# shellcheck disable=SC2046
# The certificate update bundles must be signed with (a development one unless given).
rauc_cert=$("$IMAGE_DIR/bundle.sh" key)
# The rootfs's own inputs only: the SD card and bundle scripts do not invalidate it.
recipe=(image/rootfs.sh image/lib.sh image/hooks image/overlay image/early image/packages)
key=$(printf '%s %s %s %s' "$arch" "$py_key" "$(hash_tree "${recipe[@]}" "${units#"$REPO_DIR"/}")" \
    "$(sha256sum <"$rauc_cert")" \
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
sources=(
    "deb $MIRROR $SUITE main non-free-firmware"
    "deb $MIRROR $SUITE-updates main non-free-firmware"
    "deb $SECURITY_MIRROR $SUITE-security main non-free-firmware"
)
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
wheels=$CACHE_DIR/wheels/$arch-$py_key
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
    mmdebstrap "${mm_common[@]}" --include="$(list "$IMAGE_DIR/packages/build.list")" \
        --customize-hook="sync-out /var/cache/apt/archives $CACHE_DIR/debs/$arch" \
        --customize-hook="copy-in $tmp/src /" \
        --customize-hook="copy-in $tmp/host-ca.pem /" \
        --customize-hook='chroot "$1" env -i PATH=/usr/bin:/bin PIP_CERT=/host-ca.pem sh -c "python3 -m venv /b && /b/bin/pip wheel --use-pep517 --disable-pip-version-check --wheel-dir /wheels /src[systemd]"' \
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
packages=$(list "$IMAGE_DIR/packages/common.list" "$IMAGE_DIR/packages/$arch.list")
build_rootfs() {
    YY_REPO=$REPO_DIR YY_UNITS=$units YY_WHEELS=$wheels YY_RAUC_CERT=$rauc_cert \
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
# Older builds of this architecture go: one rootfs per architecture is kept.
for old in "$CACHE_DIR/rootfs/$arch"-*.done; do
    [ "$old" = "$tree.done" ] && continue
    rm -rf "${old%.done}" "${old%.done}.tar" "${old%.done}.boot" "$old"
done
note "rootfs $arch: $tree ($(du -sh "$tree" | cut -f1))"
echo "$tree"
