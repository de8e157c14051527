"""The update and SSH hand-over files between the web (user yakyak) and root's units:
an upload lands whole or not at all, a request goes queued -> running -> finished,
whatever root wrote is read without ever raising, and only checked public key lines are
written for root to copy into sshd's authorized_keys."""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import stat
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from appliance.system.updates import (
    BUNDLE,
    REQUEST,
    RESULT,
    RUNNING,
    SSH_AUTHORIZED_KEYS,
    SSH_ENABLED,
    SSH_SWITCH,
    STATUS,
    Rollback,
    SlotInfo,
    SystemStatus,
    UpdateBusy,
    UpdateFolder,
    UpdateResult,
    UpdateState,
    authorized_keys,
    parse_authorized_keys,
    set_ssh,
    size_text,
    ssh_enabled,
    status_from_dict,
)

BUNDLE_BYTES = b"hsqs" + bytes(range(256)) * 64  # 16 KiB and the squashfs magic
NOW = 1_772_366_400.0


def names(folder: UpdateFolder) -> list[str]:
    return sorted(p.name for p in folder.path.iterdir()) if folder.path.exists() else []


class Trickle:
    """A source that hands out `step` bytes a read, then fails if told to."""

    def __init__(self, data: bytes, step: int, fail_at: int | None = None) -> None:
        self.data = io.BytesIO(data)
        self.step = step
        self.fail_at = fail_at

    def read(self, size: int, /) -> bytes:
        if self.fail_at is not None and self.data.tell() >= self.fail_at:
            raise ConnectionResetError("the client went away")
        return self.data.read(min(size, self.step))


@pytest.fixture
def folder(tmp_path: Path) -> UpdateFolder:
    return UpdateFolder(tmp_path)


# -- receiving a bundle ------------------------------------------------------------------


def test_a_bundle_is_received_whole(folder: UpdateFolder) -> None:
    assert folder.receive_bundle(io.BytesIO(BUNDLE_BYTES), 1 << 20, chunk=1000) == 16388
    assert folder.bundle.read_bytes() == BUNDLE_BYTES
    assert names(folder) == [BUNDLE]
    # a stream that returns a byte or three a read is still a bundle
    assert folder.receive_bundle(Trickle(BUNDLE_BYTES, 3), 1 << 20) == len(BUNDLE_BYTES)
    assert folder.bundle.read_bytes() == BUNDLE_BYTES


@pytest.mark.parametrize(
    ("source", "limit", "error"),
    [
        (io.BytesIO(b"PK\x03\x04" + bytes(100)), 1 << 20, ValueError),
        (Trickle(b"hsQs" + bytes(100), 2), 1 << 20, ValueError),  # wrong in the second read
        (io.BytesIO(b"hsq"), 1 << 20, ValueError),  # the magic's start, nothing more
        (io.BytesIO(b""), 1 << 20, ValueError),
        (io.BytesIO(BUNDLE_BYTES), 1000, ValueError),
        (Trickle(BUNDLE_BYTES, 4096, fail_at=8192), 1 << 20, ConnectionResetError),
    ],
    ids=["not-a-bundle", "wrong-later", "magic-cut", "empty", "too-large", "client-gone"],
)
def test_a_failed_upload_leaves_no_bundle_and_no_part(
    folder: UpdateFolder, source: Any, limit: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        folder.receive_bundle(source, limit, chunk=1024)
    assert names(folder) == []


def test_the_refusals_say_what_is_wrong(folder: UpdateFolder) -> None:
    with pytest.raises(ValueError, match=r"^this is not a YakYak update bundle \(\.raucb\)$"):
        folder.receive_bundle(io.BytesIO(b"<html>"), 1 << 20)
    with pytest.raises(ValueError, match="^the bundle is larger than 1000 bytes$"):
        folder.receive_bundle(io.BytesIO(BUNDLE_BYTES), 1000)
    with pytest.raises(ValueError, match="^the bundle is larger than 2 MiB$"):
        folder.receive_bundle(io.BytesIO(b"hsqs" + bytes(3 << 20)), 2 << 20)
    with pytest.raises(ValueError, match="^the upload is empty$"):
        folder.receive_bundle(io.BytesIO(b""), 1 << 20)
    assert (size_text(1023), size_text(1 << 20), size_text(1 << 30)) == (
        "1023 bytes",
        "1 MiB",
        "1024 MiB",
    )


def test_a_leftover_bundle_nobody_queued_goes_with_the_next_upload(folder: UpdateFolder) -> None:
    folder.receive_bundle(io.BytesIO(BUNDLE_BYTES), 1 << 20)  # never queued (web stopped)
    with pytest.raises(ValueError):
        folder.receive_bundle(io.BytesIO(b"junk"), 1 << 20)
    assert names(folder) == []


# -- the request's way: queued, taken by root, finished -------------------------------


def test_request_take_finish(folder: UpdateFolder) -> None:
    with pytest.raises(FileNotFoundError):
        folder.request_install("admin", NOW)
    assert folder.pending() is None and folder.result() is None
    folder.receive_bundle(io.BytesIO(BUNDLE_BYTES), 1 << 20)
    request = folder.request_install("admin", NOW)
    assert (request.requested_by, request.size, request.time) == ("admin", 16388, NOW)
    assert len(request.id) == 16
    assert folder.pending() == request
    assert folder.result() == UpdateResult(request.id, UpdateState.QUEUED, "", NOW)
    assert names(folder) == [BUNDLE, REQUEST, RESULT]

    # one update at a time, whichever side holds it
    with pytest.raises(UpdateBusy):
        folder.receive_bundle(io.BytesIO(BUNDLE_BYTES), 1 << 20)
    with pytest.raises(UpdateBusy):
        folder.request_install("admin", NOW)
    assert folder.bundle.read_bytes() == BUNDLE_BYTES

    assert folder.take_request() == request  # root claims it
    assert names(folder) == [BUNDLE, RESULT, RUNNING]
    assert folder.pending() == request
    assert folder.take_request() is None  # nothing more queued
    with pytest.raises(UpdateBusy):
        folder.receive_bundle(io.BytesIO(BUNDLE_BYTES), 1 << 20)

    installing = UpdateResult(request.id, UpdateState.INSTALLING, "", NOW + 1, "B")
    folder.write_result(installing)
    assert folder.result() == installing
    folder.finish_request()
    assert names(folder) == [RESULT]
    assert folder.pending() is None
    assert folder.receive_bundle(io.BytesIO(BUNDLE_BYTES), 1 << 20) == len(BUNDLE_BYTES)


def test_root_drops_a_damaged_request(folder: UpdateFolder) -> None:
    folder.path.mkdir()
    (folder.path / REQUEST).write_text('{"id": ""}')
    assert folder.pending() is None
    assert folder.take_request() is None
    assert names(folder) == []


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", "null", '"text"', "[" * 100_000, '{"id": 5, "state": "queued"}', "\xff"],
    ids=["empty", "cut", "list", "null", "string", "deep", "odd-id", "not-utf8"],
)
def test_damaged_json_reads_as_nothing_known(folder: UpdateFolder, text: str) -> None:
    folder.path.mkdir()
    for name in (REQUEST, RUNNING, RESULT, STATUS):
        (folder.path / name).write_bytes(text.encode("latin-1"))
    assert folder.pending() is None
    assert folder.result() is None
    status = folder.status()
    assert status is None or status == SystemStatus(booted="")


def test_a_result_in_an_unknown_state_reads_as_none(folder: UpdateFolder) -> None:
    folder.path.mkdir()
    (folder.path / RESULT).write_text('{"id": "x", "state": "exploded", "time": 1}')
    assert folder.result() is None


# -- status.json ------------------------------------------------------------------------

STATUS_EXAMPLE = SystemStatus(
    booted="B",
    slots=(
        SlotInfo("rootfs.0", "A", False, "bad", "1.3.0", "2026-03-01T10:00:00Z"),
        SlotInfo("rootfs.1", "B", True, "good", "", ""),
    ),
    last_update=UpdateResult("ab12", UpdateState.INSTALLED, "", NOW - 60, "A"),
    rollback=Rollback("A", "1.3.0", NOW, "yakyak.service did not become ready"),
    health="good",
    time=NOW,
)


def test_status_round_trips_through_its_file(folder: UpdateFolder) -> None:
    folder.write_status(STATUS_EXAMPLE)
    assert folder.status() == STATUS_EXAMPLE
    assert json.loads((folder.path / STATUS).read_text())["slots"][1]["bootname"] == "B"


def test_status_from_partial_and_odd_data() -> None:
    assert status_from_dict(None) is None
    assert status_from_dict({}) == SystemStatus(booted="")
    odd = status_from_dict(
        {
            "booted": 1,
            "slots": [{"bootname": "A", "booted": "yes"}, "B", None],
            "last_update": {"id": "x", "state": "queued", "time": True},
            "rollback": {"time": 10**400, "reason": ["no"]},
            "health": None,
            "time": float("nan"),
        }
    )
    assert odd == SystemStatus(
        booted="",
        slots=(SlotInfo("", "A", False, "", "", ""),),
        last_update=UpdateResult("x", UpdateState.QUEUED, "", 0.0),
        rollback=Rollback("", "", 0.0, ""),
        health="",
        time=0.0,
    )
    assert status_from_dict({"slots": {"A": {}}, "rollback": "A"}) == SystemStatus(booted="")


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
# The keys of the real file, so the values land where they are read, and some others.
STATUS_KEYS = st.sampled_from(
    [
        "booted",
        "slots",
        "last_update",
        "rollback",
        "health",
        "time",
        "id",
        "state",
        "message",
        "slot",
        "name",
        "bootname",
        "boot_status",
        "version",
        "installed",
        "from_slot",
        "reason",
    ]
) | st.text(max_size=5)
JSON_LIKE = st.recursive(
    JSON_LEAVES | st.sampled_from([s.value for s in UpdateState]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(STATUS_KEYS, inner, max_size=6),
    max_leaves=30,
)


def _finite_times(status: SystemStatus) -> list[float]:
    times = [status.time]
    if status.last_update is not None:
        times.append(status.last_update.time)
    if status.rollback is not None:
        times.append(status.rollback.time)
    return times


@given(st.dictionaries(STATUS_KEYS, JSON_LIKE, max_size=8))
def test_status_from_any_json_like_dict_never_raises(data: dict[str, Any]) -> None:
    status = status_from_dict(data)
    assert status is not None
    assert all(math.isfinite(t) for t in _finite_times(status))
    assert all(isinstance(s.version, str) and isinstance(s.booted, bool) for s in status.slots)
    json.dumps(asdict(status), allow_nan=False)  # what the API answers is valid JSON


TEXT = st.text(max_size=10)
TIMES = st.floats(min_value=0, max_value=4e9, allow_nan=False)
RESULTS = st.builds(
    UpdateResult, TEXT.filter(bool), st.sampled_from(UpdateState), TEXT, TIMES, TEXT
)
STATUSES = st.builds(
    SystemStatus,
    booted=TEXT,
    slots=st.lists(
        st.builds(SlotInfo, TEXT, TEXT, st.booleans(), TEXT, TEXT, TEXT), max_size=3
    ).map(tuple),
    last_update=st.none() | RESULTS,
    rollback=st.none() | st.builds(Rollback, TEXT, TEXT, TIMES, TEXT),
    health=TEXT,
    time=TIMES,
)


@given(STATUSES)
def test_any_status_root_writes_reads_back_the_same(status: SystemStatus) -> None:
    assert status_from_dict(json.loads(json.dumps(asdict(status)))) == status


# -- SSH -----------------------------------------------------------------------------------


def test_the_ssh_switch(tmp_path: Path) -> None:
    assert ssh_enabled(tmp_path) is False
    set_ssh(tmp_path, True)
    assert ssh_enabled(tmp_path) and (tmp_path / SSH_ENABLED).exists()
    assert (tmp_path / SSH_SWITCH).read_text().startswith("on ")
    set_ssh(tmp_path, True)  # again: still on, the switch file written once more
    assert ssh_enabled(tmp_path)
    set_ssh(tmp_path, False)
    assert not ssh_enabled(tmp_path) and not (tmp_path / SSH_ENABLED).exists()
    assert (tmp_path / SSH_SWITCH).read_text().startswith("off ")
    set_ssh(tmp_path, False)
    assert not ssh_enabled(tmp_path)


def test_ssh_without_keys_leaves_the_keys_file_alone(tmp_path: Path) -> None:
    set_ssh(tmp_path, True)
    assert not (tmp_path / SSH_AUTHORIZED_KEYS).exists() and authorized_keys(tmp_path) == []


# -- the public keys root installs for sshd ---------------------------------------------


def _string(data: bytes) -> bytes:
    """An SSH wire "string" (RFC 4251 §5): a 32-bit length, then the bytes."""
    return len(data).to_bytes(4, "big") + data


def _line(*fields: bytes) -> str:
    """A key line whose blob holds `fields`, the first one (the type) named on the line too."""
    return f"{fields[0].decode()} {base64.b64encode(b''.join(map(_string, fields))).decode()}"


def _openssh(
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


@functools.cache
def real_keys() -> dict[str, str]:
    """One key line of each type sshd takes: generated, except the security-key types
    (made on a FIDO token), built here the way PROTOCOL.u2f lays them out."""
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = p256.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    sk_ed = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    return {
        "ssh-ed25519": _openssh(ed25519.Ed25519PrivateKey.generate()),
        "ssh-rsa": _openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "ecdsa-sha2-nistp256": _openssh(ec.generate_private_key(ec.SECP256R1())),
        "ecdsa-sha2-nistp384": _openssh(ec.generate_private_key(ec.SECP384R1())),
        "ecdsa-sha2-nistp521": _openssh(ec.generate_private_key(ec.SECP521R1())),
        "sk-ssh-ed25519@openssh.com": _line(b"sk-ssh-ed25519@openssh.com", sk_ed, b"ssh:"),
        "sk-ecdsa-sha2-nistp256@openssh.com": _line(
            b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", point, b"ssh:"
        ),
    }


def test_a_key_of_each_type_is_taken_as_it_was_given() -> None:
    keys = real_keys()
    for kind, line in keys.items():
        assert line.split()[0] == kind
        assert parse_authorized_keys(line) == [line]
        assert parse_authorized_keys(f"{line} installer@laptop") == [f"{line} installer@laptop"]


def test_comments_blank_lines_crlf_and_spacing() -> None:
    ed, rsa_line = real_keys()["ssh-ed25519"], real_keys()["ssh-rsa"]
    kind, blob = ed.split()
    text = (
        "# the installer's laptop\r\n"
        "\r\n"
        f"  {kind}\t{blob}   anna@laptop  (work)  \r\n"
        "   # an indented comment\n"
        f"{rsa_line}\n"
        "\n"
    )
    assert parse_authorized_keys(text) == [f"{ed} anna@laptop  (work)", rsa_line]
    assert parse_authorized_keys("") == []
    assert parse_authorized_keys("\n# nothing but comments\n\n") == []


GOOD = real_keys()["ssh-ed25519"]
ED_BLOB = base64.b64decode(GOOD.split()[1])


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (GOOD[:-1] + "$", "the key's base64 text is damaged"),
        (GOOD[:-2], "the key's base64 text is damaged"),  # cut in a 4-character group
        (
            "ssh-ed25519 " + base64.b64encode(ED_BLOB[:-4]).decode(),
            "the key is cut short",
        ),
        (
            "ssh-rsa " + GOOD.split()[1],
            r"the key inside is not of the type the line names \(ssh-rsa\)",
        ),
        (
            "ssh-ed25519 " + real_keys()["ssh-rsa"].split()[1],
            "the key inside is not of the type the line names",
        ),
        ("ssh-ed25519", "the key's base64 text is missing after ssh-ed25519"),
        (_line(b"ssh-ed25519", bytes(31)), "the Ed25519 key is not 32 bytes long"),
        (
            _line(b"ssh-ed25519", bytes(32), b"more"),
            "the key does not have the parts an ssh-ed25519 key has",
        ),
        (
            _line(b"ecdsa-sha2-nistp384", b"nistp256", bytes(65)),
            r"the key inside is not on the curve its type names \(nistp384\)",
        ),
        (_line(b"ssh-rsa", b"\x01\x00\x01"), "the key does not have the parts an ssh-rsa key has"),
        (f'command="/bin/sh -c id" {GOOD}', "options before the key .* are not accepted"),
        (f"restrict,pty {GOOD}", "options before the key"),
        (f'from="10.0.0.0/8",no-agent-forwarding {GOOD} x', "options before the key"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "not an OpenSSH public key"),
        ("ssh-ed25519-cert-v01@openssh.com AAAA", "not an OpenSSH public key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "not an OpenSSH public key"),
        (f"{GOOD} a\x00b", "it holds control or invisible characters"),
        (f"{GOOD} \u202eevil", "it holds control or invisible characters"),
        (f"{GOOD} \ud800", "it holds control or invisible characters"),
    ],
    ids=[
        "bad-base64",
        "base64-cut",
        "cut-short",
        "type-mismatch",
        "rsa-blob-as-ed25519",
        "no-base64",
        "ed25519-size",
        "extra-field",
        "curve-mismatch",
        "rsa-missing-n",
        "command",
        "restrict",
        "from",
        "dsa",
        "certificate",
        "private-key",
        "nul",
        "bidi-override",
        "surrogate",
    ],
)
def test_a_bad_line_is_refused_by_its_number(line: str, reason: str) -> None:
    text = f"# keys\n{GOOD} first\n\n{line}\n{GOOD} after\n"
    with pytest.raises(ValueError, match=f"^line 4: {reason}"):
        parse_authorized_keys(text)


def test_at_most_twenty_keys_and_16_kib() -> None:
    twenty = "\n".join(f"{GOOD} key-{n}" for n in range(20))
    assert len(parse_authorized_keys(twenty)) == 20
    with pytest.raises(ValueError, match="^line 22: more than 20 keys$"):
        parse_authorized_keys(f"{twenty}\n# one more\n{GOOD} key-20")
    # 16 KiB in all, comments counted: the file root copies stays small
    fits = f"{GOOD}\n" + "#" * ((16 << 10) - len(GOOD) - 1)
    assert len(fits) == 16 << 10 and parse_authorized_keys(fits) == [GOOD]
    with pytest.raises(ValueError, match="^line 2: the keys are longer than 16384 characters"):
        parse_authorized_keys(fits + "#")
    with pytest.raises(ValueError, match="^line 3: the keys are longer than 16384 characters"):
        parse_authorized_keys(f"{fits}\n{GOOD}")


def test_what_is_returned_parses_back_to_itself() -> None:
    keys = parse_authorized_keys("\n".join(f"  {line}\tnote  " for line in real_keys().values()))
    assert parse_authorized_keys("\n".join(keys)) == keys


# Pieces of real and broken key lines, so examples get past the first checks.
FRAGMENTS = st.sampled_from(
    [
        GOOD,
        GOOD.split()[1],
        "ssh-ed25519",
        "ssh-rsa",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        'command="x"',
        "#",
        " ",
        "\t",
        "\r",
        "\n",
        "AAAA",
        "=",
        "\x00",
        "\u2028",
        "\ud800",
    ]
)
# Joined by spaces, so a key and its base64 stay words apart often enough to parse.
KEY_TEXT = st.text(max_size=300) | st.lists(FRAGMENTS | st.text(max_size=5), max_size=30).map(
    " ".join
)


@given(KEY_TEXT)
def test_any_text_gives_key_lines_or_a_value_error(text: str) -> None:
    try:
        keys = parse_authorized_keys(text)
    except ValueError as exc:
        assert str(exc).startswith("line ")
        return
    assert len(keys) <= 20
    for key in keys:
        assert "\n" not in key and "\r" not in key
        assert key.split()[0] in real_keys()
        key.encode("utf-8")  # writable to the file
    assert parse_authorized_keys("\n".join(keys)) == keys


def test_keys_are_written_before_the_switch_and_read_back(tmp_path: Path) -> None:
    keys = [GOOD, real_keys()["ssh-rsa"] + " bob"]
    set_ssh(tmp_path, True, keys)
    written = tmp_path / SSH_AUTHORIZED_KEYS
    assert written.read_text() == f"{keys[0]}\n{keys[1]}\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o644  # public keys; root copies as 0600
    assert authorized_keys(tmp_path) == keys
    assert ssh_enabled(tmp_path) and (tmp_path / SSH_SWITCH).read_text().startswith("on ")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        SSH_AUTHORIZED_KEYS,
        SSH_ENABLED,
        SSH_SWITCH,
    ]

    set_ssh(tmp_path, False)  # no keys given: they stay
    assert authorized_keys(tmp_path) == keys and not ssh_enabled(tmp_path)
    set_ssh(tmp_path, False, [])  # none: an empty file, so root cannot keep the old ones
    assert written.read_text() == "" and authorized_keys(tmp_path) == []


def test_keys_that_are_not_keys_are_never_written(tmp_path: Path) -> None:
    set_ssh(tmp_path, False, [GOOD])
    with pytest.raises(ValueError, match="^line 2: options before the key"):
        set_ssh(tmp_path, True, [GOOD, f'command="id" {GOOD}'])
    assert authorized_keys(tmp_path) == [GOOD]
    assert not ssh_enabled(tmp_path)  # refused before the switch moved
    assert (tmp_path / SSH_SWITCH).read_text().startswith("off ")
    set_ssh(tmp_path, False, ["# a note", "", f"  {GOOD}  "])  # as parsed: one line, tidy
    assert (tmp_path / SSH_AUTHORIZED_KEYS).read_text() == f"{GOOD}\n"


def test_the_keys_file_is_read_as_it_is(tmp_path: Path) -> None:
    assert authorized_keys(tmp_path) == []
    (tmp_path / SSH_AUTHORIZED_KEYS).write_bytes(b"ssh-ed25519 AAAA x\n\n  \nnot\xffutf8\n")
    assert authorized_keys(tmp_path) == ["ssh-ed25519 AAAA x", "not\ufffdutf8"]
