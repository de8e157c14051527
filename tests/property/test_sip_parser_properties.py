"""Hypothesis: the parser accepts or raises ParseError, and round-trips what it builds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appliance.sip.errors import ParseError
from appliance.sip.headers import NameAddr, Via
from appliance.sip.message import Request, Response
from appliance.sip.parser import StreamFramer, parse_message
from appliance.sip.uri import Uri

SEED = (
    b"INVITE sip:102@yakyak.local SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP [::1]:5062;branch=z9hG4bK77;rport\r\n"
    b'From: "A \\"b\\"" <sip:101@yakyak.local>;tag=19\r\n'
    b"To: sip:102@yakyak.local\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 1 INVITE\r\n"
    b'Contact: <sip:101@[::1]:5062;transport=udp>;+sip.instance="<urn:uuid:1>"\r\n'
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)

token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+~",
    min_size=1,
    max_size=12,
)
host = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9]{0,5}){0,2}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
port = st.one_of(st.none(), st.integers(1, 65535))
params = st.lists(st.tuples(token, st.one_of(st.none(), token)), max_size=3).map(tuple)
uris = st.builds(
    lambda u, h, p, ps: Uri("sip", u, None, h, p, ps),
    st.one_of(st.none(), token),
    host,
    port,
    params,
)
header_value = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FFF, blacklist_characters="\x7f"),
    min_size=1,
    max_size=30,
)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(token)
    via = Via(draw(st.sampled_from(["UDP", "TCP", "TLS"])), draw(host), draw(port), draw(params))
    frm = NameAddr(draw(uris), draw(st.one_of(st.none(), token)), (("tag", draw(token)),))
    to = NameAddr(draw(uris))
    extra = draw(
        st.lists(
            st.tuples(st.sampled_from(["X-A", "Subject", "User-Agent", "Supported"]), header_value),
            max_size=4,
        )
    )
    headers = (
        ("Via", str(via)),
        ("From", str(frm)),
        ("To", str(to)),
        ("Call-ID", draw(token)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
        *extra,
    )
    return Request(method, draw(uris), headers, draw(st.binary(max_size=40)))


@given(requests())
def test_round_trip(request: Request) -> None:
    assert parse_message(bytes(request)) == request


@given(st.binary(max_size=600))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    try:
        parse_message(data)
    except ParseError:
        pass


@given(st.data())
def test_mutated_messages_parse_or_raise_parse_error(data: st.DataObject) -> None:
    raw = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        choice = data.draw(st.integers(0, 2))
        if choice == 0:
            raw[i] = data.draw(st.integers(0, 255))
        elif choice == 1:
            del raw[i]
        else:
            raw[i:i] = data.draw(
                st.sampled_from([b":", b";", b'"', b"<", b">", b"\r\n", b" ", b",", b"\\", b"["])
            )
    try:
        message = parse_message(bytes(raw))
    except ParseError:
        return
    # Whatever parses must survive the accessors the server uses.
    for accessor in ("top_via", "from_addr", "to_addr", "cseq", "vias"):
        try:
            getattr(message, accessor)()
        except ParseError:
            pass
    if isinstance(message, Request | Response):
        assert parse_message(bytes(message)) == message


@given(st.lists(st.integers(1, 60), min_size=1, max_size=40))
def test_stream_framer_is_chunking_independent(cuts: list[int]) -> None:
    stream = SEED * 3
    framer = StreamFramer()
    frames: list[bytes] = []
    pos = 0
    for cut in cuts:
        frames += framer.feed(stream[pos : pos + cut])
        pos += cut
    frames += framer.feed(stream[pos:])
    assert frames == [SEED] * 3


@given(uris)
def test_uri_fast_path_agrees_with_general_parser(uri: Uri) -> None:
    text = str(uri)
    assert Uri.parse(text) == Uri._parse_general(text) == uri


@given(st.sampled_from(["UDP", "TCP", "TLS"]), host, port, params)
def test_via_fast_path_agrees_with_general_parser(
    transport: str,
    via_host: str,
    via_port: int | None,
    via_params: tuple[tuple[str, str | None], ...],
) -> None:
    text = str(Via(transport, via_host, via_port, via_params))
    assert Via.parse(text) == Via._parse_general(text)


@given(uris, st.one_of(st.none(), token, token.map(lambda t: f'"{t} x"')), params)
def test_name_addr_fast_path_agrees_with_general_parser(
    uri: Uri, display: str | None, addr_params: tuple[tuple[str, str | None], ...]
) -> None:
    text = str(NameAddr(uri, display, addr_params))
    assert NameAddr.parse(text) == NameAddr._parse_general(text)
