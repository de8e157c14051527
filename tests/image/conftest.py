"""Fixtures for the OS image tests: the cached rootfs `make image-test` built, booted once
per session with systemd-nspawn. Skipped unless YAKYAK_IMAGE_ROOTFS names that rootfs
(the Makefile sets it after `image/rootfs.sh`), and they need root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from image.nspawn import ARTIFACTS, Container, boot


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image: boots the OS image's rootfs (make image-test; needs root)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.image)


@pytest.fixture(scope="session")
def rootfs() -> Path:
    path = os.environ.get("YAKYAK_IMAGE_ROOTFS")
    if not path:
        pytest.skip("no YAKYAK_IMAGE_ROOTFS: `make image-test` builds the rootfs and runs these")
    if os.geteuid() != 0:
        pytest.skip("systemd-nspawn and network namespaces need root")
    return Path(path)


@pytest.fixture(scope="session")
def container(rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    booted = boot(rootfs, tmp_path_factory.mktemp("image"))
    try:
        yield booted
    finally:
        booted.stop(ARTIFACTS)
