#!/bin/bash
# Assembles the disk images from an arm64 or armhf rootfs tree, without loop devices or mounts:
# each file system is made in a file (mkfs.ext4 -d, mkfs.vfat -C + mcopy), the partition
# table is written into the disk file with sfdisk, and the file systems are put in place
# with dd conv=notrunc.
#
#   image/sdimage.sh BOARD ROOTFS_TREE OUTDIR      BOARD: rpi4 | bbb | virt
#
# rpi4 (Raspberry Pi 4) takes an arm64 tree, bbb (BeagleBone Black) an armhf one, virt (qemu's
# virt machine) either; the disk is OUTDIR/yakyak-BOARD-ARCH.img.
#
# Layout (MBR, disk identifier 0x59616b59, so root=PARTUUID=59616b59-02/-03 on any disk):
#   1 boot   FAT32  256 MiB  YY-BOOT   firmware and U-Boot (rpi4, bbb), boot.scr, yakyak.env
#   2 rootA  ext4  1536 MiB  yy-root   read-only root, slot A
#   3 rootB  ext4  1536 MiB  yy-root   slot B (empty until the first update)
#   4 data   ext4   512 MiB  yy-data   /data: the appliance's state, journal, RAUC status
set -euo pipefail
. "$(dirname "$0")/lib.sh"

board=${1:?board}; tree=${2:?rootfs tree}; out=${3:?output dir}
arch=$(basename "$tree" | cut -d- -f1)  # rootfs.sh names trees ARCH-KEY
case $board/$arch in
    rpi4/arm64 | bbb/armhf | virt/arm64 | virt/armhf) ;;
    *) die "board $board with an $arch rootfs: rpi4 takes arm64, bbb armhf, virt either" ;;
esac
BOOT_MIB=256; ROOT_MIB=1536; DATA_MIB=512
DISK_ID=0x59616b59
work=$CACHE_DIR/sdimage/$board-$arch
rm -rf "$work" && mkdir -p "$work" "$out"

# --- root slot A: the tree as an ext4 file system (also the RAUC bundle's image) ---
rootimg=$CACHE_DIR/sdimage/rootfs-$(basename "$tree").ext4
if [ ! -f "$rootimg" ]; then
    rm -f "$CACHE_DIR"/sdimage/rootfs-"$arch"-*.ext4
    # fixed UUID and hash seed: the same tree gives the same bytes
    mkfs.ext4 -q -F -L yy-root -U clear -E hash_seed=59616b59-0000-4000-8000-000000000000 \
        -d "$tree" "$rootimg.tmp" "${ROOT_MIB}M"
    e2fsck -fn "$rootimg.tmp" >/dev/null
    mv "$rootimg.tmp" "$rootimg"
fi

# --- data: the folders yakyak-data-layout.service would make, and RAUC's ---
mkdir -p "$work/data"/{yakyak,journal,systemd,ssh,rauc}
chmod 2755 "$work/data/journal"
mkfs.ext4 -q -F -L yy-data -d "$work/data" "$work/data.ext4" "${DATA_MIB}M"

# --- boot ---
uboot_env() {  # yakyak.env (boot.cmd): RAUC's counters, the kernel console, extra arguments
    printf '%s\n' "BOOT_ORDER=A B" "BOOT_A_LEFT=3" "BOOT_B_LEFT=3" "yy_console=$1" \
        "yy_args=${YAKYAK_KERNEL_ARGS:-rootfstype=ext4}" >"$work/env.txt"
    mkenvimage -s 0x4000 -o "$work/bootfs/yakyak.env" "$work/env.txt"
}
mkdir -p "$work/bootfs"
mkimage -A "$([ "$arch" = armhf ] && echo arm || echo arm64)" -T script -C none -n "YakYak A/B" -d "$IMAGE_DIR/uboot/boot.cmd" \
    "$work/bootfs/boot.scr" >/dev/null
case $board in
    rpi4)
        # Debian's raspi-firmware (non-free-firmware) and u-boot-rpi, unpacked from the .debs
        # the rootfs build fetched (packages/arm64.boot)
        for deb in "$tree.boot"/*.deb; do dpkg-deb -x "$deb" "$work/debs"; done
        cp "$work"/debs/usr/lib/raspi-firmware/* "$work/bootfs/"
        cp "$work/debs/usr/lib/u-boot/rpi_arm64/u-boot.bin" "$work/bootfs/u-boot.bin"
        # the firmware's own device tree (it passes it to U-Boot; the kernel gets the slot's)
        cp "$tree"/usr/lib/linux-image-*/broadcom/bcm2711-*.dtb "$work/bootfs/"
        cat >"$work/bootfs/config.txt" <<'CFG'
# YakYak on Raspberry Pi 4: the firmware starts U-Boot, whose boot.scr picks root slot A or B.
arm_64bit=1
enable_uart=1
upstream_kernel=1
kernel=u-boot.bin
disable_overscan=1
CFG
        uboot_env "console=ttyS1,115200 console=tty1"
        ;;
    bbb)
        # The AM335x boot ROM finds nothing in raw mode on this card and reads U-Boot's SPL
        # as the file MLO from the active FAT partition; the SPL loads u-boot.img from there
        # (SPL_FS_FAT). Debian's u-boot-omap, am335x_evm: BeagleBone Black, White, Green and
        # PocketBeagle. Raw mode would need u-boot.img (1.4 MB) at 384 KiB, past the first
        # partition's start at 1 MiB. U-Boot picks am335x-boneblack.dtb (fdtfile), which
        # boot.scr loads from the slot's kernel.
        for deb in "$tree.boot"/u-boot-omap_*.deb; do dpkg-deb -x "$deb" "$work/debs"; done
        spl=$work/debs/usr/lib/u-boot/am335x_evm
        cp "$spl/MLO" "$spl/u-boot.img" "$work/bootfs/"
        uboot_env "console=ttyS0,115200n8"
        ;;
    virt)
        # qemu -M virt -bios u-boot.bin (Debian's u-boot-qemu, next to the image): U-Boot's
        # distro boot finds boot.scr here, as the boards' does
        for deb in "$tree.boot"/u-boot-qemu_*.deb; do dpkg-deb -x "$deb" "$work/debs"; done
        qemu_board=$([ "$arch" = armhf ] && echo qemu_arm || echo qemu_arm64)
        cp "$work/debs/usr/lib/u-boot/$qemu_board/u-boot.bin" "$out/yakyak-virt-$arch.u-boot.bin"
        uboot_env "console=ttyAMA0"
        ;;
esac
rm -f "$work/boot.vfat"
mkfs.vfat -F 32 -n YY-BOOT -C "$work/boot.vfat" $((BOOT_MIB * 1024)) >/dev/null
mcopy -s -i "$work/boot.vfat" "$work"/bootfs/* ::/

# --- the disk: partition table, then each file system at its offset ---
disk=$out/yakyak-$board-$arch.img
total=$((1 + BOOT_MIB + 2 * ROOT_MIB + DATA_MIB))
rm -f "$disk" && truncate -s "${total}M" "$disk"
sfdisk --quiet "$disk" <<TABLE
label: dos
label-id: $DISK_ID
unit: sectors
start=1MiB, size=${BOOT_MIB}MiB, type=c, bootable
size=${ROOT_MIB}MiB, type=83
size=${ROOT_MIB}MiB, type=83
size=${DATA_MIB}MiB, type=83
TABLE
place() {  # file, start MiB
    dd if="$1" of="$disk" bs=1M seek="$2" conv=notrunc,sparse status=none
}
place "$work/boot.vfat" 1
place "$rootimg" $((1 + BOOT_MIB))
place "$work/data.ext4" $((1 + BOOT_MIB + 2 * ROOT_MIB))
sfdisk --dump "$disk"
