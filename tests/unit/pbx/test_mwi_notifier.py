"""Message waiting (RFC 3842 over RFC 6665): the sans-IO notifier."""

from __future__ import annotations

import random

from appliance.pbx.location import Binding
from appliance.pbx.mwi_notifier import MIN_EXPIRES, MwiNotifier
from appliance.pbx.voicemail.mwi import parse_summary
from appliance.sip.message import Request, Response, make_response
from appliance.sip.parser import parse_message
from appliance.sip.transaction import Send, TimerConfig, TransactionLayer, client_key
from appliance.sip.transport import Peer

PHONE = Peer("udp", "192.0.2.21", 5062)
PBX = ("192.0.2.1", 5060)
DOMAIN = "yakyak.local"


def notifier() -> MwiNotifier:
    layer = TransactionLayer(TimerConfig(), random.Random(1))
    return MwiNotifier(layer, lambda peer: PBX, random.Random(2), DOMAIN)


def subscribe(
    box: str = "102",
    target: str = "",
    expires: int | None = 600,
    event: str = "message-summary",
    to_tag: str = "",
    cseq: int = 1,
    branch: str = "z9hG4bKsub1",
) -> Request:
    tag = f";tag={to_tag}" if to_tag else ""
    expires_line = f"Expires: {expires}\r\n" if expires is not None else ""
    text = (
        f"SUBSCRIBE {target or f'sip:{box}@{DOMAIN}'} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {PHONE.host}:{PHONE.port};branch={branch}\r\n"
        f"From: <sip:102@{DOMAIN}>;tag=phone1\r\nTo: <sip:{box}@{DOMAIN}>{tag}\r\n"
        f"Call-ID: mwi-1@phone\r\nCSeq: {cseq} SUBSCRIBE\r\n"
        f"Contact: <sip:102@{PHONE.host}:{PHONE.port}>\r\nEvent: {event}\r\n"
        f"{expires_line}Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def notifies(actions: list[object]) -> list[Request]:
    sent = [a.message for a in actions if isinstance(a, Send)]
    return [m for m in sent if isinstance(m, Request) and m.method == "NOTIFY"]


def test_subscribe_gets_200_then_a_notify_with_the_counts() -> None:
    mwi = notifier()
    mwi.set_counts("102", 2, 5)
    answer = mwi.subscribe(subscribe(), PHONE, "102", 0.0)
    assert answer.response.status == 200
    assert answer.response.get("Expires") == "600"
    assert answer.response.to_addr().tag
    (notify,) = notifies(answer.actions)
    assert notify.get("Event") == "message-summary"
    assert notify.get("Subscription-State") == "active;expires=600"
    assert notify.get("Content-Type") == "application/simple-message-summary"
    assert notify.call_id == "mwi-1@phone"
    assert notify.to_addr().tag == "phone1"  # in the dialog the SUBSCRIBE made
    summary = parse_summary(notify.body.decode())
    assert (summary.waiting, summary.new, summary.old) == (True, 2, 5)
    assert summary.account == f"sip:102@{DOMAIN}"
    assert len(mwi) == 1


def test_only_message_summary_and_only_the_own_mailbox() -> None:
    mwi = notifier()
    bad_event = mwi.subscribe(subscribe(event="presence"), PHONE, "102", 0.0)
    assert bad_event.response.status == 489
    assert bad_event.response.get("Allow-Events") == "message-summary"
    other = mwi.subscribe(subscribe(box="101"), PHONE, "102", 0.0)
    assert other.response.status == 403
    short = mwi.subscribe(subscribe(expires=MIN_EXPIRES - 1), PHONE, "102", 0.0)
    assert short.response.status == 423 and short.response.get("Min-Expires") == str(MIN_EXPIRES)
    assert len(mwi) == 0 and not (bad_event.actions or other.actions or short.actions)


def test_a_mailbox_change_notifies_the_subscription_not_the_contacts() -> None:
    mwi = notifier()
    mwi.set_counts("102", 0, 0)
    mwi.subscribe(subscribe(), PHONE, "102", 0.0)
    binding = Binding("102", f"sip:102@{PHONE.host}:{PHONE.port}", 9e9, "c", 1)
    (notify,) = notifies(mwi.mailbox_changed("102", 1, 0, [binding], 10.0))
    assert notify.to_addr().tag == "phone1"
    assert "Voice-Message: 1/0" in notify.body.decode()
    assert notify.get("Subscription-State") == "active;expires=590"
    assert not notifies(mwi.mailbox_changed("101", 1, 0, [], 10.0))


def test_phones_that_do_not_subscribe_get_an_unsolicited_notify() -> None:
    mwi = notifier()
    binding = Binding(
        "102", "sip:102@192.0.2.30:5070", 9e9, "c", 1, source_host="198.51.100.7", source_port=4000
    )
    actions = mwi.mailbox_changed("102", 3, 1, [binding], 0.0)
    (send,) = [a for a in actions if isinstance(a, Send)]
    assert (send.peer.host, send.peer.port) == ("198.51.100.7", 4000)  # where it registered from
    notify = send.message
    assert isinstance(notify, Request) and notify.method == "NOTIFY"
    assert str(notify.uri) == "sip:102@192.0.2.30:5070"
    assert notify.get("Subscription-State") == "active"
    assert "Voice-Message: 3/1" in notify.body.decode()
    assert notifies(mwi.unsolicited("102", binding, 0.0, only_waiting=False))
    mwi.set_counts("102", 0, 4)
    assert mwi.unsolicited("102", binding, 0.0, only_waiting=True) == []


def test_refresh_unsubscribe_and_expiry() -> None:
    mwi = notifier()
    mwi.set_counts("102", 1, 0)
    first = mwi.subscribe(subscribe(), PHONE, "102", 0.0)
    tag = first.response.to_addr().tag or ""
    ours = first.response.get("Contact") or ""
    assert ours.startswith("<sip:yakyak@")
    to_us = ours.strip("<>")  # a refresh goes to our Contact, not to the mailbox
    refresh = mwi.subscribe(
        subscribe(target=to_us, to_tag=tag, cseq=2, branch="z9hG4bKsub2"), PHONE, "102", 300.0
    )
    assert refresh.response.status == 200 and len(notifies(refresh.actions)) == 1
    assert mwi.next_deadline() == 900.0
    end = mwi.subscribe(
        subscribe(to_tag=tag, cseq=3, expires=0, branch="z9hG4bKsub3"), PHONE, "102", 400.0
    )
    (last,) = notifies(end.actions)
    assert last.get("Subscription-State") or "".startswith("terminated")
    assert len(mwi) == 0
    unknown = mwi.subscribe(subscribe(to_tag="nope", cseq=5), PHONE, "102", 500.0)
    assert unknown.response.status == 481

    mwi.subscribe(subscribe(branch="z9hG4bKsub5"), PHONE, "102", 1000.0)
    assert mwi.next_deadline() == 1600.0
    (expired,) = notifies(mwi.handle_timer(1600.0))
    assert expired.get("Subscription-State") or "".startswith("terminated")
    assert len(mwi) == 0 and mwi.next_deadline() is None


def test_a_481_to_our_notify_ends_the_subscription() -> None:
    mwi = notifier()
    mwi.set_counts("102", 0, 0)
    answer = mwi.subscribe(subscribe(), PHONE, "102", 0.0)
    (notify,) = notifies(answer.actions)
    key = client_key(notify)
    assert mwi.owns(key)
    gone: Response = make_response(notify, 481, None, [])
    mwi.response(key, gone)
    assert len(mwi) == 0 and not mwi.owns(key)
