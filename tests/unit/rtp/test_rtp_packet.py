"""RTP packets (RFC 3550 §5.1) and the wrap-safe sequence helpers."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.rtp.packet import (
    RtpError,
    RtpExtension,
    RtpPacket,
    peek_header,
    seq_add,
    seq_after,
    seq_diff,
    ts_diff,
)

# PCMU, marker, seq 0x1234, ts 0xDEADBEEF, SSRC 0x01020304, 4 payload bytes
PLAIN = bytes.fromhex("80 80 1234 deadbeef 01020304") + b"\xff\xfe\xfd\xfc"
# P, X and CC=2: two CSRCs, a one-word extension (profile 0xBEDE), payload, 3 padding
FULL = (
    bytes.fromhex("b2 08 0001 00000010 0a0b0c0d")
    + bytes.fromhex("00000001 00000002")
    + bytes.fromhex("bede 0001 10ff0000")
    + b"\x01\x02"
    + b"\x00\x00\x03"
)


def test_parse_plain_packet() -> None:
    packet = RtpPacket.parse(PLAIN)
    assert packet == RtpPacket(
        payload_type=0,
        sequence=0x1234,
        timestamp=0xDEADBEEF,
        ssrc=0x01020304,
        payload=b"\xff\xfe\xfd\xfc",
        marker=True,
    )
    assert packet.version == 2
    assert bytes(packet) == PLAIN


def test_parse_csrcs_extension_and_padding() -> None:
    packet = RtpPacket.parse(FULL)
    assert packet.payload_type == 8 and not packet.marker
    assert packet.csrcs == (1, 2)
    assert packet.extension == RtpExtension(0xBEDE, bytes.fromhex("10ff0000"))
    assert packet.payload == b"\x01\x02"
    assert packet.padding == b"\x00\x00\x03"
    assert bytes(packet) == FULL


def test_padding_with_nonzero_filler_round_trips() -> None:
    data = PLAIN[:12] + b"\xaa" + b"\x07\x07\x02"
    data = bytes([data[0] | 0x20]) + data[1:]
    packet = RtpPacket.parse(data)
    assert packet.payload == b"\xaa\x07" and packet.padding == b"\x07\x02"
    assert bytes(packet) == data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "RTP packet of 0 bytes is shorter than the 12-byte header"),
        (PLAIN[:11], "RTP packet of 11 bytes is shorter than the 12-byte header"),
        (b"\x40" + PLAIN[1:], "RTP version 1, expected 2"),
        (b"\x83" + PLAIN[1:], "CSRC count 3 needs 24 bytes, packet has 16"),
        (
            b"\x90" + PLAIN[1:12] + b"\xbe",
            "header extension bit set but no room for the extension header",
        ),
        (
            b"\x90" + PLAIN[1:12] + b"\xbe\xde\x00\x02\x00\x00\x00\x00",
            "header extension of 2 words overruns the 20-byte packet",
        ),
        (b"\xa0" + PLAIN[1:] + b"\x00", "padding bit set but the padding count is 0"),
        (b"\xa0" + PLAIN[1:12] + b"\x01\x06", "padding of 6 bytes is longer than the 2 left"),
    ],
)
def test_malformed_packets_raise_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError) as info:
        RtpPacket.parse(data)
    assert info.value.reason == reason


def test_constructor_rejects_unencodable_values() -> None:
    with pytest.raises(RtpError, match="payload type 128"):
        RtpPacket(128, 0, 0, 0)
    with pytest.raises(RtpError, match="sequence 65536"):
        RtpPacket(0, 65536, 0, 0)
    with pytest.raises(RtpError, match="must end with its count"):
        RtpPacket(0, 0, 0, 0, padding=b"\x00\x00")
    with pytest.raises(RtpError, match="16 CSRCs"):
        RtpPacket(0, 0, 0, 0, csrcs=tuple(range(16)))
    with pytest.raises(RtpError, match="not whole 32-bit words"):
        RtpExtension(1, b"\x00")


def test_peek_header_reads_fixed_fields_only() -> None:
    assert peek_header(FULL) == (8, 1, 0x10, 0x0A0B0C0D)
    assert peek_header(PLAIN).sequence == 0x1234
    with pytest.raises(RtpError, match="version 0"):
        peek_header(bytes(12))
    with pytest.raises(RtpError, match="shorter"):
        peek_header(PLAIN[:5])


def test_sequence_helpers_wrap() -> None:
    assert seq_after(0, 65535)
    assert seq_after(5, 65530)
    assert not seq_after(65535, 0)
    assert not seq_after(7, 7)
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(3, 65533) == 6
    assert seq_diff(0x8000, 0) == -0x8000
    assert seq_diff(0x7FFF, 0) == 0x7FFF
    assert seq_add(65535, 2) == 1
    assert seq_add(0, -1) == 65535
    assert ts_diff(0, 0xFFFFFF60) == 160
    assert ts_diff(0xFFFFFF60, 0) == -160
    assert ts_diff(0x80000000, 0) == -0x80000000


@given(st.integers(0, 0xFFFF), st.integers(-0x8000, 0x7FFF))
def test_seq_diff_inverts_seq_add(a: int, n: int) -> None:
    assert seq_diff(seq_add(a, n), a) == n
    assert seq_after(seq_add(a, n), a) == (n > 0)


@given(st.integers(0, 0xFFFFFFFF), st.integers(-0x80000000, 0x7FFFFFFF))
def test_ts_diff_is_signed_modulo_2_32(a: int, n: int) -> None:
    assert ts_diff((a + n) % 2**32, a) == n


u32 = st.integers(0, 0xFFFFFFFF)
padding = st.integers(1, 255).flatmap(
    lambda n: st.binary(min_size=n - 1, max_size=n - 1).map(lambda b: b + bytes([n]))
)
packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extension=st.none()
    | st.builds(
        RtpExtension,
        profile=st.integers(0, 0xFFFF),
        data=st.integers(0, 8).flatmap(lambda w: st.binary(min_size=4 * w, max_size=4 * w)),
    ),
    padding=st.just(b"") | padding,
)


@given(packets)
def test_generated_packets_round_trip(packet: RtpPacket) -> None:
    data = bytes(packet)
    assert RtpPacket.parse(data) == packet
    assert bytes(RtpPacket.parse(data)) == data
    assert peek_header(data) == (
        packet.payload_type,
        packet.sequence,
        packet.timestamp,
        packet.ssrc,
    )


@given(packets, st.data())
def test_truncated_packets_parse_or_raise_rtp_error(packet: RtpPacket, data: st.DataObject) -> None:
    raw = bytes(packet)
    cut = data.draw(st.integers(0, len(raw)))
    try:
        parsed = RtpPacket.parse(raw[:cut])
    except RtpError:
        return
    assert bytes(parsed) == raw[:cut]


@given(st.binary(max_size=64), st.booleans())
def test_arbitrary_bytes_parse_or_raise_rtp_error(raw: bytes, force_v2: bool) -> None:
    if force_v2 and raw:
        raw = bytes([raw[0] & 0x3F | 0x80]) + raw[1:]
    try:
        parsed = RtpPacket.parse(raw)
    except RtpError:
        return
    assert bytes(parsed) == raw


def test_header_struct_matches_rfc_layout() -> None:
    # RFC 3550 §5.1: V=2 in the top two bits, marker is the top bit of the second octet
    raw = bytes(RtpPacket(96, 1, 2, 3, marker=True))
    assert struct.unpack("!BBHII", raw) == (0x80, 0xE0, 1, 2, 3)
