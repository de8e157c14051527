"""SDP offer/answer for a media-anchoring PBX: RFC 3264 §5-§8, RFC 4733 events.

The PBX answers every offer with its own address and port (it anchors media), takes
the first audio stream that shares a codec with us, and rejects the rest with port 0.
It makes its own offers, reads the answers to them, and tells a hold re-offer
(RFC 3264 §8.4) from an ordinary one. Everything here is pure: origins, addresses
and ports come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from appliance.sdp.session import (
    NOT_ACCEPTABLE,
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
    bump_version,
)
from appliance.sip.errors import ParseError


class NegotiationError(ParseError):
    """An offer or answer we cannot use; a UAS answers 488 (RFC 3261 §21.4.26)."""

    def __init__(self, reason: str, status: int = NOT_ACCEPTABLE) -> None:
        super().__init__(reason, status)


@dataclass(frozen=True, slots=True)
class Codec:
    """An audio format we can send and receive; ``payload_type`` is what we offer."""

    name: str
    clock_rate: int
    payload_type: int
    channels: int = 1
    fmtp: str | None = None

    def matches(self, name: str, clock_rate: int, channels: int) -> bool:
        # RFC 4855 §3: encoding names are case-insensitive.
        return (
            name.lower() == self.name.lower()
            and clock_rate == self.clock_rate
            and channels == self.channels
        )


PCMU: Final = Codec("PCMU", 8000, 0)
PCMA: Final = Codec("PCMA", 8000, 8)
TELEPHONE_EVENT: Final = Codec("telephone-event", 8000, 101, fmtp="0-16")  # RFC 4733 §7.1
DEFAULT_PTIME: Final = 20  # RFC 3551 §4.5: G.711's default packet time

# RFC 3551 §6 Table 4: static payload types an offer may use without a=rtpmap.
STATIC_TYPES: Final[dict[int, tuple[str, int, int]]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    18: ("G729", 8000, 1),
}
SUPPORTED_PROTOS: Final = frozenset({"RTP/AVP"})
UNSPECIFIED: Final = frozenset({"0.0.0.0", "::"})


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """What we offer and accept: our RTP address, port and codecs in preference order."""

    address: str
    port: int
    codecs: tuple[Codec, ...] = (PCMU, PCMA)
    telephone_event: Codec | None = TELEPHONE_EVENT
    ptime: int | None = DEFAULT_PTIME
    session_name: str = "YakYak"

    @property
    def addrtype(self) -> str:
        return "IP6" if ":" in self.address else "IP4"

    @property
    def connection(self) -> Connection:
        return Connection("IN", self.addrtype, self.address)


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """What both ends agreed for the audio stream, seen from our side."""

    codec: str
    payload_type: int
    clock_rate: int
    remote_address: str
    remote_port: int
    remote_rtcp_port: int | None
    telephone_event_pt: int | None
    direction: Direction
    ptime: int


@dataclass(frozen=True, slots=True)
class Answer:
    session: SessionDescription
    media: NegotiatedMedia


def new_origin(sess_id: int, address: str, username: str = "yakyak") -> Origin:
    """A fresh ``o=`` (RFC 8866 §5.2); the caller picks ``sess_id`` from its rng."""
    addrtype = "IP6" if ":" in address else "IP4"
    return Origin(username, str(sess_id), sess_id, "IN", addrtype, address)


def format_of(media: MediaDescription, payload_type: int) -> tuple[str, int, int] | None:
    """(encoding, clock rate, channels) from a=rtpmap, else the static table."""
    mapped = media.rtpmap(payload_type)
    if mapped is not None:
        return mapped
    return STATIC_TYPES.get(payload_type)


def _payload_types(media: MediaDescription) -> list[int]:
    out: list[int] = []
    for fmt in media.formats:
        if fmt.isascii() and fmt.isdigit() and len(fmt) <= 3 and int(fmt) <= 127:
            if int(fmt) not in out:  # a repeated format is listed once
                out.append(int(fmt))
    return out


def _telephone_event_pt(
    media: MediaDescription, clock_rate: int, fallback: MediaDescription | None = None
) -> int | None:
    """The RFC 4733 event payload type at ``clock_rate``; ``fallback`` supplies rtpmaps
    an answer left out (RFC 3264 §6.1 lets it reuse the offer's numbers)."""
    for pt in _payload_types(media):
        fmt = format_of(media, pt)
        if fmt is None and fallback is not None:
            fmt = format_of(fallback, pt)
        if fmt is not None and fmt[0].lower() == "telephone-event" and fmt[1] == clock_rate:
            return pt
    return None


def _remote_address(media: MediaDescription, session: SessionDescription) -> Connection:
    conn = media.effective_connection(session)
    if conn is None:  # parse() refuses this for port != 0; a hand-built value may not
        raise NegotiationError("no connection address for the audio stream")
    if conn.nettype != "IN" or conn.addrtype not in ("IP4", "IP6"):
        raise NegotiationError(f"unsupported address type {conn.nettype} {conn.addrtype}")
    return conn


def _remote_rtcp_port(media: MediaDescription) -> int | None:
    if media.port == 0:
        return None
    explicit = media.rtcp_port  # RFC 3605 §2.1
    if explicit is not None:
        return explicit
    return media.port + 1 if media.port < 65535 else None  # RFC 3550 §11: RTP port + 1


def _effective_direction(media: MediaDescription, session: SessionDescription) -> Direction:
    """The stream's direction from its sender's side; c=0.0.0.0 means "do not send to me"."""
    direction = media.direction(session)
    conn = media.effective_connection(session)
    if conn is not None and conn.host in UNSPECIFIED:
        return Direction.from_flags(direction.sends, False)  # RFC 3264 §8.4
    return direction


def answer_direction(offered: Direction, wanted: Direction = Direction.SENDRECV) -> Direction:
    """RFC 3264 §6.1: we send only if the offerer receives, receive only if it sends."""
    return Direction.from_flags(
        offered.receives and wanted.sends, offered.sends and wanted.receives
    )


def _rejected(media: MediaDescription) -> MediaDescription:
    # RFC 3264 §6: a rejected stream keeps its formats, with port 0.
    return MediaDescription(media.media, 0, media.proto, media.formats)


def _codec_attributes(
    pts: list[tuple[int, str, int, int]], fmtps: dict[int, str]
) -> list[Attribute]:
    attrs: list[Attribute] = []
    for pt, name, rate, channels in pts:
        suffix = f"/{channels}" if channels != 1 else ""
        attrs.append(("rtpmap", f"{pt} {name}/{rate}{suffix}"))
        if pt in fmtps:
            attrs.append(("fmtp", f"{pt} {fmtps[pt]}"))
    return attrs


def make_answer(
    offer: SessionDescription,
    local: LocalMedia,
    origin: Origin,
    wanted: Direction = Direction.SENDRECV,
) -> Answer:
    """Answer ``offer`` (RFC 3264 §6) or raise ``NegotiationError`` (488)."""
    answered: list[MediaDescription] = []
    negotiated: NegotiatedMedia | None = None
    for m in offer.media:
        if negotiated is not None or m.media != "audio" or m.port == 0:
            answered.append(_rejected(m))
            continue
        if m.proto not in SUPPORTED_PROTOS:
            answered.append(_rejected(m))
            continue
        common: list[tuple[int, str, int, int]] = []
        first: tuple[int, Codec] | None = None
        for pt in _payload_types(m):
            fmt = format_of(m, pt)
            if fmt is None:
                continue
            for codec in local.codecs:
                if codec.matches(*fmt):
                    # RFC 3264 §6.1: keep the offerer's numbers and its order.
                    common.append((pt, codec.name, codec.clock_rate, codec.channels))
                    if first is None:
                        first = (pt, codec)
                    break
        if first is None:
            answered.append(_rejected(m))
            continue
        pt, codec = first
        fmtps: dict[int, str] = {}
        te_pt: int | None = None
        if local.telephone_event is not None:
            te_pt = _telephone_event_pt(m, codec.clock_rate)
            if te_pt is not None:
                te = local.telephone_event
                common.append((te_pt, te.name, te.clock_rate, te.channels))
                offered_fmtp = m.fmtp(te_pt)
                if offered_fmtp is not None:
                    fmtps[te_pt] = offered_fmtp  # RFC 4733 §7.1.1: echo the events offered
        conn = _remote_address(m, offer)
        direction = answer_direction(_effective_direction(m, offer), wanted)
        attrs = _codec_attributes(common, fmtps)
        if local.ptime is not None:
            attrs.append(("ptime", str(local.ptime)))
        attrs.append((direction.value, None))
        answered.append(
            MediaDescription(
                "audio",
                local.port,
                m.proto,
                tuple(str(p[0]) for p in common),
                attributes=tuple(attrs),
            )
        )
        negotiated = NegotiatedMedia(
            codec=codec.name,
            payload_type=pt,
            clock_rate=codec.clock_rate,
            remote_address=conn.host,
            remote_port=m.port,
            remote_rtcp_port=_remote_rtcp_port(m),
            telephone_event_pt=te_pt,
            direction=direction,
            ptime=m.ptime or local.ptime or DEFAULT_PTIME,
        )
    if negotiated is None:
        raise NegotiationError("no common audio codec")
    session = SessionDescription(
        origin=origin,
        name=local.session_name,
        connection=local.connection,
        timing=(Timing(),),
        media=tuple(answered),
    )
    return Answer(session, negotiated)


def make_offer(
    local: LocalMedia, origin: Origin, direction: Direction = Direction.SENDRECV
) -> SessionDescription:
    """Our offer (RFC 3264 §5): one audio stream with our codecs in preference order."""
    pts = [(c.payload_type, c.name, c.clock_rate, c.channels) for c in local.codecs]
    fmtps = {c.payload_type: c.fmtp for c in local.codecs if c.fmtp is not None}
    te = local.telephone_event
    if te is not None:
        pts.append((te.payload_type, te.name, te.clock_rate, te.channels))
        if te.fmtp is not None:
            fmtps[te.payload_type] = te.fmtp
    attrs = _codec_attributes(pts, fmtps)
    if local.ptime is not None:
        attrs.append(("ptime", str(local.ptime)))
    attrs.append((direction.value, None))
    audio = MediaDescription(
        "audio", local.port, "RTP/AVP", tuple(str(p[0]) for p in pts), attributes=tuple(attrs)
    )
    return SessionDescription(
        origin=origin,
        name=local.session_name,
        connection=local.connection,
        timing=(Timing(),),
        media=(audio,),
    )


def apply_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """Read the answer to our ``offer`` (RFC 3264 §5, §6); raise ``NegotiationError``."""
    if len(answer.media) != len(offer.media):
        raise NegotiationError(
            f"answer has {len(answer.media)} media sections, offer had {len(offer.media)}"
        )
    result: NegotiatedMedia | None = None
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        if theirs.media != ours.media:
            raise NegotiationError(f"media section {index} is {theirs.media}, not {ours.media}")
        if theirs.port == 0:
            continue  # rejected (RFC 3264 §6)
        if ours.port == 0:
            raise NegotiationError(f"media section {index} was rejected in the offer")
        offered = set(ours.formats)
        extra = [f for f in theirs.formats if f not in offered]
        if extra:
            raise NegotiationError(f"answer uses formats we did not offer: {' '.join(extra)}")
        if result is not None or ours.media != "audio":
            continue
        codec: tuple[int, str, int] | None = None
        for pt in _payload_types(theirs):
            fmt = format_of(theirs, pt) or format_of(ours, pt)
            if fmt is None or fmt[0].lower() == "telephone-event":
                continue
            codec = (pt, fmt[0], fmt[1])
            break
        if codec is None:
            raise NegotiationError(f"no audio codec in answer section {index}")
        pt, name, rate = codec
        te_pt = _telephone_event_pt(theirs, rate, fallback=ours)
        conn = _remote_address(theirs, answer)
        # We send if we offered to send and they receive (RFC 3264 §6.1).
        theirs_direction = _effective_direction(theirs, answer)
        ours_direction = ours.direction(offer)
        direction = Direction.from_flags(
            ours_direction.sends and theirs_direction.receives,
            ours_direction.receives and theirs_direction.sends,
        )
        result = NegotiatedMedia(
            codec=name,
            payload_type=pt,
            clock_rate=rate,
            remote_address=conn.host,
            remote_port=theirs.port,
            remote_rtcp_port=_remote_rtcp_port(theirs),
            telephone_event_pt=te_pt,
            direction=direction,
            ptime=theirs.ptime or ours.ptime or DEFAULT_PTIME,
        )
    if result is None:
        raise NegotiationError("answer accepted no audio stream")
    return result


def is_hold(session: SessionDescription) -> bool:
    """A (re-)offer that puts us on hold (RFC 3264 §8.4).

    True when the first active audio stream is sendonly or inactive, or its address
    is 0.0.0.0 (the RFC 2543 style). An offer with no active audio is not a hold.
    """
    for m in session.media:
        if m.media == "audio" and m.port != 0:
            direction = m.direction(session)
            conn = m.effective_connection(session)
            if conn is not None and conn.host in UNSPECIFIED:
                return True
            return not direction.receives
    return False


def hold_offer(previous: SessionDescription) -> SessionDescription:
    """Our previous offer turned into a hold re-offer: sendonly, version + 1."""
    return _redirect(previous, Direction.SENDONLY)


def resume_offer(previous: SessionDescription) -> SessionDescription:
    """Our previous offer turned back to sendrecv, version + 1."""
    return _redirect(previous, Direction.SENDRECV)


def _redirect(previous: SessionDescription, direction: Direction) -> SessionDescription:
    directions = {d.value for d in Direction}
    media = tuple(
        replace(
            m,
            attributes=(
                *(a for a in m.attributes if not (a[1] is None and a[0] in directions)),
                (direction.value, None),
            ),
        )
        if m.port != 0
        else m
        for m in previous.media
    )
    return bump_version(replace(previous, media=media))
