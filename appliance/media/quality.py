"""A leg's RTP figures: what its phone reports about us in RTCP (RFC 3550 §6.4.1,
§6.4.2) and the ``LegQualityReport`` built from our own counters when it closes.

Sans-IO: fed RTCP bytes as they pass through, read once at the end.
"""

from __future__ import annotations

from typing import Final

from appliance.pbx.media_port import LegQualityReport
from appliance.rtp.packet import RtpError
from appliance.rtp.rtcp import ReceiverReport, ReportBlock, SenderReport, parse_compound
from appliance.rtp.stats import ReceiverStats

CLOCK_RATE: Final = 8000  # report block jitter is in the stream's timestamp units


class RemoteReports:
    """The phone's last reception report: fraction lost and jitter of what it hears."""

    def __init__(self) -> None:
        self.loss_fraction: float | None = None
        self.jitter_ms: float | None = None
        self.malformed = 0

    def feed(
        self, data: bytes, now: float, stats: ReceiverStats | None, own_ssrc: int | None
    ) -> None:
        """One RTCP datagram from the phone.

        ``stats`` is our receiver state for the phone's stream: its SR gives the
        LSR/DLSR our own SRs echo (RFC 3550 §6.4.1). ``own_ssrc`` is our generated
        stream's SSRC; a block about it is preferred, since while we relay the phone
        reports on the other phone's SSRC, and both are what it hears from us.
        """
        try:  # where RTCP bytes enter (STYLE §2.5)
            packets = parse_compound(data)
        except RtpError:
            self.malformed += 1
            return
        for packet in packets:
            if not isinstance(packet, SenderReport | ReceiverReport):
                continue
            if isinstance(packet, SenderReport) and stats is not None:
                if packet.ssrc == stats.ssrc:
                    stats.on_sender_report(packet, now)
            if packet.reports:
                self._take(_pick(packet.reports, own_ssrc))

    def _take(self, block: ReportBlock) -> None:
        self.loss_fraction = block.fraction_lost / 256  # RFC 3550 §6.4.1: 8-bit fixed point
        self.jitter_ms = block.jitter * 1000 / CLOCK_RATE


def _pick(blocks: tuple[ReportBlock, ...], own_ssrc: int | None) -> ReportBlock:
    for block in blocks:
        if block.ssrc == own_ssrc:
            return block
    return blocks[0]


def quality_report(
    packets_received: int,
    packets_sent: int,
    lost_before: int,
    stats: ReceiverStats | None,
    remote: RemoteReports,
) -> LegQualityReport:
    """The CDR figures; losses of earlier SSRCs of the phone are added to the current one's."""
    return LegQualityReport(
        packets_received=packets_received,
        packets_sent=packets_sent,
        packets_lost=lost_before + (stats.lost if stats is not None else 0),
        jitter_ms=stats.jitter_ms if stats is not None else 0.0,
        remote_loss_fraction=remote.loss_fraction,
        remote_jitter_ms=remote.jitter_ms,
    )
