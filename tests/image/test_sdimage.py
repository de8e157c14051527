"""The disk images `make image` wrote (build/image/), read without mounting: the partition
table, the boot partition's files (mtools), the A/B counters in yakyak.env as fw_printenv
sees them through the box's /etc/fw_env.config, the root slot (debugfs), and on the
BeagleBone Black's card U-Boot where the AM335x boot ROM reads it. Skipped unless
YAKYAK_IMAGE_OUT names the folder (`make image` sets it)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

MIB = 1024 * 1024


def sh(*argv: str | Path) -> str:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=120, check=True
    ).stdout


@pytest.fixture(scope="module")
def out() -> Path:
    path = os.environ.get("YAKYAK_IMAGE_OUT")
    if not path:
        pytest.skip("no YAKYAK_IMAGE_OUT: `make image` builds the images and runs these")
    return Path(path)


def partitions(disk: Path) -> list[dict[str, object]]:
    table = json.loads(sh("sfdisk", "--json", disk))["partitiontable"]
    assert table["label"] == "dos" and table["id"] == "0x59616b59"
    parts: list[dict[str, object]] = table["partitions"]
    return parts


def extract(disk: Path, part: dict[str, object], to: Path) -> Path:
    start, size = int(str(part["start"])), int(str(part["size"]))
    sh("dd", f"if={disk}", f"of={to}", "bs=512", f"skip={start}", f"count={size}",
       "conv=sparse", "status=none")  # fmt: skip
    return to


IMAGES = [("rpi4", "arm64"), ("virt", "arm64"), ("bbb", "armhf"), ("virt", "armhf")]


@pytest.mark.parametrize(("board", "arch"), IMAGES)
@pytest.mark.timeout(300)
def test_layout_boot_files_env_and_root(out: Path, board: str, arch: str, tmp_path: Path) -> None:
    disk = out / f"yakyak-{board}-{arch}.img"
    parts = partitions(disk)
    sizes = [int(str(p["size"])) * 512 // MIB for p in parts]
    assert sizes == [256, 1536, 1536, 512]
    boot = extract(disk, parts[0], tmp_path / "boot.vfat")
    files = sh("mdir", "-b", "-i", boot, "::/")
    expected = {"boot.scr", "yakyak.env"}
    if board == "rpi4":
        expected |= {"u-boot.bin", "config.txt", "start4.elf", "fixup4.dat",
                     "bcm2711-rpi-4-b.dtb"}  # fmt: skip
    if board == "bbb":
        expected |= {"MLO", "u-boot.img"}
    assert expected <= {Path(line.strip()).name for line in files.splitlines()}
    if board == "bbb":
        # the AM335x ROM loads MLO only from the active partition, and checks its header:
        # a TOC (CHSETTINGS) then the GP header's size and load address (0x402f0400)
        assert parts[0].get("bootable") is True
        sh("mcopy", "-i", boot, "::/MLO", tmp_path / "MLO")
        mlo = (tmp_path / "MLO").read_bytes()
        assert mlo[0x14:0x1E] == b"CHSETTINGS"
        size, load = int.from_bytes(mlo[0x200:0x204], "little"), mlo[0x204:0x208]
        assert load == (0x402F0400).to_bytes(4, "little")
        assert 0 < size <= len(mlo) - 0x200, "the SPL the header announces is all in the file"

    # U-Boot's environment, read as RAUC's backend will on the box
    sh("mcopy", "-i", boot, "::/yakyak.env", tmp_path / "yakyak.env")
    config = tmp_path / "fw_env.config"
    config.write_text(f"{tmp_path / 'yakyak.env'} 0x0000 0x4000\n")
    env = sh("fw_printenv", "-c", config)
    assert "BOOT_ORDER=A B" in env and "BOOT_A_LEFT=3" in env and "BOOT_B_LEFT=3" in env

    root = extract(disk, parts[1], tmp_path / "root.ext4")
    sh("e2fsck", "-fn", root)
    listing = sh("debugfs", "-R", "ls -p /boot", root)
    kernel = "/zImage/" if arch == "armhf" else "/Image/"  # bootz or booti (boot.cmd)
    assert kernel in listing and "/initrd.img/" in listing, listing
    rauc = sh("debugfs", "-R", "cat /etc/rauc/system.conf", root)
    assert f"\ncompatible=yakyak-{arch}\n" in rauc
    if board == "bbb":  # U-Boot's fdtfile for the board, from the slot's own kernel package
        modules = sh("debugfs", "-R", "ls -p /usr/lib", root)
        kernel_dir = next(n for n in modules.split("/") if n.startswith("linux-image-"))
        assert "am335x-boneblack.dtb" in sh("debugfs", "-R", f"ls /usr/lib/{kernel_dir}", root)
    keyring = sh("debugfs", "-R", "cat /etc/rauc/keyring.pem", root)
    assert "BEGIN CERTIFICATE" in keyring
    assert "yakyak" in sh("debugfs", "-R", "ls /opt/yakyak/venv/bin", root)
    data = extract(disk, parts[3], tmp_path / "data.ext4")
    assert "yakyak" in sh("debugfs", "-R", "ls /", data)


@pytest.mark.parametrize(("board", "arch"), [("rpi4", "arm64"), ("bbb", "armhf")])
@pytest.mark.timeout(120)
def test_bundle_verifies_with_the_images_keyring(
    out: Path, board: str, arch: str, tmp_path: Path
) -> None:
    disk = out / f"yakyak-{board}-{arch}.img"
    root = extract(disk, partitions(disk)[1], tmp_path / "root.ext4")
    keyring = tmp_path / "keyring.pem"
    keyring.write_text(sh("debugfs", "-R", "cat /etc/rauc/keyring.pem", root))
    info = subprocess.run(
        ["rauc", "info", f"--keyring={keyring}", "--output-format=shell",
         str(out / f"yakyak-{arch}.raucb")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert info.returncode == 0, info.stderr
    assert f"RAUC_MF_COMPATIBLE='yakyak-{arch}'" in info.stdout
