"""systemd edges: journal detection and notification (the real socket is in tests/e2e)."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

import pytest

from appliance.system.logs import setup_logging, under_systemd
from appliance.system.notify import Notifier


def test_under_systemd_only_when_stderr_is_the_journal_stream() -> None:
    st = os.fstat(sys.stderr.fileno())
    assert under_systemd({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert not under_systemd({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
    assert not under_systemd({"JOURNAL_STREAM": "garbage"})
    assert not under_systemd({})


def test_setup_logging_goes_to_stderr_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        setup_logging("warning")
        assert root.level == logging.WARNING
        assert [type(h) for h in root.handlers] == [logging.StreamHandler]
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


def test_notifier_is_silent_without_a_socket() -> None:
    notifier = Notifier({})
    assert not notifier.active
    notifier.ready("x")  # no socket, no error
    notifier.stopping()


def test_notifier_sends_ready_and_stopping(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        os.environ["NOTIFY_SOCKET"] = str(path)  # systemd.daemon.notify reads the environment
        try:
            assert notifier.active
            notifier.ready("SIP on udp:127.0.0.1:5060")
            assert sock.recv(256) == b"READY=1\nSTATUS=SIP on udp:127.0.0.1:5060"
            notifier.stopping()
            assert sock.recv(256) == b"STOPPING=1"
        finally:
            del os.environ["NOTIFY_SOCKET"]
