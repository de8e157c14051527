# YakYak A/B boot script (mkimage -T script -> boot.scr on the boot partition).
# RAUC's U-Boot contract: BOOT_ORDER lists the slots to try ("A B"), BOOT_<slot>_LEFT the
# tries each has left. Every boot spends one try of the slot it boots; the health check
# (yakyak-health.service) has RAUC give it back once the PBX answers, or marks the slot bad
# after an update that does not come up. A slot with no tries left is skipped, so a root
# that never gets healthy falls back to the other one.
# The counters live in yakyak.env on this FAT partition, in U-Boot's binary environment
# format (CRC + name=value), which Linux edits with fw_setenv (/etc/fw_env.config). It is
# our own file, not U-Boot's environment: the Pi's U-Boot keeps its environment in FAT but
# qemu's in flash, and importing only our names leaves U-Boot's defaults alone.
# The rootfs slots are partitions 2 (A) and 3 (B); disk identifier 0x59616b59.

test -n "${devtype}" || setenv devtype mmc
test -n "${devnum}" || setenv devnum 0
test -n "${distro_bootpart}" || setenv distro_bootpart 1
setenv yy_envaddr ${kernel_addr_r}
if load ${devtype} ${devnum}:${distro_bootpart} ${yy_envaddr} yakyak.env; then
  env import -c ${yy_envaddr} ${filesize} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT yy_console yy_args yy_machine_id
fi
# exported by name below, so they must exist
test -n "${yy_console}" || setenv yy_console "console=tty1"
test -n "${yy_args}" || setenv yy_args "rootfstype=ext4"
# the box's machine ID, saved by yakyak-machine-id.service at the first boot: the root is
# read-only, so without it systemd would make a new one every boot
test -n "${yy_machine_id}" || setenv yy_machine_id none
setenv yy_idarg
if test "${yy_machine_id}" != "none"; then setenv yy_idarg "systemd.machine_id=${yy_machine_id}"; fi
setenv yy_saveenv 'env export -c -s 0x4000 ${yy_envaddr} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT yy_console yy_args yy_machine_id; fatwrite ${devtype} ${devnum}:${distro_bootpart} ${yy_envaddr} yakyak.env 0x4000'
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
  run yy_saveenv
  reset
fi
run yy_saveenv

setenv bootargs "${yy_console} root=PARTUUID=59616b59-0${yy_part} ro rootwait rauc.slot=${yy_slot} panic=10 ${yy_idarg} ${yy_args}"
# the slot's kernel: an arm64 Image (booti) or a 32-bit ARM zImage (bootz, armhf boards)
setenv yy_kernel Image
if test -e ${devtype} ${devnum}:${yy_part} /boot/zImage; then setenv yy_kernel zImage; fi
load ${devtype} ${devnum}:${yy_part} ${kernel_addr_r} /boot/${yy_kernel}
load ${devtype} ${devnum}:${yy_part} ${ramdisk_addr_r} /boot/initrd.img
setenv yy_initrd_size ${filesize}
# the device tree that matches this slot's kernel; else the one the firmware passed
if test -n "${fdtfile}" && load ${devtype} ${devnum}:${yy_part} ${fdt_addr_r} /boot/dtbs/${fdtfile}; then
  setenv yy_fdt ${fdt_addr_r}
else
  setenv yy_fdt ${fdt_addr}
fi
if test "${yy_kernel}" = zImage; then
  bootz ${kernel_addr_r} ${ramdisk_addr_r}:${yy_initrd_size} ${yy_fdt}
else
  booti ${kernel_addr_r} ${ramdisk_addr_r}:${yy_initrd_size} ${yy_fdt}
fi
