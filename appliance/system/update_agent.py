"""Root's side of software updates on the image: install a queued bundle, judge each boot.

Two entry points, each run by a root unit on the appliance image:

``apply``  (yakyak-update.service, started by yakyak-update.path when the web UI queued a
           bundle): RAUC checks the bundle's signature and installs it into the slot not
           running; the slot is remembered as on trial and the box reboots into it.
``health`` (yakyak-health.service, every boot): waits for yakyak.service to be ready.
           Healthy: RAUC marks the booted slot good (its U-Boot boot counter is given back)
           and a trial ends as a successful update. A slot on trial that does not become
           healthy is marked bad and the box reboots: U-Boot skips it and boots the slot
           that worked before, where the next health check records the rollback.
           A slot that ran healthy before is not rolled back when the PBX fails later
           (the fault is then in the data or the network, which the old slot shares).

The decisions are plain functions of what the commands answered; the commands run through
a ``Runner`` so tests drive them with scripted answers.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from appliance.system.updates import (
    RUNNING,
    Rollback,
    SlotInfo,
    SystemStatus,
    Trial,
    UpdateFolder,
    UpdateResult,
    UpdateState,
    read_json,
)

log = logging.getLogger(__name__)

PBX_UNIT = "yakyak.service"
# An update's service restarting this often has failed, even if systemd keeps trying.
MAX_RESTARTS = 3


@dataclass(frozen=True)
class Answer:
    returncode: int
    stdout: str
    stderr: str = ""


Runner = Callable[[Sequence[str]], Answer]


def run_command(argv: Sequence[str]) -> Answer:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    return Answer(done.returncode, done.stdout, done.stderr)


@dataclass
class Agent:
    folder: UpdateFolder
    run: Runner = run_command
    cmdline: str = ""  # /proc/cmdline
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    rauc: Sequence[str] = ("rauc",)
    systemctl: Sequence[str] = ("systemctl",)
    messages: list[str] = field(default_factory=list)

    # --- install ---

    def apply(self) -> UpdateResult | None:
        """Install the queued bundle, if any; INSTALLED means: reboot now."""
        self._own_folder()
        req = self.folder.take_request()
        if req is None:
            return None
        self.folder.write_result(
            UpdateResult(req.id, UpdateState.INSTALLING, "checking the signature", self.clock())
        )
        bundle = str(self.folder.bundle)
        try:
            info = self.run([*self.rauc, "info", "--output-format=json", bundle])
            if info.returncode != 0:
                return self._finish(req.id, UpdateState.FAILED, _refusal(info), "")
            version = _bundle_version(info.stdout)
            self.folder.write_result(
                UpdateResult(
                    req.id,
                    UpdateState.INSTALLING,
                    f"installing version {version}" if version else "installing",
                    self.clock(),
                )
            )
            target = self._other_slot()
            installed = self.run([*self.rauc, "install", bundle])
            if installed.returncode != 0:
                return self._finish(req.id, UpdateState.FAILED, _refusal(installed), "")
            self.folder.set_trial(Trial(target, version, req.id, self.clock()))
            message = f"version {version or '(unnamed)'} installed into slot {target or '?'}"
            return self._finish(req.id, UpdateState.INSTALLED, message + "; restarting", target)
        finally:
            self.folder.finish_request()

    def _finish(self, rid: str, state: UpdateState, message: str, slot: str) -> UpdateResult:
        result = UpdateResult(rid, state, message, self.clock(), slot)
        self.folder.write_result(result)
        log.info("update %s: %s: %s", rid, state.value, message)
        return result

    def _other_slot(self) -> str:
        booted = booted_slot(self.cmdline)
        names = [s.bootname for s in self._slots()]
        others = [n for n in names if n and n != booted]
        return others[0] if len(others) == 1 else ""

    # --- every boot ---

    def health(self, timeout: float, poll: float = 2.0) -> SystemStatus:
        """Judge this boot (see the module text); returns the status written for the web.

        After a rollback decision the caller reboots (the status says health "bad")."""
        booted = booted_slot(self.cmdline)
        self._own_folder()
        self._end_interrupted_install()
        previous = self.folder.status()
        rollback = previous.rollback if previous else None
        last_update = previous.last_update if previous else None
        trial = self.folder.trial()
        if not booted:
            status = SystemStatus("", (), last_update, rollback, "not an A/B boot", self.clock())
            self.folder.write_status(status)
            return status
        if trial is not None and trial.slot != booted:
            # the update's slot was left (marked bad, or U-Boot ran out of tries on it)
            rollback = Rollback(
                from_slot=trial.slot,
                version=trial.version,
                time=self.clock(),
                reason=trial.failure
                or "the new version did not pass its health check (it did not start, or the "
                "check itself could not run)",
            )
            last_update = UpdateResult(
                trial.id,
                UpdateState.FAILED,
                f"version {trial.version} rolled back to slot {booted}: {rollback.reason}",
                self.clock(),
                trial.slot,
            )
            self.folder.clear_trial()
            trial = None
            log.warning("update to %s rolled back: %s", rollback.version, rollback.reason)
        healthy, why = self.wait_for_pbx(timeout, poll)
        if healthy:
            self.run([*self.rauc, "status", "mark-good", "booted"])
            health = "good"
            if trial is not None:
                last_update = UpdateResult(
                    trial.id,
                    UpdateState.INSTALLED,
                    f"version {trial.version} is running in slot {booted}",
                    self.clock(),
                    booted,
                )
                rollback = None
                self.folder.clear_trial()
        elif trial is not None:
            self.run([*self.rauc, "status", "mark-bad", "booted"])
            # kept for the rollback notice the next boot writes
            self.folder.set_trial(replace(trial, failure=why))
            health = f"bad: {why}; rolling back"
        else:
            # not an update on trial: the old slot would not do better (see module text)
            self.run([*self.rauc, "status", "mark-good", "booted"])
            health = f"PBX not running: {why}"
        status = SystemStatus(booted, self._slots(), last_update, rollback, health, self.clock())
        self.folder.write_status(status)
        return status

    def _own_folder(self) -> None:
        """The update folder belongs to the PBX's user (it writes the bundle and requests
        there) even when root, at boot, is the first to need it."""
        self.folder.path.mkdir(parents=True, exist_ok=True)
        owner = self.folder.data_dir.stat()
        here = self.folder.path.stat()
        if (here.st_uid, here.st_gid) != (owner.st_uid, owner.st_gid):
            os.chown(self.folder.path, owner.st_uid, owner.st_gid)

    def _end_interrupted_install(self) -> None:
        """An installation the power or a crash cut short holds the claim (running.json),
        which would refuse every later upload; RAUC rewrites the whole slot next time."""
        running = self.folder.path / RUNNING
        if not running.exists():
            return
        claim = read_json(running) or {}
        rid = claim.get("id") if isinstance(claim.get("id"), str) else ""
        self.folder.finish_request()
        self.folder.write_result(
            UpdateResult(
                str(rid),
                UpdateState.FAILED,
                "interrupted: the box restarted during the installation; upload it again",
                self.clock(),
            )
        )

    def wait_for_pbx(self, timeout: float, poll: float) -> tuple[bool, str]:
        """Until yakyak.service is ready (Type=notify: SIP and web listen), fails, or restarts
        too often, or ``timeout`` passes."""
        deadline = self.clock() + timeout
        state: Mapping[str, str] = {}
        while True:
            state = self._unit_state()
            if state.get("ActiveState") == "active" and state.get("SubState") == "running":
                return True, ""
            if state.get("ActiveState") == "failed":
                return False, f"{PBX_UNIT} failed ({state.get('Result', '?')})"
            restarts = state.get("NRestarts", "0")
            if restarts.isdigit() and int(restarts) >= MAX_RESTARTS:
                return False, f"{PBX_UNIT} restarted {restarts} times"
            if self.clock() >= deadline:
                return False, f"{PBX_UNIT} not ready after {timeout:.0f} s ({_describe(state)})"
            self.sleep(poll)

    def _unit_state(self) -> dict[str, str]:
        props = "ActiveState,SubState,NRestarts,Result"
        answer = self.run([*self.systemctl, "show", f"--property={props}", PBX_UNIT])
        return dict(line.split("=", 1) for line in answer.stdout.splitlines() if "=" in line)

    def _slots(self) -> tuple[SlotInfo, ...]:
        answer = self.run([*self.rauc, "status", "--detailed", "--output-format=json"])
        if answer.returncode != 0:
            return ()
        return parse_rauc_slots(answer.stdout)


def booted_slot(cmdline: str) -> str:
    for word in cmdline.split():
        if word.startswith("rauc.slot="):
            return word.removeprefix("rauc.slot=")
    return ""


def _describe(state: Mapping[str, str]) -> str:
    return f"{state.get('ActiveState', '?')}/{state.get('SubState', '?')}"


def _refusal(answer: Answer) -> str:
    """RAUC's reason, without its log noise: the last lines that say what went wrong."""
    lines = [ln.strip() for ln in (answer.stderr + "\n" + answer.stdout).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("installing", "rauc-Message"))]
    wanted = [ln for ln in lines if "error" in ln.lower() or "fail" in ln.lower()]
    text = " / ".join((wanted or lines)[-3:])
    return (f"refused: {text}" if text else f"refused (rauc exit {answer.returncode})")[:500]


def _bundle_version(info_json: str) -> str:
    try:
        info = json.loads(info_json)
    except ValueError:
        return ""
    if not isinstance(info, dict):
        return ""
    update = info.get("update")
    version = update.get("version") if isinstance(update, dict) else info.get("version")
    return version if isinstance(version, str) else ""


def _text(d: Mapping[str, Any], *path: str) -> str:
    value: Any = d
    for key in path:
        if not isinstance(value, Mapping):
            return ""
        value = value.get(key)
    return value if isinstance(value, str) else ""


def parse_rauc_slots(status_json: str) -> tuple[SlotInfo, ...]:
    """The root slots from ``rauc status --detailed --output-format=json``."""
    try:
        status = json.loads(status_json)
    except ValueError:
        return ()
    if not isinstance(status, dict) or not isinstance(status.get("slots"), list):
        return ()
    booted = status.get("booted")
    slots: list[SlotInfo] = []
    for entry in status["slots"]:
        # RAUC lists each slot as a one-key object: {"rootfs.0": {...}}
        if not isinstance(entry, dict):
            continue
        for name, slot in entry.items():
            if not isinstance(slot, dict) or slot.get("class") not in (None, "rootfs"):
                continue
            slots.append(
                SlotInfo(
                    name=str(name),
                    bootname=_text(slot, "bootname"),
                    booted=slot.get("state") == "booted"
                    or (bool(booted) and slot.get("bootname") == booted),
                    boot_status=_text(slot, "boot_status"),
                    version=_text(slot, "slot_status", "bundle", "version"),
                    installed=_text(slot, "slot_status", "installed", "timestamp"),
                )
            )
    return tuple(sorted(slots, key=lambda s: s.bootname or s.name))
