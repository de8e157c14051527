"""How the B2BUA reaches call applications, and what it asks of the store edge for them.

The B2BUA hosts applications (``app_events.CallApp``) on calls the appliance answers
itself. ``CallApps`` is injected: it knows which extensions have a mailbox, builds
an application for a target, and names an extension's music-on-hold class. Mailbox
work (loading, PINs, keeping a message) and writing a recording to a file are
blocking, so they leave the B2BUA as ``AppRequest`` and ``SaveRecording`` actions;
the edge does them in a worker thread and feeds the answer back with
``B2bua.app_event``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from appliance.pbx.app_events import (
    CallApp,
    StartMailboxAccess,
    StartMenu,
    StartVoicemail,
    StoreAction,
)
from appliance.pbx.media_port import RecordedAudio

AppTarget = StartVoicemail | StartMailboxAccess | StartMenu


class CallApps(Protocol):
    def has_mailbox(self, extension: str) -> bool: ...

    def create(
        self,
        target: AppTarget,
        caller: str,
        caller_name: str | None,
        wall: float,
        *,
        trusted: bool = True,
    ) -> CallApp | None:
        """The application for ``target`` (None: no such mailbox or menu);
        ``wall`` is the Unix time, for schedules. ``trusted`` False: ``caller`` is a
        number a trunk asserted, never the owner of anything here."""
        ...

    def music_class(self, extension: str) -> str | None:
        """The music-on-hold class the extension's callers hear (None: silence)."""
        ...


@dataclass(frozen=True, slots=True)
class AppRequest:
    """A mailbox action of the application on call ``call``, for the store edge."""

    call: int
    action: StoreAction


@dataclass(frozen=True, slots=True)
class SaveRecording:
    """Write ``audio`` to a new file; answer with ``RecordingDone`` for call ``call``."""

    call: int
    audio: RecordedAudio
