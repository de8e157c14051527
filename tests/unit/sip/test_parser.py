"""Parser and message model: RFC 3261 §7 syntax, the torture cases that matter."""

from __future__ import annotations

import pytest

from appliance.sip.errors import ParseError
from appliance.sip.headers import CSeq, NameAddr, Via
from appliance.sip.message import Request, Response, make_response
from appliance.sip.parser import Limits, StreamFramer, parse_message
from appliance.sip.uri import Uri

REGISTER = (
    b"REGISTER sip:yakyak.local SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:101@yakyak.local>;tag=1928301774\r\n'
    b"To: <sip:101@yakyak.local>\r\n"
    b"Call-ID: a84b4c76e66710@pc33\r\n"
    b"CSeq: 314159 REGISTER\r\n"
    b"Contact: <sip:101@192.0.2.7:5062>;expires=3600\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_parses_a_register() -> None:
    m = parse_message(REGISTER)
    assert isinstance(m, Request)
    assert m.method == "REGISTER"
    assert m.uri == Uri("sip", host="yakyak.local")
    assert m.call_id == "a84b4c76e66710@pc33"
    assert m.cseq() == CSeq(314159, "REGISTER")
    assert m.from_addr().display_name == "Alice"
    assert m.from_addr().tag == "1928301774"
    assert m.top_via().branch == "z9hG4bK776asdhds"
    assert m.top_via().param("rport") == ""
    assert m.get("content-length") is None  # framing is not kept
    assert parse_message(bytes(m)) == m


def test_compact_forms_folding_and_case() -> None:
    raw = (
        b"OPTIONS sip:101@[2001:db8::1]:5060;transport=tcp SIP/2.0\r\n"
        b"v: SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bK1\r\n"
        b"f: sip:a@b;tag=x\r\nt: sip:101@yakyak.local\r\ni: abc\r\n"
        b"cseq: 7 OPTIONS\r\n"
        b"subject: I know you're there,\r\n pick up the phone\r\n\tand talk to me!\r\n"
        b"X-Custom-Thing: kept\r\n"
        b"l: 0\r\n\r\n"
    )
    m = parse_message(raw)
    assert isinstance(m, Request)
    assert m.uri.host == "[2001:db8::1]" and m.uri.port == 5060
    assert m.uri.param("TRANSPORT") == "tcp"
    assert m.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    assert m.get("x-custom-thing") == "kept"
    assert m.top_via() == Via("TCP", "[2001:db8::9]", 5070, (("branch", "z9hG4bK1"),))
    assert m.from_addr() == NameAddr(Uri("sip", "a", host="b"), None, (("tag", "x"),), False)
    assert [name for name, _ in m.headers][:5] == ["Via", "From", "To", "Call-ID", "CSeq"]


def test_multiple_values_per_header() -> None:
    raw = REGISTER.replace(
        b"Max-Forwards: 70\r\n",
        b"Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKa, "
        b"SIP/2.0/TCP [::1]:5061;branch=z9hG4bKb\r\n"
        b'Contact: "x, y" <sip:a@b>, <sip:c@d;lr>;q=0.5\r\n',
    ).replace(b"Contact: <sip:101@192.0.2.7:5062>;expires=3600\r\n", b"")
    m = parse_message(raw)
    assert [v.host for v in m.vias()] == ["192.0.2.7", "proxy.example", "[::1]"]
    contacts = [NameAddr.parse(c) for c in m.get_all("Contact")]
    assert contacts[0].display_name == "x, y"
    assert contacts[1].param("q") == "0.5"


def test_quoted_display_name_with_escapes() -> None:
    addr = NameAddr.parse(r'"A \"quoted\" \\ name" <sip:101@h>;tag=9')
    assert addr.display_name == 'A "quoted" \\ name'
    assert NameAddr.parse(str(addr)) == addr


def test_body_by_content_length_and_extra_bytes_dropped() -> None:
    raw = REGISTER.replace(b"Content-Length: 0", b"Content-Type: text/plain\r\nContent-Length: 5")
    m = parse_message(raw + b"helloEXTRA")
    assert m.body == b"hello"


@pytest.mark.parametrize(
    ("raw", "status", "reason"),
    [
        (REGISTER.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505, "SIP version"),
        (REGISTER.replace(b"CSeq: 314159 REGISTER", b"CSeq: 314159 INVITE"), 400, "CSeq method"),
        (REGISTER.replace(b"Call-ID: a84b4c76e66710@pc33\r\n", b""), 400, "missing Call-ID"),
        (REGISTER.replace(b"CSeq: 314159", b"CSeq: x"), 400, "bad CSeq"),
        (REGISTER.replace(b"Content-Length: 0", b"Content-Length: 10"), 400, "shorter"),
        (REGISTER.replace(b"Content-Length: 0", b"Content-Length: -1"), 400, "Content-Length"),
        (REGISTER.replace(b"Max-Forwards: 70", b"Max-Forwards 70"), 400, "colon"),
        (REGISTER.replace(b"Max-Forwards: 70", b"Call-ID: twice"), 400, "more than one"),
        (REGISTER.replace(b"sip:yakyak.local", b"sip:bad host"), 400, "request line"),
        (b"\xff\xfe garbage\r\n\r\n", 400, "UTF-8"),
        (b"no blank line", 400, "empty line"),
    ],
)
def test_rejections_say_why(raw: bytes, status: int, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(raw)
    assert info.value.status == status
    assert reason in info.value.reason


def test_rejection_keeps_headers_for_an_answer() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(REGISTER.replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1))
    assert ("Call-ID", "a84b4c76e66710@pc33") in info.value.headers


def test_limits() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(REGISTER, Limits(max_message=100))
    assert info.value.status == 513
    many = REGISTER.replace(b"Max-Forwards: 70\r\n", b"X-A: 1\r\n" * 200)
    with pytest.raises(ParseError):
        parse_message(many)


def test_response_round_trip_and_make_response() -> None:
    request = parse_message(REGISTER)
    assert isinstance(request, Request)
    response = make_response(
        request, 401, extra=[("WWW-Authenticate", 'Digest realm="x"')], to_tag="t1"
    )
    assert response.reason == "Unauthorized"
    assert response.to_addr().tag == "t1"
    again = parse_message(bytes(response))
    assert isinstance(again, Response) and again == response
    # A To that already has a tag keeps it.
    in_dialog = parse_message(
        REGISTER.replace(b"To: <sip:101@yakyak.local>", b"To: <sip:101@h>;tag=old")
    )
    assert isinstance(in_dialog, Request)
    assert make_response(in_dialog, 200, to_tag="new").to_addr().tag == "old"


def test_leading_crlf_and_bare_lf_tolerated() -> None:
    m = parse_message(b"\r\n\r\n" + REGISTER)
    assert isinstance(m, Request)
    bare = parse_message(REGISTER.replace(b"\r\n", b"\n"))
    assert bare == m


def test_stream_framer_cuts_by_content_length() -> None:
    body_msg = REGISTER.replace(b"Content-Length: 0", b"Content-Length: 3") + b"abc"
    stream = b"\r\n\r\n" + REGISTER + body_msg + REGISTER[:50]
    framer = StreamFramer()
    frames = [f for i in range(0, len(stream), 7) for f in framer.feed(stream[i : i + 7])]
    assert frames == [REGISTER, body_msg]
    assert framer.pings == 1


def test_stream_framer_needs_content_length() -> None:
    framer = StreamFramer()
    with pytest.raises(ParseError):
        framer.feed(REGISTER.replace(b"Content-Length: 0\r\n", b""))


def test_uri_forms() -> None:
    uri = Uri.parse("sips:alice:secret@Example.COM:5061;transport=tls;lr?subject=hi")
    assert (uri.user, uri.password, uri.port, uri.headers) == (
        "alice",
        "secret",
        5061,
        "subject=hi",
    )
    assert uri.host_key() == "example.com"
    assert str(uri) == "sips:alice:secret@Example.COM:5061;transport=tls;lr?subject=hi"
    assert Uri.parse("tel:+1-555-0100").opaque == "+1-555-0100"
    for bad in ("sip:", "sip:a@", "sip:[::1", "sip:host:99999", "nocolon", "sip:a b@c"):
        with pytest.raises(ParseError):
            Uri.parse(bad)
