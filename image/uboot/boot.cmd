# YakYak A/B boot script (mkimage -T script -> boot.scr on the boot partition).
# RAUC's U-Boot contract: BOOT_ORDER lists the slots to try ("A B"), BOOT_<slot>_LEFT the
# tries each has left. Every boot spends one try of the slot it boots; `rauc status
# mark-good` (yakyak-mark-good.service) gives it back 3 once the PBX answers. A slot with no
# tries left is skipped, so a new root that never gets healthy falls back to the old one.
# The rootfs slots are partitions 2 (A) and 3 (B); disk identifier 0x59616b59.

test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
test -n "${devtype}" || setenv devtype mmc
test -n "${devnum}" || setenv devnum 0

setenv yy_part
setenv yy_slot
for BOOT_SLOT in "${BOOT_ORDER}"; do
  if test -n "${yy_part}"; then
    # a slot was chosen already
  elif test "x${BOOT_SLOT}" = "xA"; then
    if test ${BOOT_A_LEFT} -gt 0; then
      setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
      echo "YakYak: slot A, ${BOOT_A_LEFT} tries left after this one"
      setenv yy_part 2
      setenv yy_slot A
    fi
  elif test "x${BOOT_SLOT}" = "xB"; then
    if test ${BOOT_B_LEFT} -gt 0; then
      setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
      echo "YakYak: slot B, ${BOOT_B_LEFT} tries left after this one"
      setenv yy_part 3
      setenv yy_slot B
    fi
  fi
done

if test -z "${yy_part}"; then
  echo "YakYak: no slot has tries left; giving both 3 again and resetting"
  setenv BOOT_A_LEFT 3
  setenv BOOT_B_LEFT 3
  saveenv
  reset
fi
saveenv

setenv bootargs "${yy_console} root=PARTUUID=59616b59-0${yy_part} ro rootwait rauc.slot=${yy_slot} panic=10"
load ${devtype} ${devnum}:${yy_part} ${kernel_addr_r} /boot/Image
load ${devtype} ${devnum}:${yy_part} ${ramdisk_addr_r} /boot/initrd.img
setenv yy_initrd_size ${filesize}
# the device tree that matches this slot's kernel; else the one the firmware passed
if test -n "${fdtfile}" && load ${devtype} ${devnum}:${yy_part} ${fdt_addr_r} /boot/dtbs/${fdtfile}; then
  setenv yy_fdt ${fdt_addr_r}
else
  setenv yy_fdt ${fdt_addr}
fi
booti ${kernel_addr_r} ${ramdisk_addr_r}:${yy_initrd_size} ${yy_fdt}
