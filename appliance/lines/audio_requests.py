"""What a port has asked of its audio side, so that it asks only for changes.

Both port kinds bridge their audio to a call and run one detector (DTMF on an FXS
port, call-progress tones on an FXO line); each request is an action only when it
changes something, which keeps the action lists the tests read short and exact.
"""

from __future__ import annotations

from appliance.lines.port_actions import (
    ConnectAudio,
    Detect,
    Detector,
    DisconnectAudio,
    PortAction,
)


class AudioRequests:
    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.bridged = False
        self.detecting = False

    def connect(self) -> list[PortAction]:
        if self.bridged:
            return []
        self.bridged = True
        return [ConnectAudio()]

    def disconnect(self) -> list[PortAction]:
        if not self.bridged:
            return []
        self.bridged = False
        return [DisconnectAudio()]

    def detect(self, on: bool) -> list[PortAction]:
        if self.detecting == on:
            return []
        self.detecting = on
        return [Detect(self.detector, on)]
