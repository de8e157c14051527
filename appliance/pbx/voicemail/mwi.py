"""The ``application/simple-message-summary`` body of message-waiting NOTIFYs (RFC 3842).

RFC 3842 §5.2 grammar, of which this module writes and reads the voice part::

    message-summary  = msg-status-line CRLF [msg-account CRLF]
                       [*(msg-summary-line CRLF)] [ *opt-msg-headers ]
    msg-status-line  = "Messages-Waiting" HCOLON msg-status      ; "yes" / "no"
    msg-account      = "Message-Account" HCOLON Account-URI
    msg-summary-line = message-context-class HCOLON newmsgs SLASH oldmsgs
                       [ LPAREN new-urgentmsgs SLASH old-urgentmsgs RPAREN ]
    opt-msg-headers  = CRLF 1*(extension-header CRLF)
    msgcount         = 1*DIGIT  ; MUST NOT exceed 2^32-1

Reading is lenient where phones differ (RFC 3261 §7.3.1 header-name case, spaces
around ``:`` and ``/``, bare LF line ends, folded lines, no urgent counts, other
message-context-classes and stray header lines, which are skipped), and strict where a
value would be guessed: a bad ``Messages-Waiting`` or ``Voice-Message`` value, a
repeated one, a missing status line or a line that is no header at all is a
``ValueError``. Whatever follows the first empty line (the per-message headers of
§5.2's opt-msg-headers) is not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from appliance.pbx.app_events import MailboxView, MessageStatus

MAX_COUNT: Final = 2**32 - 1  # RFC 3842 §5.2 msgcount
MAX_BODY_CHARS: Final = 65_536
MAX_SUMMARY_LINES: Final = 64
_LINE_END: Final = re.compile(r"\r\n|\n|\r")
_HEADER: Final = re.compile(r"([A-Za-z0-9.!%*_+`'~-]+)[ \t]*:[ \t]*(.*?)[ \t]*")  # RFC 3261 token
_COUNTS: Final = re.compile(
    r"([0-9]{1,10})[ \t]*/[ \t]*([0-9]{1,10})"
    r"(?:[ \t]*\([ \t]*([0-9]{1,10})[ \t]*/[ \t]*([0-9]{1,10})[ \t]*\))?"
)
_URI: Final = re.compile(r"[^\x00-\x20\x7f]+")  # no space or control: one header value


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """Voice messages waiting in one account; ``account`` is the whole Account-URI
    (``sip:201@pbx.example``), or None to leave Message-Account out."""

    waiting: bool
    new: int
    old: int
    urgent_new: int = 0
    urgent_old: int = 0
    account: str | None = None

    def __post_init__(self) -> None:
        for name in ("new", "old", "urgent_new", "urgent_old"):
            count = getattr(self, name)
            if not 0 <= count <= MAX_COUNT:
                raise ValueError(f"{name} count {count} outside 0..{MAX_COUNT}")
        if self.account is not None and not _URI.fullmatch(self.account):
            raise ValueError(f"Message-Account {self.account!r} is not one URI")


def summarize(view: MailboxView, account: str | None = None) -> MessageSummary:
    """The summary of a loaded mailbox: NEW counts as new, READ and SAVED as old."""
    new = [m for m in view.messages if m.status is MessageStatus.NEW]
    old = [m for m in view.messages if m.status in (MessageStatus.READ, MessageStatus.SAVED)]
    return MessageSummary(
        waiting=bool(new),
        new=len(new),
        old=len(old),
        urgent_new=sum(1 for m in new if m.urgent),
        urgent_old=sum(1 for m in old if m.urgent),
        account=account,
    )


def format_summary(summary: MessageSummary) -> str:
    """The body text, CRLF line ends; urgent counts are always written."""
    lines = [f"Messages-Waiting: {'yes' if summary.waiting else 'no'}"]
    if summary.account is not None:
        lines.append(f"Message-Account: {summary.account}")
    lines.append(
        f"Voice-Message: {summary.new}/{summary.old} ({summary.urgent_new}/{summary.urgent_old})"
    )
    return "".join(line + "\r\n" for line in lines)


def parse_summary(text: str) -> MessageSummary:
    """Read a body; ValueError if it is not one (see the module docstring)."""
    if len(text) > MAX_BODY_CHARS:
        raise ValueError(f"message summary longer than {MAX_BODY_CHARS} characters")
    waiting: bool | None = None
    account: str | None = None
    counts: tuple[int, int, int, int] | None = None
    seen: set[str] = set()
    for line in _summary_lines(text):
        header = _HEADER.fullmatch(line)
        if header is None:
            raise ValueError(f"not a header line: {line[:40]!r}")
        name, value = header.group(1).lower(), header.group(2)
        if name in seen:
            raise ValueError(f"{header.group(1)} given twice")
        seen.add(name)
        if name == "messages-waiting":
            waiting = _status(value)
        elif name == "message-account":
            account = value
        elif name == "voice-message":
            counts = _counts(value)
    if waiting is None:
        raise ValueError("no Messages-Waiting line")
    new, old, urgent_new, urgent_old = counts if counts is not None else (0, 0, 0, 0)
    return MessageSummary(waiting, new, old, urgent_new, urgent_old, account)


def _summary_lines(text: str) -> Iterable[str]:
    """The unfolded lines before the first empty one (leading empty lines skipped)."""
    lines: list[str] = []
    for raw in _LINE_END.split(text):
        if not raw.strip(" \t"):
            if lines:
                break  # opt-msg-headers follow
            continue
        if raw[0] in " \t":
            if not lines:
                raise ValueError("body starts with a continuation line")
            lines[-1] += " " + raw.strip(" \t")  # RFC 3261 §7.3.1 folding
            continue
        if len(lines) == MAX_SUMMARY_LINES:
            raise ValueError(f"more than {MAX_SUMMARY_LINES} summary lines")
        lines.append(raw)
    return lines


def _status(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("yes", "no"):
        raise ValueError(f"Messages-Waiting is {value[:20]!r}, not yes or no")
    return lowered == "yes"


def _counts(value: str) -> tuple[int, int, int, int]:
    match = _COUNTS.fullmatch(value)
    if match is None:
        raise ValueError(f"Voice-Message {value[:40]!r} is not new/old (urgent/urgent)")
    new, old, urgent_new, urgent_old = (int(g) if g is not None else 0 for g in match.groups())
    return new, old, urgent_new, urgent_old
