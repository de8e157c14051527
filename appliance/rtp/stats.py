"""RTP reception and sending statistics: RFC 3550 §A.1 (sequence validity),
§A.3 (expected and lost packets, fraction lost), §A.8 (interarrival jitter),
§6.4.1 (SR sender info, LSR/DLSR).

Time is passed in (STYLE §2.2): ``arrival`` and ``now`` are seconds on the caller's
monotonic clock; only differences of them are used. The RFC constants are a
``SequenceConfig`` so tests and odd peers can change them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from appliance.rtp.packet import SEQ_MOD, TS_MOD, seq_add, ts_diff
from appliance.rtp.rtcp import ReportBlock, SenderReport, ntp_from_unix

_LOST_MAX: Final = 0x7FFFFF  # RFC 3550 §A.3: cumulative lost is clamped to signed 24-bit
_LOST_MIN: Final = -0x800000


@dataclass(frozen=True, slots=True)
class SequenceConfig:
    """The constants of RFC 3550 §A.1's ``update_seq``."""

    max_dropout: int = 3000
    max_misorder: int = 100
    min_sequential: int = 2


class ReceiverStats:
    """What we know about one remote source (SSRC), fed every RTP packet it sends."""

    def __init__(self, ssrc: int, clock_rate: int, config: SequenceConfig | None = None) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.config = config or SequenceConfig()
        self._started = False
        self.max_seq = 0
        self.cycles = 0  # shifted count of sequence number wraps, as in the RFC
        self.base_seq = 0
        self.bad_seq = SEQ_MOD + 1
        self.probation = self.config.min_sequential
        self.received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter = 0.0  # timestamp units, RFC 3550 §A.8 "J"
        self._last_arrival: float | None = None
        self._last_ts = 0
        self._lsr = 0
        self._lsr_arrival: float | None = None

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1  # so seq == bad_seq is false
        self.cycles = 0
        self.received = 0
        self._received_prior = 0
        self._expected_prior = 0

    def _update_seq(self, seq: int) -> bool:
        """RFC 3550 §A.1 ``update_seq``: False for a packet that is not (yet) valid."""
        if not self._started:
            self._started = True
            self._init_seq(seq)
            self.max_seq = seq_add(seq, -1)
            self.probation = self.config.min_sequential
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            # the RFC's "seq == max_seq + 1" in C never matches at 65535 -> 0; we wrap
            if seq == seq_add(self.max_seq, 1):
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = self.config.min_sequential - 1
                self.max_seq = seq
            return False
        if udelta < self.config.max_dropout:
            if seq < self.max_seq:  # in order, with permissible gap; wrapped
                self.cycles += SEQ_MOD
            self.max_seq = seq
        elif udelta <= SEQ_MOD - self.config.max_misorder:
            # the sequence made a very large jump
            if seq == self.bad_seq:
                # two sequential packets: assume the other side restarted without
                # telling us, so just re-sync (i.e. pretend this was the first packet)
                self._init_seq(seq)
            else:
                self.bad_seq = seq_add(seq, 1)
                return False
        # else: duplicate or reordered packet, counted as received (RFC 3550 §A.3)
        self.received += 1
        return True

    def update(self, packet_seq: int, packet_ts: int, arrival_seconds: float) -> bool:
        """Account one RTP packet; True when it is valid by RFC 3550 §A.1."""
        if not self._update_seq(packet_seq):
            return False
        if self._last_arrival is not None:
            # RFC 3550 §6.4.1: D(i,j) = (Rj - Ri) - (Sj - Si), in timestamp units;
            # ts_diff keeps it right across the 32-bit timestamp wrap.
            elapsed = (arrival_seconds - self._last_arrival) * self.clock_rate
            d = elapsed - ts_diff(packet_ts, self._last_ts)
            self._jitter += (abs(d) - self._jitter) / 16  # RFC 3550 §A.8
        self._last_arrival = arrival_seconds
        self._last_ts = packet_ts
        return True

    def on_sender_report(self, report: SenderReport, now: float) -> None:
        """Remember an SR from this source for LSR/DLSR (RFC 3550 §6.4.1)."""
        self._lsr = report.ntp_middle32
        self._lsr_arrival = now

    @property
    def extended_highest(self) -> int:
        return (self.cycles + self.max_seq) & 0xFFFFFFFF

    @property
    def expected(self) -> int:
        """RFC 3550 §A.3: extended highest - base + 1; 0 before the source is valid."""
        if self.probation:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost; negative when duplicates outnumber losses."""
        return self.expected - self.received

    @property
    def loss(self) -> float:
        """Cumulative lost / expected, 0.0 to 1.0, for CDRs."""
        expected = self.expected
        return min(max(self.lost / expected, 0.0), 1.0) if expected else 0.0

    @property
    def jitter(self) -> float:
        """The RFC 3550 §A.8 estimate, in timestamp units."""
        return self._jitter

    @property
    def jitter_ms(self) -> float:
        return self._jitter * 1000 / self.clock_rate

    def report_block(self, now: float) -> ReportBlock:
        """A reception report for this source; starts a new §A.3 interval."""
        expected = self.expected
        lost = min(max(expected - self.received, _LOST_MIN), _LOST_MAX)
        expected_interval = expected - self._expected_prior
        self._expected_prior = expected
        received_interval = self.received - self._received_prior
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min((lost_interval << 8) // expected_interval, 0xFF)
        dlsr = 0
        if self._lsr_arrival is not None:
            dlsr = min(max(round((now - self._lsr_arrival) * 65536), 0), 0xFFFFFFFF)
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=lost,
            highest_seq=self.extended_highest,
            jitter=min(int(self._jitter), 0xFFFFFFFF),
            lsr=self._lsr,
            dlsr=dlsr,
        )


class SenderStats:
    """Counts for our own SR (RFC 3550 §6.4.1): packets and payload octets sent."""

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.packet_count = 0
        self.octet_count = 0  # payload octets only, no header or padding
        self._last_ts: int | None = None
        self._last_sent = 0.0

    def on_sent(self, payload_size: int, timestamp: int, now: float) -> None:
        # RFC 3550 §6.4.1: the counts wrap around at 2**32
        self.packet_count = (self.packet_count + 1) & 0xFFFFFFFF
        self.octet_count = (self.octet_count + payload_size) & 0xFFFFFFFF
        self._last_ts = timestamp
        self._last_sent = now

    @property
    def has_sent(self) -> bool:
        return self._last_ts is not None

    def sender_report(
        self, now: float, wallclock: float, reports: tuple[ReportBlock, ...] = ()
    ) -> SenderReport:
        """An SR whose RTP timestamp matches ``wallclock``: the last packet's timestamp
        advanced by the time since it was sent (RFC 3550 §6.4.1 "RTP timestamp")."""
        ntp_seconds, ntp_fraction = ntp_from_unix(wallclock)
        rtp_ts = 0
        if self._last_ts is not None:
            rtp_ts = (self._last_ts + round((now - self._last_sent) * self.clock_rate)) % TS_MOD
        return SenderReport(
            ssrc=self.ssrc,
            ntp_seconds=ntp_seconds,
            ntp_fraction=ntp_fraction,
            rtp_timestamp=rtp_ts,
            packet_count=self.packet_count,
            octet_count=self.octet_count,
            reports=reports,
        )
