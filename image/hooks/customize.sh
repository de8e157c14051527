#!/bin/bash
# mmdebstrap customize hook: turns the installed packages into the YakYak rootfs.
# $1 is the rootfs. Runs inside mmdebstrap's user namespace (root there), after the
# overlay/ files were copied in. Environment from rootfs.sh: YY_REPO, YY_UNITS, YY_WHEELS,
# YY_RAUC_CERT, YY_ARCH, YY_SYSTEM_SITE (1: Debian provides some requirements, packages/ARCH.python).
set -euo pipefail
root=$1
# A clean environment: the build host's PIP_* and the like must not reach the chroot.
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }

# --- the appliance: its own venv from the wheelhouse built for this architecture ---
rm -rf "$root/tmp/wheels"
cp -r "$YY_WHEELS" "$root/tmp/wheels"
venv_opts=()
if [ "${YY_SYSTEM_SITE:-0}" = 1 ]; then venv_opts=(--system-site-packages); fi
in_root python3 -m venv "${venv_opts[@]}" /opt/yakyak/venv
in_root /opt/yakyak/venv/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \
    --find-links /tmp/wheels 'yakyak[systemd]'
rm -rf "$root/tmp/wheels"
# The root is read-only: every module is byte-compiled now (pip did the venv's).
in_root /opt/yakyak/venv/bin/yakyak --help >/dev/null

# --- our units (systemd/), as vendor units ---
unitdir=$root/usr/lib/systemd/system
enable=()
for f in "$YY_UNITS"/*.service "$YY_UNITS"/*.timer; do
    [ -e "$f" ] || continue
    install -m 0644 "$f" "$unitdir/"
    name=$(basename "$f")
    case $name in
        yakyak.service | yakyak-firstboot.service | *.timer) enable+=("$name") ;;
    esac
done
if [ -d "$YY_UNITS/sysusers.d" ]; then
    install -d "$root/usr/lib/sysusers.d"
    install -m 0644 "$YY_UNITS"/sysusers.d/*.conf "$root/usr/lib/sysusers.d/"
fi
if [ -d "$YY_UNITS/tmpfiles.d" ]; then
    install -d "$root/usr/lib/tmpfiles.d"
    install -m 0644 "$YY_UNITS"/tmpfiles.d/*.conf "$root/usr/lib/tmpfiles.d/"
fi
if [ -d "$YY_UNITS/journald.conf.d" ]; then
    install -d "$root/etc/systemd/journald.conf.d"
    install -m 0644 "$YY_UNITS"/journald.conf.d/*.conf "$root/etc/systemd/journald.conf.d/"
fi
if [ -d "$YY_UNITS/udev" ]; then
    install -m 0644 "$YY_UNITS"/udev/*.rules "$root/usr/lib/udev/rules.d/"
fi
# A/B updates: bundles must be signed by this certificate's key (image/bundle.sh), and be
# made for this architecture (bundle.sh copies the compatible string from the rootfs)
install -D -m 0644 "$YY_RAUC_CERT" "$root/etc/rauc/keyring.pem"
sed -i "s/^compatible=.*/compatible=yakyak-$YY_ARCH/" "$root/etc/rauc/system.conf"
grep -qx "compatible=yakyak-$YY_ARCH" "$root/etc/rauc/system.conf"

# Users now: /etc/passwd cannot change on the read-only root at boot.
in_root systemd-sysusers

# --- enable / disable ---
in_root systemctl enable systemd-networkd.service systemd-resolved.service \
    systemd-timesyncd.service avahi-daemon.service yakyak-data-layout.service \
    yakyak-ssh.path yakyak-ssh-switch.path yakyak-update.path yakyak-health.service \
    yakyak-grow-data.service yakyak-machine-id.service "${enable[@]}"
in_root systemctl disable ssh.service ssh.socket 2>/dev/null || in_root systemctl disable ssh.service
# Jobs that write to the root file system or update packages: not on a read-only
# appliance that is updated as a whole (RAUC).
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
    e2scrub_all.timer e2scrub_reap.service man-db.timer 2>/dev/null || true

# --- per-box identity is made at first boot, never shipped ---
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -sf /etc/machine-id "$root/var/lib/dbus/machine-id"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"

# --- mount points of the read-only layout (etc/fstab) ---
install -d "$root/data" "$root/boot/firmware" "$root/var/lib/yakyak"

# --- leave nothing of the build behind ---
# (mmdebstrap's apt options: the build host's sandbox workaround, see rootfs.sh)
rm -f "$root/etc/apt/apt.conf.d/99mmdebstrap"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root/root/.cache" \
    "$root"/var/log/*.log "$root"/var/log/apt/*

# --- the kernel under the stable names the boot script loads (the root is replaced whole by
# updates): U-Boot's booti wants an uncompressed arm64 Image, so Debian's gzip'd vmlinuz is
# unpacked once, here; a 32-bit ARM zImage (armhf) is booted as it is by bootz ---
vmlinuz=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
if [ -n "$vmlinuz" ]; then
    version=${vmlinuz##*/vmlinuz-}
    ln -sf "vmlinuz-$version" "$root/boot/vmlinuz"
    ln -sf "initrd.img-$version" "$root/boot/initrd.img"
    if [ -d "$root/usr/lib/linux-image-$version" ]; then  # device trees (arm64)
        ln -sfn "../usr/lib/linux-image-$version" "$root/boot/dtbs"
    fi
    if gzip -t "$vmlinuz" 2>/dev/null; then
        zcat "$vmlinuz" >"$root/boot/Image"
    elif [ "$(od -An -tx4 -j36 -N4 "$vmlinuz" | tr -d ' ')" = 016f2818 ]; then  # zImage magic
        ln -sf "vmlinuz-$version" "$root/boot/zImage"
    else
        ln -sf "vmlinuz-$version" "$root/boot/Image"
    fi
fi
