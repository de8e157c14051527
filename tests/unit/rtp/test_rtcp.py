"""RTCP packets and compound packets (RFC 3550 §6.4-§6.6, §A.2) and NTP helpers."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.rtp.packet import RtpError
from appliance.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    RtcpUnknown,
    SdesChunk,
    SenderReport,
    SourceDescription,
    ntp_from_unix,
    ntp_middle32,
    parse_compound,
    serialize_compound,
    unix_from_ntp,
)

BLOCK = ReportBlock(
    ssrc=0x11223344,
    fraction_lost=12,
    cumulative_lost=-3,
    highest_seq=0x0001_0005,
    jitter=37,
    lsr=0xAABBCCDD,
    dlsr=98304,
)
# SR (RC=1) + SDES CNAME "ab" + BYE with reason "x", built by hand from RFC 3550 §6.4.1/6.5/6.6
SR_BYTES = (
    bytes.fromhex("81 c8 000c 01020304")
    + bytes.fromhex("e6c5a1b2 80000000 000003e8 0000000a 00000640")
    + bytes.fromhex("11223344 0c fffffd 00010005 00000025 aabbccdd 00018000")
)
SDES_BYTES = bytes.fromhex("81 ca 0003 01020304 0102 6162 00000000")
BYE_BYTES = bytes.fromhex("81 cb 0002 01020304 0178 0000")
COMPOUND = SR_BYTES + SDES_BYTES + BYE_BYTES


def test_hand_built_compound_parses_to_values() -> None:
    sr, sdes, bye = parse_compound(COMPOUND)
    assert sr == SenderReport(
        ssrc=0x01020304,
        ntp_seconds=0xE6C5A1B2,
        ntp_fraction=0x80000000,
        rtp_timestamp=1000,
        packet_count=10,
        octet_count=1600,
        reports=(BLOCK,),
    )
    assert sdes == SourceDescription.cname_only(0x01020304, "ab")
    assert isinstance(sdes, SourceDescription) and sdes.chunks[0].cname == "ab"
    assert bye == Bye((0x01020304,), b"x")
    assert serialize_compound([sr, sdes, bye]) == COMPOUND


def test_report_block_cumulative_lost_is_signed_24_bit() -> None:
    for lost in (-0x800000, -1, 0, 1, 0x7FFFFF):
        block = ReportBlock(1, 0, lost, 0, 0)
        assert ReportBlock.parse(bytes(block)).cumulative_lost == lost
    assert bytes(ReportBlock(1, 0, -1, 0, 0))[5:8] == b"\xff\xff\xff"
    with pytest.raises(RtpError, match="signed 24-bit"):
        ReportBlock(1, 0, 0x800000, 0, 0)


def test_receiver_report_with_extension_and_padding_round_trips() -> None:
    rr = ReceiverReport(7, (BLOCK, BLOCK), extension=b"\x01\x02\x03\x04", padding=b"\0\0\0\x04")
    data = bytes(rr)
    assert data[0] == 0xA2 and data[1] == 201
    assert parse_compound(data) == [rr]


def test_empty_receiver_report_and_unknown_types_round_trip() -> None:
    app = RtcpUnknown(204, 3, b"\0\0\0\x01name")  # APP, RFC 3550 §6.7
    packets: list[RtcpPacket] = [ReceiverReport(9), app, Bye(), SourceDescription((SdesChunk(5),))]
    data = serialize_compound(packets)
    assert parse_compound(data) == packets
    assert bytes(SdesChunk(5)) == bytes.fromhex("00000005 00000000")


def test_sdes_with_several_items_and_word_aligned_end() -> None:
    chunk = SdesChunk(1, ((1, b"user@host"), (2, b"Name"), (6, b"yakyak")))
    sdes = SourceDescription((chunk, SdesChunk(2, ((1, b"abc"),))))
    data = bytes(sdes)
    assert len(data) % 4 == 0
    assert parse_compound(data) == [sdes]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty RTCP packet"),
        (b"\x80\xc9\x00", "3 bytes left, shorter than an RTCP header"),
        (b"\x40\xc9\x00\x01\x00\x00\x00\x01", "RTCP version 1, expected 2"),
        (b"\x80\xc9\x00\x02\x00\x00\x00\x01", "RTCP length field says 12 bytes, 8 left"),
        (b"\x81\xc9\x00\x01\x00\x00\x00\x01", "1 report blocks do not fit the packet length"),
        (b"\x80\xc8\x00\x01\x00\x00\x00\x01", "SR shorter than its sender info"),
        (
            b"\xa0\xc9\x00\x01\x00\x00\x00\x04" + b"\x80\xc9\x00\x01\x00\x00\x00\x01",
            "padding on an RTCP packet that is not the last in the compound",
        ),
        (b"\xa0\xc9\x00\x01\x00\x00\x00\x00", "RTCP padding count 0 is invalid"),
        (b"\xa0\xc9\x00\x01\x00\x00\x00\x0c", "RTCP padding count 12 is invalid"),
        (b"\x81\xca\x00\x01\x00\x00\x00\x01", "SDES item list not terminated"),
        (b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x09ab", "SDES item overruns the packet"),
        (
            b"\x81\xca\x00\x02\x00\x00\x00\x01\x00\x00\x00\x07",
            "SDES chunk not ended by null octets to a word boundary",
        ),
        (b"\x82\xcb\x00\x01\x00\x00\x00\x01", "BYE with 2 sources overruns the packet"),
        (
            b"\x81\xcb\x00\x02\x00\x00\x00\x01\x08abc",
            "BYE reason does not fill the packet up to null padding",
        ),
    ],
)
def test_malformed_rtcp_raises_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError) as info:
        parse_compound(data)
    assert info.value.reason == reason


def test_ntp_helpers() -> None:
    assert ntp_from_unix(0.0) == (2_208_988_800, 0)
    assert ntp_from_unix(1.5) == (2_208_988_801, 1 << 31)
    seconds, fraction = ntp_from_unix(1_700_000_000.25)
    assert unix_from_ntp(seconds, fraction) == 1_700_000_000.25
    assert ntp_middle32(0xE6C5A1B2, 0x80000000) == 0xA1B28000
    # RFC 3550 §4: the seconds field wraps in 2036 (era 1)
    assert ntp_from_unix(2**32 - 2_208_988_800 + 5.0)[0] == 5
    sr = SenderReport(1, 0xE6C5A1B2, 0x80001234, 0, 0, 0)
    assert sr.ntp_middle32 == 0xA1B28000


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_seq=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
words = st.integers(0, 4).flatmap(lambda w: st.binary(min_size=4 * w, max_size=4 * w))
block_lists = st.lists(blocks, max_size=31).map(tuple)
sdes_items = st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=40)), max_size=4).map(tuple)
rtcp_packets = st.one_of(
    st.builds(SenderReport, u32, u32, u32, u32, u32, u32, block_lists, words),
    st.builds(ReceiverReport, u32, block_lists, words),
    st.builds(
        SourceDescription,
        st.lists(st.builds(SdesChunk, u32, sdes_items), max_size=5).map(tuple),
    ),
    st.builds(Bye, st.lists(u32, max_size=31).map(tuple), st.none() | st.binary(max_size=255)),
    st.builds(RtcpUnknown, st.integers(204, 255), st.integers(0, 31), words),
)
paddings = st.just(b"") | st.integers(1, 4).map(lambda w: bytes(4 * w - 1) + bytes([4 * w]))


@given(st.lists(rtcp_packets, min_size=1, max_size=5), paddings)
def test_generated_compounds_round_trip(packets: list[RtcpPacket], padding: bytes) -> None:
    packets[-1] = dataclasses.replace(packets[-1], padding=padding)
    data = serialize_compound(packets)
    assert parse_compound(data) == packets
    assert serialize_compound(parse_compound(data)) == data


@given(st.lists(rtcp_packets, min_size=1, max_size=3), st.data())
def test_truncated_compounds_parse_or_raise_rtp_error(
    packets: list[RtcpPacket], data: st.DataObject
) -> None:
    raw = serialize_compound(packets)
    cut = data.draw(st.integers(0, len(raw)))
    try:
        parsed = parse_compound(raw[:cut])
    except RtpError:
        return
    assert serialize_compound(parsed) == raw[:cut]


@given(st.binary(max_size=80))
def test_arbitrary_bytes_parse_or_raise_rtp_error(raw: bytes) -> None:
    if raw:
        raw = bytes([raw[0] & 0x3F | 0x80]) + raw[1:]
    try:
        parsed = parse_compound(raw)
    except RtpError:
        return
    assert serialize_compound(parsed) == raw
