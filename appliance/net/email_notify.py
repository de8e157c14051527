"""New-voicemail e-mail: build the message (RFC 5322, MIME RFC 2045-2049) and send it
by SMTP (RFC 5321, STARTTLS RFC 3207, AUTH RFC 4954) with the stdlib.

`send` blocks on the network: run it in a worker thread, never on the event loop.
"""

from __future__ import annotations

import email.utils
import logging
import math
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

logger = logging.getLogger(__name__)

MAX_ATTACHMENT_BYTES: Final = 10 * 1024 * 1024  # common relay limits are 10 to 25 MB
_UTC: Final = ZoneInfo("UTC")


class EmailError(Exception):
    """The notice could not be handed to the SMTP server; the message says why."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = "yakyak@localhost"
    timeout: float = 10.0  # seconds per socket operation
    # A larger recording is left out (the body says so): relays refuse big mail.
    max_attachment_bytes: int = MAX_ATTACHMENT_BYTES

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("SMTP host is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port {self.port} is not between 1 and 65535")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(
                f"SMTP timeout must be a positive number of seconds, not {self.timeout}"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("SMTP username and password go together: give both or neither")


def format_duration(seconds: float) -> str:
    """0:07, 2:05, 1:00:00: how a phone display shows call lengths."""
    total = max(0, round(seconds)) if math.isfinite(seconds) else 0
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _clean(text: str) -> str:
    # Caller names come from SIP headers: a CR or LF would break the Subject header
    # (email refuses it), other control characters only garble the mail.
    return "".join(c if c.isprintable() else " " for c in text).strip()


def _caller_text(caller: str, caller_name: str | None) -> str:
    number = _clean(caller) or "unknown"
    name = _clean(caller_name or "")
    return f"{number} ({name})" if name and name != number else number


def _local_time(received_at: float, timezone: str) -> datetime:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r: dating the voicemail e-mail in UTC", timezone)
        zone = _UTC
    return datetime.fromtimestamp(received_at, zone)


def build_message(
    config: SmtpConfig,
    to: str,
    mailbox: str,
    caller: str,
    caller_name: str | None,
    received_at: float,
    duration: float,
    wav_path: Path | str,
    attach: bool,
    timezone: str,
) -> EmailMessage:
    """The notice of one new message to mailbox `mailbox`, for address `to`.

    With `attach`, the recording goes along as audio/wav, unless the file is over
    `config.max_attachment_bytes` or gone (the body then says so).
    """
    who = _caller_text(caller, caller_name)
    length = format_duration(duration)
    when = _local_time(received_at, timezone)
    message = EmailMessage()
    message["Subject"] = f"New voicemail from {who} for {mailbox}, {length}"
    message["From"] = config.sender
    message["To"] = to
    message["Date"] = email.utils.format_datetime(when)
    # A domain of our own: make_msgid would otherwise look up this host's FQDN.
    message["Message-ID"] = email.utils.make_msgid(
        "voicemail", domain=config.sender.rpartition("@")[2] or "localhost"
    )
    data: bytes | None = None
    note = ""
    if attach:
        path = Path(wav_path)
        try:
            size = path.stat().st_size
            if size > config.max_attachment_bytes:
                note = f"The recording ({size} bytes) is too large to attach."
            else:
                data = path.read_bytes()
                note = "The recording is attached."
        except FileNotFoundError:
            note = "The recording is no longer available (deleted before this e-mail)."
    lines = [
        f"You have a new voicemail in mailbox {mailbox}.",
        "",
        f"From:     {who}",
        f"Received: {when:%Y-%m-%d %H:%M:%S} {when.tzname()}",
        f"Length:   {length}",
    ]
    if note:
        lines += ["", note]
    message.set_content("\n".join(lines) + "\n")
    if data is not None:
        stamp = f"{when:%Y%m%d-%H%M%S}"
        message.add_attachment(
            data, maintype="audio", subtype="wav", filename=f"voicemail-{mailbox}-{stamp}.wav"
        )
    return message


def send(config: SmtpConfig, message: EmailMessage) -> None:
    """Hand `message` to the SMTP server; `EmailError` if it did not take every recipient."""
    where = f"{config.host}:{config.port}"
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username is not None and config.password is not None:
                smtp.login(config.username, config.password)
            refused = smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise EmailError(f"SMTP server {where} refused the login: {exc.smtp_error!r}") from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise EmailError(f"SMTP server {where} does not offer it: {exc}") from exc
    except smtplib.SMTPException as exc:
        raise EmailError(f"SMTP server {where} refused the e-mail: {exc}") from exc
    except OSError as exc:  # refused, unreachable, timed out, TLS handshake failed
        raise EmailError(f"cannot talk to SMTP server {where}: {exc}") from exc
    if refused:
        raise EmailError(f"SMTP server {where} refused recipients: {', '.join(sorted(refused))}")
