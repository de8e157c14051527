# Downloaded with the arm64 rootfs but not installed in it: sdimage.sh unpacks them onto the
# Raspberry Pi's boot partition (the firmware and U-Boot are not A/B: one copy on the card).
raspi-firmware
u-boot-rpi
u-boot-qemu
