"""Voicemail e-mail against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import socket
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from appliance.net.email_notify import (
    EmailError,
    SmtpConfig,
    build_message,
    format_duration,
    send,
)

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC, 23:13:20 in Berlin


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Sink:
    """Keeps every message the server accepts."""

    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def only_message(self) -> EmailMessage:
        [envelope] = self.envelopes
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"vm", b"s3cret")
    # handled=False: aiosmtpd answers 535 itself (with True it would answer nothing).
    return AuthResult(success=ok, handled=False)


@dataclass
class Server:
    sink: Sink
    port: int


def _serve(**kwargs: Any) -> Iterator[Server]:
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield Server(sink, port)
    finally:
        controller.stop()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture
def auth_server() -> Iterator[Server]:
    yield from _serve(authenticator=_authenticate, auth_require_tls=False)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "msg-1700000000000-0123abcd.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(struct.pack("<h", i * 37 % 6000) for i in range(8000 * 7)))
    return path


def _message(config: SmtpConfig, wav: Path, **changes: Any) -> EmailMessage:
    args: dict[str, Any] = {
        "to": "bob@example.com",
        "mailbox": "2000",
        "caller": "2001",
        "caller_name": "Alice",
        "received_at": T0,
        "duration": 7.2,
        "wav_path": wav,
        "attach": True,
        "timezone": "Europe/Berlin",
    }
    args.update(changes)
    return build_message(config, **args)


def test_notice_with_attachment_arrives_whole(server: Server, wav: Path) -> None:
    config = SmtpConfig("127.0.0.1", server.port, sender="pbx@office.example")
    send(config, _message(config, wav))
    [envelope] = server.sink.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == ("pbx@office.example", ["bob@example.com"])
    received = server.sink.only_message()
    assert received["Subject"] == "New voicemail from 2001 (Alice) for 2000, 0:07"
    assert (received["From"], received["To"]) == ("pbx@office.example", "bob@example.com")
    assert received["Date"] == "Tue, 14 Nov 2023 23:13:20 +0100"
    assert received["Message-ID"].endswith("@office.example>")
    body = received.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    for fact in (
        "new voicemail in mailbox 2000",
        "From:     2001 (Alice)",
        "Received: 2023-11-14 23:13:20 CET",
        "Length:   0:07",
        "The recording is attached.",
    ):
        assert fact in text
    [attachment] = received.iter_attachments()
    assert attachment.get_content_type() == "audio/wav"
    assert attachment.get_filename() == "voicemail-2000-20231114-231320.wav"
    assert attachment.get_payload(decode=True) == wav.read_bytes()


def test_notice_without_attachment(server: Server, wav: Path) -> None:
    config = SmtpConfig("127.0.0.1", server.port)
    send(config, _message(config, wav, attach=False, caller_name=None, timezone="UTC"))
    received = server.sink.only_message()
    assert received["Subject"] == "New voicemail from 2001 for 2000, 0:07"
    assert list(received.iter_attachments()) == []
    assert received.get_content_type() == "text/plain"
    text = received.get_content()
    assert "Received: 2023-11-14 22:13:20 UTC" in text and "attached" not in text


def test_header_breaking_caller_names_are_cleaned(wav: Path) -> None:
    config = SmtpConfig("smtp.example")
    message = _message(config, wav, caller="", caller_name="Eve\r\nBcc: all@example.com")
    assert (
        message["Subject"]
        == "New voicemail from unknown (Eve  Bcc: all@example.com) for 2000, 0:07"
    )
    assert message["Bcc"] is None


def test_unknown_time_zone_falls_back_to_utc(wav: Path) -> None:
    message = _message(SmtpConfig("smtp.example"), wav, timezone="Mars/Olympus", attach=False)
    assert message["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"


def test_large_or_missing_recording_is_left_out(wav: Path, tmp_path: Path) -> None:
    small = SmtpConfig("smtp.example", max_attachment_bytes=1000)
    message = _message(small, wav)
    assert list(message.iter_attachments()) == []
    assert "too large to attach" in message.get_content()
    gone = _message(SmtpConfig("smtp.example"), tmp_path / "deleted.wav")
    assert list(gone.iter_attachments()) == []
    assert "no longer available" in gone.get_content()


def test_login_with_the_right_password(auth_server: Server, wav: Path) -> None:
    config = SmtpConfig("127.0.0.1", auth_server.port, username="vm", password="s3cret")
    send(config, _message(config, wav))
    assert len(auth_server.sink.envelopes) == 1


def test_login_with_a_wrong_password(auth_server: Server, wav: Path) -> None:
    config = SmtpConfig("127.0.0.1", auth_server.port, username="vm", password="wrong")
    with pytest.raises(EmailError, match=r"refused the login"):
        send(config, _message(config, wav))
    assert auth_server.sink.envelopes == []


def test_starttls_that_the_server_lacks_fails(server: Server, wav: Path) -> None:
    config = SmtpConfig("127.0.0.1", server.port, starttls=True)
    with pytest.raises(EmailError, match=r"does not offer it: STARTTLS"):
        send(config, _message(config, wav))
    assert server.sink.envelopes == []


def test_nobody_listening(wav: Path) -> None:
    config = SmtpConfig("127.0.0.1", _free_port(), timeout=2.0)
    with pytest.raises(EmailError, match=r"cannot talk to SMTP server 127\.0\.0\.1:\d+"):
        send(config, _message(config, wav))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (7.2, "0:07"), (59.6, "1:00"), (125, "2:05"), (3600, "1:00:00"), (-1, "0:00")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": ""}, "host is empty"),
        ({"port": 0}, "port 0"),
        ({"timeout": 0.0}, "timeout"),
        ({"username": "vm"}, "give both or neither"),
    ],
)
def test_config_is_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SmtpConfig(**{"host": "smtp.example", **kwargs})
