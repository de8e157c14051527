"""SDP glue for call control: bodies to sessions, negotiated media to engine parameters."""

from __future__ import annotations

from appliance.pbx.call_events import MediaOffer
from appliance.pbx.media_port import MediaLeg, StreamDirection, StreamParams
from appliance.sdp.negotiate import PCMA, PCMU, Codec, LocalMedia, NegotiatedMedia, NegotiationError
from appliance.sdp.session import SessionDescription, parse
from appliance.sip.errors import ParseError
from appliance.sip.message import Request, Response

SDP_TYPE = "application/sdp"
_CODECS = {"PCMU": PCMU, "PCMA": PCMA}


def sdp_of(message: Request | Response) -> SessionDescription | None:
    """The SDP body of a message, None without one; NegotiationError (488/400) if unreadable."""
    if not message.body.strip():
        return None
    kind = (message.get("Content-Type") or SDP_TYPE).split(";")[0].strip().lower()
    if kind != SDP_TYPE:
        raise NegotiationError(f"body of type {kind[:40]} is not SDP", 415)
    try:
        return parse(message.body)
    except ParseError as exc:
        raise NegotiationError(f"bad SDP: {exc.reason}", 400) from exc


def local_media(leg: MediaLeg, prefer: str | None = None) -> LocalMedia:
    """Our side of a leg's SDP; ``prefer`` puts one codec first (no transcoding needed)."""
    codecs: tuple[Codec, ...] = (PCMU, PCMA)
    if prefer is not None and prefer.upper() in _CODECS:
        first = _CODECS[prefer.upper()]
        codecs = (first, *(c for c in codecs if c is not first))
    return LocalMedia(leg.host, leg.port, codecs)


def stream_params(media: NegotiatedMedia) -> StreamParams:
    return StreamParams(
        remote_host=media.remote_address,
        remote_port=media.remote_port,
        remote_rtcp_port=media.remote_rtcp_port,
        codec=media.codec.upper(),
        payload_type=media.payload_type,
        telephone_event_pt=media.telephone_event_pt,
        direction=StreamDirection(media.direction.value),
        ptime_ms=media.ptime,
    )


def media_offer(params: StreamParams) -> MediaOffer:
    """The protocol-neutral view of a negotiated stream, for call events."""
    return MediaOffer(
        codecs=(params.codec,),
        telephone_event=params.telephone_event_pt is not None,
        address=params.remote_host,
        port=params.remote_port,
        ptime_ms=params.ptime_ms,
    )
