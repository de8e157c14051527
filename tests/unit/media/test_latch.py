"""Latch: comedia latching and guarded re-latching (RFC 4961 §4 in spirit), sans-IO."""

from __future__ import annotations

from appliance.media.relay import Latch, LatchConfig

SDP = ("192.0.2.1", 4000)
NAT = ("198.51.100.7", 61234)
SPOOF = ("203.0.113.9", 5000)


def test_sdp_address_until_first_packet_then_source() -> None:
    latch = Latch(SDP, LatchConfig())
    assert latch.target == SDP and not latch.latched
    assert latch.accept(NAT, 0.0)
    assert latch.target == NAT and latch.latched


def test_single_spoofed_packet_does_not_steal() -> None:
    latch = Latch(SDP, LatchConfig(confirm=3, silence=0.5))
    latch.accept(NAT, 0.0)
    assert not latch.accept(SPOOF, 10.0)  # old source silent long enough, but only 1 packet
    assert latch.target == NAT


def test_new_source_needs_confirm_packets_and_silence() -> None:
    latch = Latch(None, LatchConfig(confirm=3, silence=0.5))
    latch.accept(NAT, 0.0)
    assert not latch.accept(SPOOF, 0.1)
    assert not latch.accept(SPOOF, 0.2)
    assert not latch.accept(SPOOF, 0.3)  # 3 in a row, but the latched source is recent
    assert latch.accept(NAT, 0.3)
    assert not latch.accept(SPOOF, 1.0)
    assert not latch.accept(SPOOF, 1.02)
    assert latch.accept(SPOOF, 1.04)  # 3 in a row, NAT silent for 0.74 s
    assert latch.target == SPOOF
    assert not latch.accept(NAT, 1.05)  # the old source is now the stranger


def test_interleaved_sources_reset_the_count() -> None:
    latch = Latch(None, LatchConfig(confirm=3, silence=0.0))
    latch.accept(NAT, 0.0)
    other = ("203.0.113.10", 5000)
    for t in range(10):
        assert not latch.accept(SPOOF if t % 2 else other, 1.0 + t)
    assert latch.target == NAT
