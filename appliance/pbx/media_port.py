"""What call control asks of the media engine, and what the engine tells it back.

Call control (``b2bua``) is sans-IO and decides; the engine (``appliance.media``)
owns sockets, the media clock and DSP, and carries those decisions out. The engine
is injected as a ``MediaEngine``; its methods are synchronous and cheap (a port is
bound at once, packets flow from the next loop turn), so an SDP answer can name our
port in the same step that accepted the offer. Events the engine sees (DTMF, RTP
stopped) come back through ``MediaEvent`` values the edge feeds to call control.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from appliance.pbx.app_events import PlayItem, RecordEnd
from appliance.pbx.call_events import Dtmf


class MediaUnavailable(Exception):
    """No RTP port pair could be opened (range exhausted); the call gets 503."""


class StreamDirection(Enum):
    """RFC 3264 direction of one leg's stream, from the appliance's side."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"  # we send to the phone, it does not send (it holds us)
    RECVONLY = "recvonly"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class StreamParams:
    """The negotiated stream of one leg: where its phone wants RTP and in what format.

    ``codec`` is "PCMU" or "PCMA"; ``payload_type`` the number agreed in SDP;
    ``telephone_event_pt`` the RFC 4733 payload type, None when the phone has none
    (then DTMF from the other leg goes as SIP INFO and its own is detected in-band).
    """

    remote_host: str
    remote_port: int
    remote_rtcp_port: int | None
    codec: str
    payload_type: int
    telephone_event_pt: int | None
    direction: StreamDirection = StreamDirection.SENDRECV
    ptime_ms: int = 20


@dataclass(frozen=True, slots=True)
class LegQualityReport:
    """RTP figures for one leg when it closes (for the CDR)."""

    packets_received: int
    packets_sent: int
    packets_lost: int  # RFC 3550 §A.3 cumulative, from our own receiver counters
    jitter_ms: float  # RFC 3550 §A.8 interarrival jitter of what we received
    remote_loss_fraction: float | None  # from the phone's last RTCP report block, if any
    remote_jitter_ms: float | None


class MediaLeg(Protocol):
    """One anchored RTP/RTCP port pair, facing one phone."""

    @property
    def leg_id(self) -> str: ...

    @property
    def host(self) -> str: ...  # the address our SDP names (c=)

    @property
    def port(self) -> int: ...  # our RTP port; RTCP is port + 1


class MediaEngine(Protocol):
    def open_leg(self, leg_id: str, peer_host: str) -> MediaLeg:
        """Bind a port pair reachable by a phone at ``peer_host``; MediaUnavailable if none."""
        ...

    def configure(self, leg: MediaLeg, params: StreamParams) -> None:
        """The leg's (re)negotiated stream: remote address, codec, events, direction."""
        ...

    def bridge(self, a: MediaLeg, b: MediaLeg) -> None:
        """Relay RTP/RTCP between two configured legs (transcoding PCMU<->PCMA when
        their codecs differ, RFC 4733 events mapped between their payload types).
        Stops any tone playing on either leg."""
        ...

    def play_tone(self, leg: MediaLeg, tone: str | None) -> None:
        """Play a tone from the country's table ("ringback", "busy", "congestion",
        "dial", "call-waiting") to the leg's phone, paced by the media clock;
        None stops it."""
        ...

    def send_dtmf(self, leg: MediaLeg, digit: str, duration_ms: int) -> None:
        """Send a digit to the leg's phone as RFC 4733 events (the leg has a
        telephone-event payload type)."""
        ...

    def play(
        self, leg: MediaLeg, items: Sequence[PlayItem], language: str, *, loop: bool = False
    ) -> int:
        """Queue prompts or recordings for the leg's phone after whatever is queued,
        paced by the media clock (relaying towards the leg pauses meanwhile); a
        ``PlaybackFinished`` event naming the queue follows when it has run out.
        Returns the queue's number (the same while items are added to one queue).
        ``loop`` repeats the queue until ``stop_playback`` (music on hold). An item
        that cannot be loaded is skipped (logged)."""
        ...

    def unbridge(self, leg: MediaLeg) -> None:
        """Stop relaying between the leg and the one it is bridged to, if any."""
        ...

    def stop_playback(self, leg: MediaLeg) -> bool:
        """Drop the leg's queue at once (no event); True if something was playing."""
        ...

    def record(self, leg: MediaLeg, max_seconds: float, silence_seconds: float) -> None:
        """Keep what the leg's phone sends, decoded, until ``stop_recording`` or until
        the engine ends it (``silence_seconds`` without speech, ``max_seconds``), which
        it reports as ``RecordingStopped``."""
        ...

    def stop_recording(
        self, leg: MediaLeg, end: RecordEnd = RecordEnd.STOPPED
    ) -> RecordedAudio | None:
        """End the leg's recording now, for ``end``, and hand it over (no event);
        None if none."""
        ...

    def close(self, leg: MediaLeg) -> LegQualityReport:
        """Release the port pair (back to the pool) and return the leg's figures."""
        ...


@dataclass(frozen=True, slots=True)
class DtmfDetected:
    """A digit from a leg's phone: RFC 4733 events the other leg cannot take as
    events (``relay_as_info``), or detected in-band. RFC 4733 digits relayed as
    events are reported too, with ``relay_as_info`` False, so each leg has one
    DTMF stream whatever the source."""

    leg_id: str
    dtmf: Dtmf
    relay_as_info: bool


@dataclass(frozen=True, slots=True)
class RtpStopped:
    """No RTP from this leg's phone for the configured timeout while it should send."""

    leg_id: str
    silent_for: float


@dataclass(frozen=True, slots=True)
class RecordedAudio:
    """A finished recording: 16-bit little-endian linear PCM, 8 kHz mono."""

    pcm: bytes
    end: RecordEnd

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 16000


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    """The leg's playback queue ``queue`` (as ``play`` returned it) ran out. It may
    arrive after call control stopped that queue in the same loop turn: compare."""

    leg_id: str
    queue: int


@dataclass(frozen=True, slots=True)
class RecordingStopped:
    """The engine ended a leg's recording (silence or maximum length)."""

    leg_id: str
    audio: RecordedAudio


MediaEvent = DtmfDetected | RtpStopped | PlaybackFinished | RecordingStopped
