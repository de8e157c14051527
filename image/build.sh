#!/bin/bash
# `make image`: the YakYak images and update bundles, in build/image/.
#
#   image/build.sh [all|virt|virt-armhf]   (virt, virt-armhf: only what `make image-test-vm`
#                                            and `make image-test-vm-armhf` need)
#
#   yakyak-rpi4-arm64.img      Raspberry Pi 4 SD card: firmware + U-Boot, root A/B, data
#   yakyak-virt-arm64.img      the same rootfs for qemu -M virt, and U-Boot for it (.u-boot.bin)
#   yakyak-arm64.raucb         the arm64 rootfs as a signed RAUC bundle (A/B update)
#   yakyak-bbb-armhf.img       BeagleBone Black SD card: U-Boot (MLO, u-boot.img), root A/B, data
#   yakyak-virt-armhf.img      the armhf rootfs for qemu-system-arm -M virt, and its U-Boot
#   yakyak-armhf.raucb         the armhf rootfs as a signed RAUC bundle
#   SHA256SUMS
set -euo pipefail
. "$(dirname "$0")/lib.sh"

what=${1:-all}
case $what in all | virt | virt-armhf) ;; *) die "usage: build.sh [all|virt|virt-armhf]" ;; esac
[ "$(id -u)" -eq 0 ] || die "run as root (make image uses sudo when needed)"
start=$SECONDS
mkdir -p "$OUT_DIR"
logs=$CACHE_DIR/logs/images
note "RAUC signing certificate: $("$IMAGE_DIR/bundle.sh" key)"

# ARCH: builds (or finds) the rootfs, then each of BOARDS' images, then the bundle unless
# "nobundle"; appends the output files to $files.
files=""
images() {
    local arch=$1 bundle=$2; shift 2
    local tree version board
    tree=$("$IMAGE_DIR/rootfs.sh" "$arch")
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_DIR/pyproject.toml")+$(basename "$tree" | cut -d- -f2)
    STEP_NO=0
    STEP_TOTAL=$(($# + (bundle == 1)))
    for board in "$@"; do
        run_step "$board image ($arch)" "$logs/$board-$arch.log" "$IMAGE_DIR/sdimage.sh" "$board" "$tree" "$OUT_DIR"
        files+=" yakyak-$board-$arch.img"
        if [ "$board" = virt ]; then files+=" yakyak-virt-$arch.u-boot.bin"; fi
    done
    if [ "$bundle" = 1 ]; then
        run_step "signed RAUC bundle $version ($arch)" "$logs/bundle-$arch.log" "$IMAGE_DIR/bundle.sh" bundle \
            "$CACHE_DIR/sdimage/rootfs-$(basename "$tree").ext4" "$OUT_DIR/yakyak-$arch.raucb" "$version"
        files+=" yakyak-$arch.raucb"
    fi
}
case $what in
    virt) images arm64 0 virt ;;
    virt-armhf) images armhf 0 virt ;;
    all)
        images arm64 1 rpi4 virt
        images armhf 1 bbb virt
        ;;
esac

cd "$OUT_DIR"
# shellcheck disable=SC2086
sha256sum $files >SHA256SUMS
echo
echo "YakYak images, made in $((SECONDS - start)) s, in ${OUT_DIR#"$REPO_DIR"/}/:"
for f in $files; do
    printf '  %-28s %6s (%s on disk)\n' "$f" "$(du -h --apparent-size "$f" | cut -f1)" "$(du -h "$f" | cut -f1)"
done
echo "SHA-256 (SHA256SUMS):"
sed 's/^/  /' SHA256SUMS
