"""RFC 3842 message-summary bodies: exact text out, lenient but bounded reading in."""

from __future__ import annotations

import pytest

from appliance.pbx.app_events import MailboxView, MessageInfo, MessageStatus, Recording
from appliance.pbx.voicemail.mwi import (
    MAX_BODY_CHARS,
    MAX_COUNT,
    MAX_SUMMARY_LINES,
    MessageSummary,
    format_summary,
    parse_summary,
    summarize,
)

# The body of RFC 3842's NOTIFY examples (§3.5, §4.1), lines ending in CRLF.
RFC_BODY = (
    "Messages-Waiting: yes\r\n"
    "Message-Account: sip:alice@vmail.example.com\r\n"
    "Voice-Message: 4/8 (1/2)\r\n"
)
# The same with per-message headers after an empty line (§5.2 opt-msg-headers).
RFC_BODY_WITH_HEADERS = (
    RFC_BODY + "\r\n"
    "To: <alice@atlanta.example.com>\r\n"
    "From: <bob@biloxi.example.com>\r\n"
    "Subject: carpool tomorrow?\r\n"
    "Date: Sun, 09 May 2004 21:04:09 +0200\r\n"
    "Priority: normal\r\n"
    "Message-ID: 13784434989@vmail.example.com\r\n"
)


def test_format_exact_text() -> None:
    summary = MessageSummary(True, 2, 8, 0, 2, account="sip:alice@vmail.example.com")
    assert format_summary(summary) == (
        "Messages-Waiting: yes\r\n"
        "Message-Account: sip:alice@vmail.example.com\r\n"
        "Voice-Message: 2/8 (0/2)\r\n"
    )


def test_format_without_account() -> None:
    assert format_summary(MessageSummary(False, 0, 3)) == (
        "Messages-Waiting: no\r\nVoice-Message: 0/3 (0/0)\r\n"
    )


def test_parse_rfc_example() -> None:
    assert parse_summary(RFC_BODY) == MessageSummary(
        True, 4, 8, 1, 2, account="sip:alice@vmail.example.com"
    )


def test_parse_rfc_example_with_message_headers() -> None:
    assert parse_summary(RFC_BODY_WITH_HEADERS) == parse_summary(RFC_BODY)


def test_format_of_the_rfc_example_gives_it_back() -> None:
    assert format_summary(parse_summary(RFC_BODY)) == RFC_BODY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("messages-waiting :YES\nvoice-message:  3 / 4\n", MessageSummary(True, 3, 4)),
        ("Messages-Waiting: no\r\n", MessageSummary(False, 0, 0)),
        ("Messages-Waiting:no", MessageSummary(False, 0, 0)),  # no final CRLF
        ("\r\nMessages-Waiting: yes\r\nVoice-Message: 1/0\r\n", MessageSummary(True, 1, 0)),
        ("Messages-Waiting: yes\rVoice-Message: 1/0 ( 1 / 0 )\r", MessageSummary(True, 1, 0, 1)),
        (
            "Messages-Waiting: yes\r\nFax-Message: 9/9\r\nVoice-Message: 2/0\r\n",
            MessageSummary(True, 2, 0),
        ),
        (
            "Messages-Waiting: yes\r\nVoice-Message:\r\n 5/6\r\n",  # folded
            MessageSummary(True, 5, 6),
        ),
        (
            "Voice-Message: 1/1 (0/0)\r\nMessages-Waiting: yes\r\n",  # order not enforced
            MessageSummary(True, 1, 1),
        ),
        (
            "Messages-Waiting: yes\r\nMessage-Account: sip:*97@192.0.2.1\r\n"
            "Voice-Message: 1/0 (0/0)\r\n",  # as Asterisk writes it
            MessageSummary(True, 1, 0, account="sip:*97@192.0.2.1"),
        ),
        (
            f"Messages-Waiting: yes\r\nVoice-Message: {MAX_COUNT}/0\r\n",
            MessageSummary(True, MAX_COUNT, 0),
        ),
    ],
)
def test_parse_is_lenient_where_phones_differ(text: str, expected: MessageSummary) -> None:
    assert parse_summary(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\r\n\r\n",
        "hello",
        "Messages-Waiting: maybe\r\n",
        "Voice-Message: 1/2\r\n",  # no status line
        "Messages-Waiting: yes\r\nVoice-Message: a/b\r\n",
        "Messages-Waiting: yes\r\nVoice-Message: 1/2 (3)\r\n",
        "Messages-Waiting: yes\r\nVoice-Message: 1/2 (3/4\r\n",
        "Messages-Waiting: yes\r\nVoice-Message: -1/2\r\n",
        "Messages-Waiting: yes\r\nVoice-Message: ١/2\r\n",  # digits, but not ASCII ones
        f"Messages-Waiting: yes\r\nVoice-Message: {MAX_COUNT + 1}/0\r\n",
        "Messages-Waiting: yes\r\nVoice-Message: 12345678901/0\r\n",
        "Messages-Waiting: yes\r\nMessages-Waiting: no\r\n",
        "Messages-Waiting: yes\r\nvoice-message: 1/0\r\nVoice-Message: 2/0\r\n",
        "Messages-Waiting: yes\r\nMessage-Account:\r\n",
        "Messages-Waiting: yes\r\nMessage-Account: sip:a b@c\r\n",
        "Messages-Waiting: yes\r\nno colon here\r\n",
        " Messages-Waiting: yes\r\n",  # a continuation with nothing to continue
        "Messages-Waiting: yes\r\n" + "X-Extra: 1\r\n" * MAX_SUMMARY_LINES,
        "Messages-Waiting: yes\r\n" + " " * MAX_BODY_CHARS,
    ],
)
def test_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_summary(text)


def test_headers_after_the_empty_line_are_not_read() -> None:
    text = "Messages-Waiting: no\r\n\r\nVoice-Message: garbage\r\nno colon\r\n"
    assert parse_summary(text) == MessageSummary(False, 0, 0)


@pytest.mark.parametrize(
    "fields",
    [
        {"new": -1},
        {"old": MAX_COUNT + 1},
        {"urgent_new": -2},
        {"account": ""},
        {"account": "sip:a@b\r\nX: y"},
    ],
)
def test_summary_values_are_checked(fields: dict[str, object]) -> None:
    values: dict[str, object] = {"waiting": True, "new": 1, "old": 0, **fields}
    with pytest.raises(ValueError):
        MessageSummary(**values)  # type: ignore[arg-type]  # wrong values on purpose


def test_summarize_a_mailbox() -> None:
    def message(i: int, status: MessageStatus, urgent: bool = False) -> MessageInfo:
        return MessageInfo(i, "0301", None, 0.0, 3.0, status, urgent, Recording(f"/m/{i}"))

    view = MailboxView(
        number="201",
        name=None,
        language="en",
        max_message_seconds=60.0,
        max_messages=10,
        messages=(
            message(1, MessageStatus.NEW, urgent=True),
            message(2, MessageStatus.NEW),
            message(3, MessageStatus.READ, urgent=True),
            message(4, MessageStatus.SAVED),
            message(5, MessageStatus.DELETED, urgent=True),
        ),
    )
    assert summarize(view, "sip:201@pbx.example") == MessageSummary(
        True, 2, 2, 1, 1, account="sip:201@pbx.example"
    )
    empty = MailboxView("202", None, "en", 60.0, 10)
    assert summarize(empty) == MessageSummary(False, 0, 0)
