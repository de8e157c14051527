"""Root's update decisions (appliance/system/update_agent.py) against scripted command answers:
install or refuse a queued bundle, mark a healthy boot good, roll back an update that does
not come up, and never roll back a slot that had run healthy before."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from appliance.system.update_agent import Agent, Answer, booted_slot, parse_rauc_slots
from appliance.system.updates import UpdateFolder, UpdateState

BUNDLE = b"hsqs" + b"\0" * 4096


def rauc_status(booted: str, versions: dict[str, str], bad: str = "") -> str:
    slots = []
    for i, name in enumerate("AB"):
        slot = {
            "class": "rootfs",
            "bootname": name,
            "state": "booted" if name == booted else "inactive",
            "boot_status": "bad" if name == bad else "good",
        }
        if versions.get(name):
            slot["slot_status"] = {
                "bundle": {"version": versions[name]},
                "installed": {"timestamp": "2026-11-26T05:00:00Z"},
            }
        slots.append({f"rootfs.{i}": slot})
    return json.dumps({"compatible": "yakyak-arm64", "booted": booted, "slots": slots})


class Box:
    """The commands root's agent runs, answered like a box in a given state."""

    def __init__(self, booted: str = "A") -> None:
        self.booted = booted
        self.versions: dict[str, str] = {}
        self.bad = ""
        self.calls: list[list[str]] = []
        self.info = Answer(0, json.dumps({"update": {"version": "2.0"}}))
        self.install = Answer(0, "Installing done.\n")
        self.unit = ["ActiveState=active\nSubState=running\nNRestarts=0\nResult=success\n"]

    def __call__(self, argv: Sequence[str]) -> Answer:
        argv = list(argv)
        self.calls.append(argv)
        if argv[:2] == ["rauc", "info"]:
            return self.info
        if argv[:2] == ["rauc", "install"]:
            return self.install
        if argv[:3] == ["rauc", "status", "--detailed"]:
            return Answer(0, rauc_status(self.booted, self.versions, self.bad))
        if argv[:3] == ["rauc", "status", "mark-bad"]:
            self.bad = self.booted
            return Answer(0, "")
        if argv[:3] == ["rauc", "status", "mark-good"]:
            return Answer(0, "")
        if argv[:2] == ["systemctl", "show"]:
            return Answer(0, self.unit.pop(0) if len(self.unit) > 1 else self.unit[0])
        raise AssertionError(f"unexpected command {argv}")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def agent(folder: UpdateFolder, box: Box, clock: Clock | None = None) -> Agent:
    clock = clock or Clock()
    return Agent(
        folder,
        run=box,
        cmdline=f"console=ttyAMA0 root=PARTUUID=59616b59-02 ro rauc.slot={box.booted}",
        clock=clock,
        sleep=clock.sleep,
    )


def queue(folder: UpdateFolder) -> str:
    folder.receive_bundle(io.BytesIO(BUNDLE), limit=1 << 20)
    return folder.request_install("admin").id


@pytest.fixture
def folder(tmp_path: Path) -> UpdateFolder:
    return UpdateFolder(tmp_path)


def test_nothing_queued_does_nothing(folder: UpdateFolder) -> None:
    box = Box()
    assert agent(folder, box).apply() is None
    assert box.calls == []


def test_signed_bundle_goes_into_the_other_slot_on_trial(folder: UpdateFolder) -> None:
    rid = queue(folder)
    box = Box(booted="A")
    result = agent(folder, box).apply()
    assert result is not None and result.state is UpdateState.INSTALLED
    assert result.id == rid and result.slot == "B" and "2.0" in result.message
    assert ["rauc", "install", str(folder.bundle)] in box.calls
    trial = folder.trial()
    assert trial is not None and trial.slot == "B"
    assert folder.result() == result
    assert folder.pending() is None and not folder.bundle.exists(), "the bundle's space is freed"


def test_refused_bundle_changes_nothing(folder: UpdateFolder) -> None:
    queue(folder)
    box = Box()
    box.info = Answer(
        1, "", "rauc-Message: x\nFailed to verify bundle: signature verification failed: bad\n"
    )
    result = agent(folder, box).apply()
    assert result is not None and result.state is UpdateState.FAILED
    assert "signature verification failed" in result.message
    assert not any(c[:2] == ["rauc", "install"] for c in box.calls), "never installed"
    assert folder.trial() is None and folder.pending() is None
    assert not folder.bundle.exists()


def test_failed_install_is_reported(folder: UpdateFolder) -> None:
    queue(folder)
    box = Box()
    box.install = Answer(1, "", "Installation error: Failed writing slot: No space left\n")
    result = agent(folder, box).apply()
    assert result is not None and result.state is UpdateState.FAILED
    assert "No space left" in result.message and folder.trial() is None


def test_healthy_boot_is_marked_good(folder: UpdateFolder) -> None:
    box = Box(booted="A")
    status = agent(folder, box).health(timeout=60)
    assert status.health == "good" and status.booted == "A"
    assert ["rauc", "status", "mark-good", "booted"] in box.calls
    assert folder.status() == status
    assert [s.bootname for s in status.slots] == ["A", "B"]


def test_update_that_comes_up_is_kept(folder: UpdateFolder) -> None:
    queue(folder)
    agent(folder, Box(booted="A")).apply()
    box = Box(booted="B")  # U-Boot booted the new slot
    box.versions = {"B": "2.0"}
    box.unit = ["ActiveState=activating\nSubState=start\nNRestarts=0\n"] * 5 + [
        "ActiveState=active\nSubState=running\nNRestarts=0\n"
    ]
    status = agent(folder, box).health(timeout=300)
    assert status.health == "good" and status.rollback is None
    assert status.last_update is not None and status.last_update.state is UpdateState.INSTALLED
    assert "2.0" in status.last_update.message
    assert folder.trial() is None
    assert status.slots[1].version == "2.0" and status.slots[1].booted


def test_update_that_fails_is_marked_bad_and_rolled_back(folder: UpdateFolder) -> None:
    queue(folder)
    agent(folder, Box(booted="A")).apply()
    box = Box(booted="B")
    box.unit = ["ActiveState=activating\nSubState=auto-restart\nNRestarts=3\n"]
    status = agent(folder, box).health(timeout=300)
    assert status.health.startswith("bad") and "restarted 3 times" in status.health
    assert ["rauc", "status", "mark-bad", "booted"] in box.calls
    assert ["rauc", "status", "mark-good", "booted"] not in box.calls
    # U-Boot skips B now; the old slot's health check records the rollback
    back = Box(booted="A")
    status = agent(folder, back).health(timeout=60)
    assert status.health == "good"
    assert status.rollback is not None and status.rollback.from_slot == "B"
    assert status.rollback.version == "2.0" and "restarted 3 times" in status.rollback.reason
    assert status.last_update is not None and status.last_update.state is UpdateState.FAILED
    assert folder.trial() is None
    # the notice stays on later boots
    assert agent(folder, Box(booted="A")).health(timeout=60).rollback == status.rollback


def test_update_never_ready_times_out(folder: UpdateFolder) -> None:
    queue(folder)
    agent(folder, Box(booted="A")).apply()
    box = Box(booted="B")
    box.unit = ["ActiveState=activating\nSubState=start\nNRestarts=0\n"]
    status = agent(folder, box).health(timeout=300)
    assert "not ready after 300 s" in status.health


def test_update_whose_boot_never_reached_the_check_is_a_rollback(folder: UpdateFolder) -> None:
    queue(folder)
    agent(folder, Box(booted="A")).apply()
    # B panicked three times; U-Boot went back to A with no word from B
    status = agent(folder, Box(booted="A")).health(timeout=60)
    assert status.rollback is not None and "did not start" in status.rollback.reason


def test_a_slot_that_ran_before_is_not_rolled_back(folder: UpdateFolder) -> None:
    box = Box(booted="A")
    box.unit = ["ActiveState=failed\nSubState=failed\nNRestarts=0\nResult=exit-code\n"]
    status = agent(folder, box).health(timeout=60)
    assert status.health.startswith("PBX not running") and "failed (exit-code)" in status.health
    assert ["rauc", "status", "mark-bad", "booted"] not in box.calls
    assert ["rauc", "status", "mark-good", "booted"] in box.calls


def test_not_an_ab_boot(folder: UpdateFolder) -> None:
    box = Box()
    a = Agent(folder, run=box, cmdline="root=/dev/sda1 ro")
    assert a.health(timeout=1).health == "not an A/B boot"
    assert box.calls == []


def test_booted_slot_from_the_command_line() -> None:
    assert booted_slot("ro rauc.slot=B panic=10") == "B"
    assert booted_slot("ro quiet") == ""


@pytest.mark.parametrize(
    "text", ["", "null", "[]", '{"slots": 3}', '{"slots": [1, {"x": 2}, {"rootfs.0": []}]}']
)
def test_odd_rauc_status_reads_as_no_slots(text: str) -> None:
    assert parse_rauc_slots(text) == ()


def test_install_cut_short_by_a_restart_is_reported_and_unblocks_uploads(
    folder: UpdateFolder,
) -> None:
    rid = queue(folder)
    folder.take_request()  # root claimed it; then the power went
    assert folder.pending() is not None
    agent(folder, Box(booted="A")).health(timeout=60)
    assert folder.pending() is None and not folder.bundle.exists()
    result = folder.result()
    assert result is not None and result.id == rid and result.state is UpdateState.FAILED
    assert "interrupted" in result.message
