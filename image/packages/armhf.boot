# Downloaded with the armhf rootfs but not installed in it: sdimage.sh puts U-Boot's SPL (MLO)
# and u-boot.img for the AM335x boards (am335x_evm covers the BeagleBone Black) on the card,
# and qemu_arm's U-Boot next to the 32-bit virt image.
u-boot-omap
u-boot-qemu
