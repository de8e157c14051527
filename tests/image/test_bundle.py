"""RAUC bundles (image/bundle.sh): one signed with the build's key is accepted by the
keyring the rootfs carries; a bundle signed by another key, a tampered one and an unsigned
one are refused. `rauc info --keyring` on the host checks what `rauc install` on the box
checks first (the signature over the manifest and the verity root hash)."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE_SH = REPO / "image" / "bundle.sh"

pytestmark = pytest.mark.skipif(
    shutil.which("rauc") is None or shutil.which("mksquashfs") is None,
    reason="rauc and squashfs-tools: `make image-test` installs them",
)


def sh(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=120, check=False
    )


def rauc_info(keyring: Path, bundle: Path) -> subprocess.CompletedProcess[str]:
    return sh("rauc", "info", f"--keyring={keyring}", "--output-format=shell", bundle)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A bundle signed with the development key, and the certificate the rootfs trusts."""
    work = tmp_path_factory.mktemp("bundle")
    payload = work / "tree"
    (payload / "etc").mkdir(parents=True)
    (payload / "etc" / "os-release").write_text("ID=yakyak-test\n")
    (payload / "etc" / "rauc").mkdir()
    (payload / "etc" / "rauc" / "system.conf").write_text(
        "[system]\ncompatible=yakyak-testarch\nbootloader=uboot\n"
    )
    (payload / "noise").write_bytes(random.Random(8).randbytes(256 * 1024))  # squashfs > 4 KiB
    image = work / "rootfs.ext4"
    assert sh("mkfs.ext4", "-q", "-F", "-d", payload, image, "8M").returncode == 0
    cert = Path(sh(BUNDLE_SH, "key").stdout.strip())
    bundle = work / "good.raucb"
    made = sh(BUNDLE_SH, "bundle", image, bundle, "0.0-test")
    assert made.returncode == 0, made.stderr
    return bundle, cert


@pytest.mark.timeout(120)
def test_signed_bundle_is_accepted(signed: tuple[Path, Path]) -> None:
    bundle, cert = signed
    info = rauc_info(cert, bundle)
    assert info.returncode == 0, info.stderr
    # the rootfs's own compatible: a bundle only installs on a box of its architecture
    assert "RAUC_MF_COMPATIBLE='yakyak-testarch'" in info.stdout
    assert "Verified inline signature" in info.stderr


MANIFEST = (
    "[update]\ncompatible=yakyak-arm64\nversion={version}\n\n[bundle]\nformat=verity\n\n"
    "[image.rootfs]\nfilename=rootfs.ext4\n"
)


@pytest.mark.timeout(60)
def test_a_rootfs_without_a_compatible_makes_no_bundle(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    image = tmp_path / "rootfs.ext4"
    assert sh("mkfs.ext4", "-q", "-F", "-d", tree, image, "8M").returncode == 0
    made = sh(BUNDLE_SH, "bundle", image, tmp_path / "none.raucb", "0.0-test")
    assert made.returncode != 0
    assert "compatible" in made.stderr
    assert not (tmp_path / "none.raucb").exists()


@pytest.mark.timeout(120)
def test_bundle_signed_by_another_key_is_refused(signed: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, cert = signed
    foreign = tmp_path / "foreign"
    assert sh(BUNDLE_SH, "pair", foreign, "someone else").returncode == 0
    content = tmp_path / "content"
    content.mkdir()
    (content / "manifest.raucm").write_text(MANIFEST.format(version="foreign"))
    (content / "rootfs.ext4").write_bytes(random.Random(9).randbytes(256 * 1024))
    other = tmp_path / "foreign.raucb"
    made = sh(
        "rauc", "bundle", f"--cert={foreign / 'cert.pem'}", f"--key={foreign / 'key.pem'}",
        content, other,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert rauc_info(foreign / "cert.pem", other).returncode == 0, "valid for its own signer"
    refused = rauc_info(cert, other)
    assert refused.returncode != 0
    assert "signature" in refused.stderr.lower(), refused.stderr


@pytest.mark.timeout(120)
def test_bundle_with_a_changed_signed_part_is_refused(
    signed: tuple[Path, Path], tmp_path: Path
) -> None:
    """The CMS blob at the end (size in the last 8 bytes) carries the manifest and, in the
    verity format, the payload's root hash: a changed byte there fails verification. A
    changed payload byte is caught by dm-verity when the box installs the bundle, which
    needs loop devices and device mapper, so it is not checked here."""
    bundle, cert = signed
    data = bytearray(bundle.read_bytes())
    size = int.from_bytes(data[-8:], "big")
    assert 0 < size < len(data)
    data[len(data) - 8 - size // 2] ^= 0xFF
    tampered = tmp_path / "tampered.raucb"
    tampered.write_bytes(bytes(data))
    assert rauc_info(cert, tampered).returncode != 0


@pytest.mark.timeout(120)
def test_unsigned_bundle_is_refused(signed: tuple[Path, Path], tmp_path: Path) -> None:
    """A squashfs with a manifest and no signature: what an attacker without the key makes."""
    _, cert = signed
    content = tmp_path / "content"
    content.mkdir()
    (content / "manifest.raucm").write_text(MANIFEST.format(version="unsigned"))
    (content / "rootfs.ext4").write_bytes(random.Random(10).randbytes(256 * 1024))
    unsigned = tmp_path / "unsigned.raucb"
    squash = sh("mksquashfs", content, unsigned, "-quiet", "-all-root", "-noappend")
    assert squash.returncode == 0, squash.stderr
    refused = rauc_info(cert, unsigned)
    assert refused.returncode != 0
