#!/bin/bash
# `make image`: the arm64 YakYak images and update bundle, in build/image/.
#
#   image/build.sh [all|virt]     (virt: only what `make image-test-vm` needs)
#
#   yakyak-rpi4-arm64.img      Raspberry Pi 4 SD card: firmware + U-Boot, root A/B, data
#   yakyak-virt-arm64.img      the same rootfs for qemu -M virt, and U-Boot for it (.u-boot.bin)
#   yakyak-arm64.raucb         the rootfs as a signed RAUC bundle (A/B update)
#   SHA256SUMS
set -euo pipefail
. "$(dirname "$0")/lib.sh"

what=${1:-all}
[ "$(id -u)" -eq 0 ] || die "run as root (make image uses sudo when needed)"
start=$SECONDS
mkdir -p "$OUT_DIR"

note "RAUC signing certificate: $("$IMAGE_DIR/bundle.sh" key)"
tree=$("$IMAGE_DIR/rootfs.sh" arm64)
logs=$CACHE_DIR/logs/images
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_DIR/pyproject.toml")+$(basename "$tree" | cut -d- -f2)

STEP_NO=0
if [ "$what" = virt ]; then
    STEP_TOTAL=1
    run_step "disk image for qemu virt" "$logs/virt.log" "$IMAGE_DIR/sdimage.sh" virt "$tree" "$OUT_DIR"
else
    STEP_TOTAL=3
    run_step "SD card image for Raspberry Pi 4" "$logs/rpi4.log" "$IMAGE_DIR/sdimage.sh" rpi4 "$tree" "$OUT_DIR"
    run_step "disk image for qemu virt" "$logs/virt.log" "$IMAGE_DIR/sdimage.sh" virt "$tree" "$OUT_DIR"
    run_step "signed RAUC bundle $version" "$logs/bundle.log" "$IMAGE_DIR/bundle.sh" bundle \
        "$CACHE_DIR/sdimage/rootfs-$(basename "$tree").ext4" "$OUT_DIR/yakyak-arm64.raucb" "$version"
fi

cd "$OUT_DIR"
if [ "$what" = virt ]; then
    files="yakyak-virt-arm64.img yakyak-virt-arm64.u-boot.bin"
else
    files=$(ls yakyak-*.img yakyak-*.raucb yakyak-*.u-boot.bin 2>/dev/null || true)
fi
# shellcheck disable=SC2086
sha256sum $files >SHA256SUMS
echo
echo "YakYak images ($version), made in $((SECONDS - start)) s, in ${OUT_DIR#"$REPO_DIR"/}/:"
for f in $files; do
    printf '  %-28s %6s (%s on disk)\n' "$f" "$(du -h --apparent-size "$f" | cut -f1)" "$(du -h "$f" | cut -f1)"
done
echo "SHA-256 (SHA256SUMS):"
sed 's/^/  /' SHA256SUMS
