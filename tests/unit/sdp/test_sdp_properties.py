"""Hypothesis: SDP parse accepts or raises ParseError, and what it builds round-trips."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appliance.sdp.negotiate import LocalMedia, apply_answer, make_answer, make_offer, new_origin
from appliance.sdp.session import (
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
    parse,
)
from appliance.sip.errors import ParseError

SEEDS = (
    "v=0\r\no=- 1725614473 3089301735 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\n"
    "t=0 0\r\nm=audio 10300 RTP/AVP 116 0 8 101\r\nb=AS:64\r\na=rtpmap:116 opus/48000/2\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\na=rtcp:10301\r\na=sendrecv\r\na=ptime:20\r\n",
    "v=0\r\no=alice 3207 1792 IN IP4 192.168.1.31\r\ns=Talk\r\nc=IN IP4 192.168.1.31\r\n"
    "t=0 0\r\nm=audio 7078 RTP/AVP 96 0 8 100\r\na=rtpmap:96 opus/48000/2\r\n"
    "a=rtpmap:100 telephone-event/8000\r\na=rtcp-mux\r\nm=video 9078 RTP/AVP 96\r\n"
    "a=rtpmap:96 VP8/90000\r\n",
    "v=0\r\no=- 20518 0 IN IP6 2001:db8::10\r\ns=-\r\nc=IN IP6 2001:db8::10\r\nt=0 0\r\n"
    "a=sendonly\r\nm=audio 49170 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n",
)
LOCAL = LocalMedia("203.0.113.5", 40000)
ORIGIN = new_origin(1, "203.0.113.5")


def exercise(text: str | bytes) -> None:
    """Parse; if it parses, round-trip it and run every helper and the negotiator."""
    try:
        s = parse(text)
    except ParseError:
        return
    assert parse(str(s)) == s
    assert parse(bytes(s)) == s
    _ = s.direction
    for m in s.media:
        m.rtpmaps(), m.direction(s), m.ptime, m.rtcp_port, m.rtcp_mux, m.fmtp(101)
        m.effective_connection(s)
    try:
        make_answer(s, LOCAL, ORIGIN)
    except ParseError:
        pass
    try:
        apply_answer(make_offer(LOCAL, ORIGIN), s)
    except ParseError:
        pass


@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    exercise(text)


@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    exercise(data)


@given(st.sampled_from(SEEDS), st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_arbitrary_lines_after_a_valid_head(seed: str, lines: list[str]) -> None:
    exercise(seed + "\r\n".join(lines))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SEEDS)).split("\r\n")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "edit", "insert"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "edit" and lines[i]:
            k = draw(st.integers(0, len(lines[i]) - 1))
            ch = draw(st.characters(codec="utf-8"))
            lines[i] = lines[i][:k] + ch + lines[i][k + 1 :]
        else:
            lines.insert(i, draw(st.text(max_size=20)))
        if not lines:
            lines = [""]
    return "\r\n".join(lines)


@given(mutated())
def test_mutated_captures(text: str) -> None:
    exercise(text)
    exercise(text.encode("utf-8", "surrogatepass"))


TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+~/:#",
    min_size=1,
    max_size=10,
)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\0"), max_size=20)
ATTR_NAME = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\0:"), min_size=1, max_size=10
)
ATTRS = st.lists(st.tuples(ATTR_NAME, st.none() | TEXT), max_size=4).map(tuple)
OPT_TEXT = st.none() | TEXT
UINT = st.integers(0, 2**64)
CONN = st.builds(Connection, TOKEN, TOKEN, TOKEN)
BWS = st.lists(st.builds(Bandwidth, TOKEN.filter(lambda t: ":" not in t), UINT), max_size=2).map(
    tuple
)


@st.composite
def descriptions(draw: st.DrawFn) -> SessionDescription:
    session_conn = draw(st.none() | CONN)
    media = []
    for _ in range(draw(st.integers(0, 3))):
        port = draw(st.integers(0, 65535))
        conn = draw(CONN if session_conn is None and port != 0 else st.none() | CONN)
        media.append(
            MediaDescription(
                media=draw(TOKEN),
                port=port,
                proto=draw(TOKEN),
                formats=tuple(draw(st.lists(TOKEN, min_size=1, max_size=4))),
                port_count=draw(st.none() | st.integers(0, 65535)),
                title=draw(OPT_TEXT),
                connection=conn,
                bandwidths=draw(BWS),
                key=draw(OPT_TEXT),
                attributes=draw(ATTRS),
            )
        )
    timing = draw(
        st.lists(
            st.builds(Timing, UINT, UINT, st.lists(TEXT, max_size=2).map(tuple)),
            min_size=1,
            max_size=2,
        ).map(tuple)
    )
    return SessionDescription(
        origin=draw(st.builds(Origin, TOKEN, TOKEN, UINT, TOKEN, TOKEN, TOKEN)),
        name=draw(TEXT),
        information=draw(OPT_TEXT),
        uri=draw(OPT_TEXT),
        emails=tuple(draw(st.lists(TEXT, max_size=2))),
        phones=tuple(draw(st.lists(TEXT, max_size=2))),
        connection=session_conn,
        bandwidths=draw(BWS),
        timing=timing,
        zone=draw(OPT_TEXT),
        key=draw(OPT_TEXT),
        attributes=draw(ATTRS),
        media=tuple(media),
    )


@given(descriptions())
def test_generated_descriptions_round_trip(s: SessionDescription) -> None:
    assert parse(str(s)) == s
    assert parse(bytes(s)) == s
    assert str(parse(str(s))) == str(s)
