"""RFC 3264 offer/answer as the PBX does it: answers, offers, answers to offers, hold."""

from __future__ import annotations

import pytest

from appliance.sdp.negotiate import (
    PCMA,
    PCMU,
    LocalMedia,
    NegotiatedMedia,
    NegotiationError,
    answer_direction,
    apply_answer,
    hold_offer,
    is_hold,
    make_answer,
    make_offer,
    new_origin,
    resume_offer,
)
from appliance.sdp.session import Direction, bump_version, parse
from appliance.sip.errors import ParseError

LOCAL = LocalMedia("203.0.113.5", 40000)
ORIGIN = new_origin(4242, "203.0.113.5")


def crlf(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


def offer(formats: str, *attrs: str, address: str = "192.0.2.9", extra: str = "") -> str:
    return (
        crlf(
            "v=0",
            "o=- 77 1 IN IP4 192.0.2.9",
            "s=-",
            f"c=IN IP4 {address}",
            "t=0 0",
            f"m=audio 30000 RTP/AVP {formats}",
            *attrs,
        )
        + extra
    )


BARESIP = crlf(
    "v=0",
    "o=- 1725614473 3089301735 IN IP4 192.168.1.20",
    "s=-",
    "c=IN IP4 192.168.1.20",
    "t=0 0",
    "m=audio 10300 RTP/AVP 116 0 8 101",
    "a=rtpmap:116 opus/48000/2",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=sendrecv",
    "a=ptime:20",
)


def test_answer_to_baresip_exact_text() -> None:
    answer = make_answer(parse(BARESIP), LOCAL, ORIGIN)
    assert str(answer.session) == crlf(
        "v=0",
        "o=yakyak 4242 4242 IN IP4 203.0.113.5",
        "s=YakYak",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    )
    assert answer.media == NegotiatedMedia(
        codec="PCMU",
        payload_type=0,
        clock_rate=8000,
        remote_address="192.168.1.20",
        remote_port=10300,
        remote_rtcp_port=10301,
        telephone_event_pt=101,
        direction=Direction.SENDRECV,
        ptime=20,
    )
    assert parse(bytes(answer.session)) == answer.session


def test_pcmu_only_static_without_rtpmap() -> None:
    answer = make_answer(parse(offer("0")), LOCAL, ORIGIN)
    assert answer.session.media[0].formats == ("0",)
    assert (answer.media.codec, answer.media.payload_type) == ("PCMU", 0)
    assert answer.media.telephone_event_pt is None


def test_pcma_only() -> None:
    answer = make_answer(parse(offer("8", "a=rtpmap:8 PCMA/8000")), LOCAL, ORIGIN)
    assert answer.session.media[0].formats == ("8",)
    assert answer.media.codec == "PCMA"


@pytest.mark.parametrize(
    ("formats", "codec"), [("0 8", "PCMU"), ("8 0", "PCMA"), ("18 8 3 0", "PCMA")]
)
def test_offerer_order_is_kept(formats: str, codec: str) -> None:
    answer = make_answer(parse(offer(formats)), LOCAL, ORIGIN)
    common = tuple(f for f in formats.split() if f in ("0", "8"))
    assert answer.session.media[0].formats == common
    assert answer.media.codec == codec


def test_our_codec_list_limits_the_answer() -> None:
    answer = make_answer(parse(offer("0 8")), LocalMedia("203.0.113.5", 40000, (PCMA,)), ORIGIN)
    assert answer.session.media[0].formats == ("8",)


@pytest.mark.parametrize("pt", [101, 96])
def test_telephone_event_keeps_offerer_pt_and_fmtp(pt: int) -> None:
    sdp = offer(f"0 {pt}", f"a=rtpmap:{pt} telephone-event/8000", f"a=fmtp:{pt} 0-11,16")
    answer = make_answer(parse(sdp), LOCAL, ORIGIN)
    m = answer.session.media[0]
    assert m.formats == ("0", str(pt))
    assert m.rtpmap(pt) == ("telephone-event", 8000, 1)
    assert m.fmtp(pt) == "0-11,16"
    assert answer.media.telephone_event_pt == pt


def test_telephone_event_at_another_rate_is_not_taken() -> None:
    sdp = offer(
        "0 98 100", "a=rtpmap:98 telephone-event/48000", "a=rtpmap:100 telephone-event/8000"
    )
    answer = make_answer(parse(sdp), LOCAL, ORIGIN)
    assert answer.session.media[0].formats == ("0", "100")
    assert answer.media.telephone_event_pt == 100


def test_case_insensitive_dynamic_codec_name() -> None:
    answer = make_answer(parse(offer("97", "a=rtpmap:97 pcma/8000")), LOCAL, ORIGIN)
    assert (answer.media.payload_type, answer.media.codec) == (97, "PCMA")
    assert answer.session.media[0].rtpmap(97) == ("PCMA", 8000, 1)


@pytest.mark.parametrize(
    "sdp",
    [
        offer("18 9", "a=rtpmap:18 G729/8000"),
        offer("101", "a=rtpmap:101 telephone-event/8000"),
        offer("96", "a=rtpmap:96 PCMU/16000"),
        offer("0").replace("RTP/AVP", "RTP/SAVP"),
        offer("0").replace("m=audio 30000", "m=audio 0"),
        offer("0").replace("m=audio", "m=video"),
    ],
    ids=["g729-g722", "only-events", "wrong-rate", "srtp", "port-0", "not-audio"],
)
def test_no_common_codec_is_488(sdp: str) -> None:
    with pytest.raises(NegotiationError, match="no common audio codec") as info:
        make_answer(parse(sdp), LOCAL, ORIGIN)
    assert info.value.status == 488
    assert isinstance(info.value, ParseError)


def test_unusable_address_type_is_488() -> None:
    sdp = offer("0").replace("c=IN IP4 192.0.2.9", "c=ATM NSAP 47.0005")
    with pytest.raises(NegotiationError, match="unsupported address type ATM NSAP") as info:
        make_answer(parse(sdp), LOCAL, ORIGIN)
    assert info.value.status == 488


def test_video_rejected_with_port_zero_and_its_formats() -> None:
    sdp = offer(
        "96 0",
        "a=rtpmap:96 opus/48000/2",
        extra=crlf(
            "m=video 9078 RTP/AVP 96 97",
            "a=rtpmap:96 VP8/90000",
            "a=rtpmap:97 H264/90000",
        ),
    )
    answer = make_answer(parse(sdp), LOCAL, ORIGIN)
    audio, video = answer.session.media
    assert (audio.port, audio.formats) == (40000, ("0",))
    assert str(answer.session).endswith("m=video 0 RTP/AVP 96 97\r\n")
    assert (video.port, video.formats, video.attributes) == (0, ("96", "97"), ())


def test_only_the_first_usable_audio_stream_is_accepted() -> None:
    sdp = offer("18", extra=crlf("m=audio 30002 RTP/AVP 8", "m=audio 30004 RTP/AVP 0"))
    answer = make_answer(parse(sdp), LOCAL, ORIGIN)
    assert [m.port for m in answer.session.media] == [0, 40000, 0]
    assert answer.media.remote_port == 30002
    assert answer.media.codec == "PCMA"


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("sendrecv", Direction.SENDRECV),
        ("sendonly", Direction.RECVONLY),
        ("recvonly", Direction.SENDONLY),
        ("inactive", Direction.INACTIVE),
    ],
)
def test_direction_answered_per_rfc3264_6_1(offered: str, answered: Direction) -> None:
    answer = make_answer(parse(offer("0", f"a={offered}")), LOCAL, ORIGIN)
    m = answer.session.media[0]
    assert m.direction(answer.session) is answered
    assert answer.media.direction is answered
    assert (answered.value, None) in m.attributes


def test_session_level_direction_applies() -> None:
    sdp = offer("0").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
    assert make_answer(parse(sdp), LOCAL, ORIGIN).media.direction is Direction.RECVONLY


def test_we_can_hold_in_our_answer() -> None:
    answer = make_answer(parse(offer("0")), LOCAL, ORIGIN, wanted=Direction.SENDONLY)
    assert answer.media.direction is Direction.SENDONLY


def test_answer_direction_table() -> None:
    for offered in Direction:
        assert answer_direction(offered) is offered.reversed()
    assert answer_direction(Direction.SENDRECV, Direction.INACTIVE) is Direction.INACTIVE
    assert answer_direction(Direction.SENDONLY, Direction.SENDONLY) is Direction.INACTIVE


def test_hold_via_zero_address_rfc2543() -> None:
    sdp = parse(offer("0", "a=sendrecv", address="0.0.0.0"))
    assert is_hold(sdp)
    answer = make_answer(sdp, LOCAL, ORIGIN)
    assert answer.media.direction is Direction.RECVONLY
    assert answer.media.remote_address == "0.0.0.0"


@pytest.mark.parametrize(
    ("attr", "held"),
    [("a=sendonly", True), ("a=inactive", True), ("a=recvonly", False), ("a=sendrecv", False)],
)
def test_hold_detection_by_direction(attr: str, held: bool) -> None:
    assert is_hold(parse(offer("0", attr))) is held


def test_hold_detection_ignores_rejected_streams() -> None:
    assert not is_hold(parse(offer("0").replace("m=audio 30000", "m=audio 0")))


def test_rtcp_port_and_ptime_from_offer() -> None:
    sdp = offer("0", "a=rtcp:30011 IN IP4 192.0.2.9", "a=ptime:30")
    answer = make_answer(parse(sdp), LOCAL, ORIGIN)
    assert answer.media.remote_rtcp_port == 30011
    assert answer.media.ptime == 30


def test_media_level_connection_wins() -> None:
    sdp = offer("0", "c=IN IP6 2001:db8::9")
    answer = make_answer(parse(sdp), LocalMedia("2001:db8::5", 40000), ORIGIN)
    assert answer.media.remote_address == "2001:db8::9"
    assert "c=IN IP6 2001:db8::5\r\n" in str(answer.session)


# --- our offers and the answers to them ---


def test_make_offer_exact_text() -> None:
    ours = make_offer(LOCAL, ORIGIN)
    assert str(ours) == crlf(
        "v=0",
        "o=yakyak 4242 4242 IN IP4 203.0.113.5",
        "s=YakYak",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )
    assert parse(str(ours)) == ours


def test_offer_answer_between_two_pbx_cores() -> None:
    ours = make_offer(LocalMedia("203.0.113.5", 40000, (PCMA, PCMU)), ORIGIN)
    theirs = make_answer(ours, LocalMedia("198.51.100.7", 50000), new_origin(9, "198.51.100.7"))
    media = apply_answer(ours, parse(bytes(theirs.session)))
    assert media == NegotiatedMedia(
        codec="PCMA",
        payload_type=8,
        clock_rate=8000,
        remote_address="198.51.100.7",
        remote_port=50000,
        remote_rtcp_port=50001,
        telephone_event_pt=101,
        direction=Direction.SENDRECV,
        ptime=20,
    )


def answer_text(formats: str, *attrs: str, port: int = 6000, extra: str = "") -> str:
    return (
        crlf(
            "v=0",
            "o=- 5 5 IN IP4 192.0.2.50",
            "s=-",
            "c=IN IP4 192.0.2.50",
            "t=0 0",
            f"m=audio {port} RTP/AVP {formats}",
            *attrs,
        )
        + extra
    )


def test_apply_answer_sipp_style() -> None:
    ours = make_offer(LOCAL, ORIGIN)
    got = apply_answer(
        ours, parse(answer_text("8 101", "a=rtpmap:101 telephone-event/8000", "a=rtcp-mux"))
    )
    assert (got.codec, got.payload_type, got.remote_port) == ("PCMA", 8, 6000)
    assert got.telephone_event_pt == 101


@pytest.mark.parametrize(
    ("attr", "direction"),
    [
        ("a=sendrecv", Direction.SENDRECV),
        ("a=recvonly", Direction.SENDONLY),
        ("a=sendonly", Direction.RECVONLY),
        ("a=inactive", Direction.INACTIVE),
    ],
)
def test_apply_answer_direction(attr: str, direction: Direction) -> None:
    got = apply_answer(make_offer(LOCAL, ORIGIN), parse(answer_text("0", attr)))
    assert got.direction is direction


def test_apply_answer_to_our_hold_offer() -> None:
    ours = make_offer(LOCAL, ORIGIN, Direction.SENDONLY)
    got = apply_answer(ours, parse(answer_text("0", "a=recvonly")))
    assert got.direction is Direction.SENDONLY


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            answer_text("0", extra="m=video 0 RTP/AVP 31\r\n"),
            "answer has 2 media sections, offer had 1",
        ),
        (answer_text("9"), "answer uses formats we did not offer: 9"),
        (answer_text("0 18 96"), "answer uses formats we did not offer: 18 96"),
        (answer_text("0", port=0), "answer accepted no audio stream"),
        (answer_text("101"), "no audio codec in answer section 0"),
        (answer_text("0").replace("m=audio", "m=video"), "media section 0 is video, not audio"),
    ],
)
def test_answer_validation_errors(text: str, reason: str) -> None:
    with pytest.raises(NegotiationError) as info:
        apply_answer(make_offer(LOCAL, ORIGIN), parse(text))
    assert str(info.value) == reason
    assert info.value.status == 488


def test_answer_may_not_accept_a_stream_we_rejected() -> None:
    ours = parse(str(make_offer(LOCAL, ORIGIN)) + "m=video 0 RTP/AVP 31\r\n")
    text = answer_text("0", extra="m=video 5000 RTP/AVP 31\r\n")
    with pytest.raises(NegotiationError, match="media section 1 was rejected in the offer"):
        apply_answer(ours, parse(text))


def test_hold_and_resume_offers_bump_the_version() -> None:
    ours = make_offer(LOCAL, ORIGIN)
    held = hold_offer(ours)
    assert held.origin.sess_version == ours.origin.sess_version + 1
    assert is_hold(held)
    assert held.media[0].attributes.count(("sendonly", None)) == 1
    assert ("sendrecv", None) not in held.media[0].attributes
    resumed = resume_offer(held)
    assert resumed.origin.sess_version == ours.origin.sess_version + 2
    assert not is_hold(resumed)
    assert resumed == bump_version(bump_version(ours))


def test_answer_without_rtpmaps_reuses_the_offer_mapping() -> None:
    got = apply_answer(make_offer(LOCAL, ORIGIN), parse(answer_text("8 101")))
    assert (got.codec, got.payload_type, got.telephone_event_pt) == ("PCMA", 8, 101)


def test_repeated_format_is_answered_once() -> None:
    answer = make_answer(parse(offer("0 0 8")), LOCAL, ORIGIN)
    assert answer.session.media[0].formats == ("0", "8")
