"""RFC 8866 parse/serialize on captures in the style of real phones, and every rejection."""

from __future__ import annotations

import pytest

from appliance.sdp.session import (
    Bandwidth,
    Connection,
    Direction,
    Limits,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
    bump_version,
    parse,
)
from appliance.sip.errors import ParseError


def crlf(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


BARESIP = crlf(
    "v=0",
    "o=- 1725614473 3089301735 IN IP4 192.168.1.20",
    "s=-",
    "c=IN IP4 192.168.1.20",
    "t=0 0",
    "a=tool:baresip 3.14.0",
    "m=audio 10300 RTP/AVP 116 0 8 101",
    "b=AS:64",
    "a=rtpmap:116 opus/48000/2",
    "a=fmtp:116 stereo=1;sprop-stereo=1",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=rtcp-rsize",
    "a=sendrecv",
    "a=label:1",
    "a=ssrc:2887462745 cname:b3c0a18a-5c62-4bc8-9aa8-9b2bb6b2a1ee",
    "a=ptime:20",
)

LINPHONE_AUDIO_VIDEO = crlf(
    "v=0",
    "o=alice 3207 1792 IN IP4 192.168.1.31",
    "s=Talk",
    "c=IN IP4 192.168.1.31",
    "t=0 0",
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics",
    "a=record:off",
    "m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 useinbandfec=1",
    "a=rtpmap:97 speex/16000",
    "a=fmtp:97 vbr=on",
    "a=rtpmap:98 speex/8000",
    "a=fmtp:98 vbr=on",
    "a=fmtp:18 annexb=yes",
    "a=rtpmap:101 telephone-event/48000",
    "a=rtpmap:99 telephone-event/16000",
    "a=rtpmap:100 telephone-event/8000",
    "a=rtcp:7079",
    "a=rtcp-fb:* trr-int 1000",
    "a=rtcp-fb:* ccm tmmbr",
    "m=video 9078 RTP/AVP 96 97",
    "a=rtpmap:96 VP8/90000",
    "a=rtpmap:97 H264/90000",
    "a=fmtp:97 profile-level-id=42801F",
    "a=rtcp:9079",
    "a=rtcp-fb:* trr-int 1000",
    "a=rtcp-fb:96 nack pli",
)

ZOIPER = crlf(
    "v=0",
    "o=Z 1725614999123 1 IN IP4 10.0.0.15",
    "s=Z",
    "c=IN IP4 10.0.0.15",
    "t=0 0",
    "m=audio 8000 RTP/AVP 106 9 98 101 0 8 3",
    "a=rtpmap:106 opus/48000/2",
    "a=fmtp:106 sprop-maxcapturerate=16000; minptime=20; useinbandfec=1",
    "a=rtpmap:98 telephone-event/48000",
    "a=fmtp:98 0-16",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=sendrecv",
    "a=rtcp-mux",
)

DESK_PHONE = crlf(
    "v=0",
    "o=- 1725615000 1725615000 IN IP4 192.168.10.50",
    "s=Polycom IP Phone",
    "c=IN IP4 192.168.10.50",
    "b=AS:80",
    "t=0 0",
    "a=sendonly",
    "m=audio 2222 RTP/AVP 9 102 0 8 18 127",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:102 G7221/16000",
    "a=fmtp:102 bitrate=32000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no",
    "a=rtpmap:127 telephone-event/8000",
)

SIPP_PCAP = crlf(
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6000 RTP/AVP 8 101",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-11,16",
)

IPV6 = crlf(
    "v=0",
    "o=- 20518 0 IN IP6 2001:db8::10",
    "s=-",
    "c=IN IP6 2001:db8::10",
    "t=0 0",
    "m=audio 49170 RTP/AVP 0 96",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:96 telephone-event/8000",
    "a=fmtp:96 0-16",
    "a=ptime:30",
    "a=sendrecv",
)

# Media-level c= only, every optional session line, a repeat time and a zone.
RFC_EXAMPLE = crlf(
    "v=0",
    "o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1",
    "s=Call to John Smith",
    "i=SDP Offer #1",
    "u=http://www.jdoe.example.com/home.html",
    "e=Jane Doe <jane@jdoe.example.com>",
    "p=+1 617 555-6011",
    "b=CT:128",
    "t=3724394400 3724398000",
    "r=604800 3600 0 90000",
    "z=2882844526 -1h 2898848070 0",
    "k=prompt",
    "a=recvonly",
    "m=audio 49170/2 RTP/AVP 0",
    "i=main audio",
    "c=IN IP4 198.51.100.1",
    "b=AS:64",
    "k=prompt",
    "m=video 0 RTP/AVP 99",
    "a=rtpmap:99 h263-1998/90000",
)

CAPTURES = {
    "baresip": BARESIP,
    "linphone": LINPHONE_AUDIO_VIDEO,
    "zoiper": ZOIPER,
    "desk_phone": DESK_PHONE,
    "sipp_pcap": SIPP_PCAP,
    "ipv6": IPV6,
    "rfc_example": RFC_EXAMPLE,
}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_captures_round_trip_exactly(name: str) -> None:
    text = CAPTURES[name]
    parsed = parse(text)
    assert str(parsed) == text
    assert bytes(parsed) == text.encode()
    assert parse(text.encode()) == parsed
    assert parse(str(parsed)) == parsed


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_bare_lf_parses_to_the_same_value(name: str) -> None:
    text = CAPTURES[name]
    assert parse(text.replace("\r\n", "\n")) == parse(text)


def test_baresip_fields() -> None:
    s = parse(BARESIP)
    assert s.origin == Origin("-", "1725614473", 3089301735, "IN", "IP4", "192.168.1.20")
    assert s.name == "-"
    assert s.connection == Connection("IN", "IP4", "192.168.1.20")
    assert s.timing == (Timing(0, 0),)
    assert s.attributes == (("tool", "baresip 3.14.0"),)
    (audio,) = s.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 10300, "RTP/AVP")
    assert audio.formats == ("116", "0", "8", "101")
    assert audio.bandwidths == (Bandwidth("AS", 64),)
    assert audio.rtpmap(116) == ("opus", 48000, 2)
    assert audio.rtpmap(0) == ("PCMU", 8000, 1)
    assert audio.rtpmap(9) is None
    assert audio.fmtp(101) == "0-15"
    assert audio.fmtp(0) is None
    assert audio.direction(s) is Direction.SENDRECV
    assert audio.ptime == 20
    assert audio.rtcp_port is None
    assert not audio.rtcp_mux
    assert audio.effective_connection(s) == s.connection
    assert ("rtcp-rsize", None) in audio.attributes


def test_linphone_two_media_sections_and_rtcp_port() -> None:
    s = parse(LINPHONE_AUDIO_VIDEO)
    audio, video = s.media
    assert audio.rtcp_port == 7079
    assert video.media == "video"
    assert video.rtpmap(96) == ("VP8", 90000, 1)
    assert audio.rtpmap(96) == ("opus", 48000, 2)
    assert audio.fmtp(18) == "annexb=yes"
    assert audio.ptime is None


def test_zoiper_rtcp_mux() -> None:
    (audio,) = parse(ZOIPER).media
    assert audio.rtcp_mux
    assert audio.fmtp(106) == "sprop-maxcapturerate=16000; minptime=20; useinbandfec=1"


def test_session_level_direction_is_the_fallback() -> None:
    s = parse(DESK_PHONE)
    assert s.direction is Direction.SENDONLY
    assert s.media[0].direction(s) is Direction.SENDONLY
    assert s.media[0].direction() is Direction.SENDRECV
    assert s.bandwidths == (Bandwidth("AS", 80),)


def test_media_direction_overrides_session() -> None:
    s = parse(DESK_PHONE.replace("a=rtpmap:9 G722", "a=inactive\r\na=rtpmap:9 G722"))
    assert s.media[0].direction(s) is Direction.INACTIVE


def test_ipv6_connection() -> None:
    s = parse(IPV6)
    assert s.connection == Connection("IN", "IP6", "2001:db8::10")
    assert s.media[0].ptime == 30


def test_optional_lines_and_media_connection() -> None:
    s = parse(RFC_EXAMPLE)
    assert s.connection is None
    assert s.information == "SDP Offer #1"
    assert s.emails == ("Jane Doe <jane@jdoe.example.com>",)
    assert s.phones == ("+1 617 555-6011",)
    assert s.timing == (Timing(3724394400, 3724398000, ("604800 3600 0 90000",)),)
    assert s.zone == "2882844526 -1h 2898848070 0"
    audio, video = s.media
    assert audio.port_count == 2
    assert audio.title == "main audio"
    assert audio.effective_connection(s) == Connection("IN", "IP4", "198.51.100.1")
    assert video.port == 0 and video.effective_connection(s) is None
    assert audio.direction(s) is Direction.RECVONLY


def test_multicast_connection_host() -> None:
    c = Connection("IN", "IP4", "233.252.0.1/127/3")
    assert c.host == "233.252.0.1"
    assert not c.is_hold
    assert Connection("IN", "IP4", "0.0.0.0").is_hold


def test_unknown_type_letters_and_blank_lines_are_skipped() -> None:
    noisy = SIPP_PCAP.replace("t=0 0\r\n", "t=0 0\r\nx=vendor thing\r\n\r\n")
    noisy = noisy.replace("a=rtpmap:8", "y=another\r\na=rtpmap:8")
    assert parse(noisy) == parse(SIPP_PCAP)


def test_unknown_attributes_and_empty_values_are_kept() -> None:
    text = SIPP_PCAP + "a=X-vendor:foo bar\r\na=empty:\r\n"
    s = parse(text)
    assert s.media[0].attributes[-2:] == (("X-vendor", "foo bar"), ("empty", ""))
    assert str(s) == text


def test_malformed_helper_attributes_are_ignored() -> None:
    text = SIPP_PCAP + "a=rtpmap:x bad\r\na=ptime:abc\r\na=rtcp:99999\r\na=fmtp:\r\n"
    (m,) = parse(text).media
    assert set(m.rtpmaps()) == {8, 101}
    assert m.ptime is None
    assert m.rtcp_port is None


def test_bump_version() -> None:
    s = parse(SIPP_PCAP)
    bumped = bump_version(s)
    assert bumped.origin.sess_version == 2353687638
    assert bumped.origin.sess_id == s.origin.sess_id
    assert "o=user1 53655765 2353687638 IN IP4 127.0.0.1\r\n" in str(bumped)


def test_built_value_serializes_and_parses_back() -> None:
    s = SessionDescription(
        origin=Origin("yakyak", "1", 1, "IN", "IP4", "203.0.113.5"),
        connection=Connection("IN", "IP4", "203.0.113.5"),
        media=(
            MediaDescription("audio", 4000, "RTP/AVP", ("0",), attributes=(("sendrecv", None),)),
        ),
    )
    assert str(s) == crlf(
        "v=0",
        "o=yakyak 1 1 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "a=sendrecv",
    )
    assert parse(bytes(s)) == s


HEAD = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"

REJECTIONS = [
    ("", 400, "SDP must start with v="),
    ("o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\ns=-\r\nt=0 0\r\n", 400, "SDP must start with v="),
    ("v=1\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n", 400, "unsupported SDP version '1'"),
    ("v=0\r\ns=-\r\nt=0 0\r\n", 400, "missing o= after v="),
    ("v=0\r\no=- 1 1 IN IP4 h\r\nt=0 0\r\n", 400, "missing s= after o="),
    ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n", 400, "missing t= line"),
    (
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\n",
        400,
        "missing t= before m=",
    ),
    ("v=0\r\no=- 1 1 IN IP4\r\ns=-\r\nt=0 0\r\n", 400, "bad o= line: expected 6 fields"),
    ("v=0\r\no=- 1 x IN IP4 h\r\ns=-\r\nt=0 0\r\n", 400, "bad o= session version: 'x'"),
    (HEAD + "v=0\r\n", 400, "v= out of place"),
    (HEAD + "s=again\r\n", 400, "s= out of place"),
    (
        HEAD + "m=audio 4000 RTP/AVP 0\r\nt=0 0\r\n",
        400,
        "t= repeated or out of place in a media section",
    ),
    (HEAD + "i=a\r\ni=b\r\n", 400, "i= repeated or out of place"),
    (HEAD + "c=IN IP4 h\r\n", 400, "several session-level c= lines"),
    (HEAD + "t=x 0\r\n", 400, "bad t= start: 'x'"),
    (HEAD + "t=0\r\n", 400, "bad t= line: expected 2 fields"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nr=1 2 3\r\nt=0 0\r\n", 400, "r= before t="),
    (
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4\r\nt=0 0\r\n",
        400,
        "bad c= line: expected 3 fields",
    ),
    (HEAD + "b=AS\r\n", 400, "bad b= line"),
    (HEAD + "b=AS:lots\r\n", 400, "bad b= bandwidth: 'lots'"),
    (HEAD + "a=:x\r\n", 400, "bad a= line: empty attribute name"),
    (HEAD + "m=audio 4000 RTP/AVP\r\n", 400, "bad m= line: no formats"),
    (HEAD + "m=audio 4000\r\n", 400, "bad m= line: expected media, port and proto"),
    (HEAD + "m=audio x RTP/AVP 0\r\n", 400, "bad m= port: 'x'"),
    (HEAD + "m=audio -1 RTP/AVP 0\r\n", 400, "bad m= port: '-1'"),
    (HEAD + "m=audio 70000 RTP/AVP 0\r\n", 400, "m= port out of range: 70000"),
    (HEAD + "m=audio 4000/x RTP/AVP 0\r\n", 400, "bad m= port count: 'x'"),
    (
        HEAD + "m=audio 4000 RTP/AVP 0\r\nu=http://x\r\n",
        400,
        "u= repeated or out of place in a media section",
    ),
    (HEAD + "bogus\r\n", 400, "bad SDP line: 'bogus'"),
    (HEAD + "A=x\r\n", 400, "bad SDP line: 'A=x'"),
    (HEAD + "a=x\ry\r\n", 400, "bare CR or NUL in SDP line"),
    (HEAD + "a=x\0\r\n", 400, "bare CR or NUL in SDP line"),
    (
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
        488,
        "no c= for media section 0",
    ),
    (
        HEAD + "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 a\r\nc=IN IP4 b\r\n",
        488,
        "several c= lines in one media section",
    ),
]


@pytest.mark.parametrize(("text", "status", "reason"), REJECTIONS, ids=[r[2] for r in REJECTIONS])
def test_rejections(text: str, status: int, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert info.value.status == status
    assert str(info.value) == reason


def test_rejected_stream_may_omit_connection() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 31\r\n"
    assert parse(text).media[0].connection is None


def test_not_utf8() -> None:
    with pytest.raises(ParseError, match="SDP is not UTF-8") as info:
        parse(HEAD.encode() + b"s=\xff\r\n")
    assert info.value.status == 400


def test_limits() -> None:
    limits = Limits(max_bytes=400, max_lines=8, max_line_length=40, max_media=1)
    with pytest.raises(ParseError, match="larger than 400 bytes") as info:
        parse("a" * 401, limits)
    assert info.value.status == 413
    with pytest.raises(ParseError, match="more than 8 SDP lines") as info:
        parse(HEAD + "a=x\r\n" * 4, limits)
    assert info.value.status == 400
    with pytest.raises(ParseError, match="SDP line longer than 40") as info:
        parse(HEAD + "a=" + "x" * 39 + "\r\n", limits)
    assert info.value.status == 400
    two = HEAD + "m=audio 1 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n"
    with pytest.raises(ParseError, match="more than 1 media sections") as info:
        parse(two, limits)
    assert info.value.status == 488
    assert len(parse(HEAD + "m=audio 1 RTP/AVP 0\r\n", limits).media) == 1
