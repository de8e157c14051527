"""Finding the dialog a message belongs to, and forked early dialogs: RFC 3261 §12.2.2,
§12.2.1.2, §13.2.2.4 (a UAC INVITE answered by several UASs).

Requests match on Call-ID, To tag (ours) and From tag (theirs); responses on Call-ID,
From tag (ours) and To tag (theirs). On the UAC side one INVITE may fork into several
early dialogs, one per To tag; the first 2xx wins and the TU is told which other
dialogs to end, since whether to CANCEL or BYE them is a call-control decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from appliance.sip.dialog import Dialog, DialogError, DialogId, DialogState, Role
from appliance.sip.errors import ParseError
from appliance.sip.message import Request, Response

MAX_DIALOGS: Final = 10_000  # far above what the appliance's lines and trunks carry
MAX_FORKS: Final = 16  # early dialogs kept per INVITE; more To tags are refused


@dataclass(frozen=True, slots=True)
class ForkOutcome:
    """What one response to our INVITE did to the dialogs of that INVITE.

    ``dialog`` is the dialog the response belongs to (None for a tagless 1xx or a
    final non-2xx). ``to_end`` lists dialogs the TU should end: on the first 2xx, the
    other forks still early (CANCEL the INVITE, BYE any that answer); on a 2xx from
    a second fork, that fork's new dialog itself (ACK it, then BYE). ``terminated``
    lists early dialogs that a final non-2xx ended (§12.3); they left the table.
    """

    dialog: Dialog | None
    created: bool = False
    to_end: tuple[Dialog, ...] = ()
    terminated: tuple[Dialog, ...] = ()


class DialogTable:
    """Dialogs by DialogId, with the forks of each UAC INVITE grouped."""

    __slots__ = ("_dialogs", "_forks", "limit")

    def __init__(self, limit: int = MAX_DIALOGS) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}
        # (Call-ID, our tag) -> remote tags seen for it, in arrival order
        self._forks: dict[tuple[str, str], list[str]] = {}
        self.limit = limit

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def __contains__(self, dialog_id: object) -> bool:
        return dialog_id in self._dialogs

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def add(self, dialog: Dialog) -> None:
        if dialog.id in self._dialogs:
            raise DialogError(f"dialog {dialog.id} already exists", 500)
        if len(self._dialogs) >= self.limit:
            raise DialogError("dialog table full", 503)
        group = self._forks.setdefault((dialog.id.call_id, dialog.id.local_tag), [])
        if len(group) >= MAX_FORKS:
            raise DialogError(f"more than {MAX_FORKS} forks for one INVITE", 503)
        group.append(dialog.id.remote_tag)
        self._dialogs[dialog.id] = dialog

    def remove(self, dialog_id: DialogId) -> Dialog | None:
        dialog = self._dialogs.pop(dialog_id, None)
        if dialog is not None:
            key = (dialog_id.call_id, dialog_id.local_tag)
            group = self._forks.get(key, [])
            if dialog_id.remote_tag in group:
                group.remove(dialog_id.remote_tag)
            if not group:
                self._forks.pop(key, None)
        return dialog

    def remove_terminated(self) -> list[Dialog]:
        """Forget every terminated dialog; returns them."""
        ended = [d for d in self._dialogs.values() if d.state is DialogState.TERMINATED]
        for dialog in ended:
            self.remove(dialog.id)
        return ended

    def forks(self, call_id: str, local_tag: str) -> list[Dialog]:
        """The dialogs of one of our INVITEs (or the one dialog of a UAS leg)."""
        tags = self._forks.get((call_id, local_tag), [])
        return [self._dialogs[DialogId(call_id, local_tag, tag)] for tag in tags]

    def match_request(self, request: Request) -> Dialog | None:
        """The dialog of an incoming request (§12.2.2), or None (answer 481)."""
        try:
            local = request.to_addr().tag
            remote = request.from_addr().tag or ""
            call_id = request.call_id
        except ParseError:
            return None
        if local is None:
            return None  # no To tag: outside any dialog
        return self._dialogs.get(DialogId(call_id, local, remote))

    def match_response(self, response: Response) -> Dialog | None:
        """The dialog of a response to one of our requests, or None."""
        try:
            local = response.from_addr().tag
            remote = response.to_addr().tag
            call_id = response.call_id
        except ParseError:
            return None
        if local is None or remote is None:
            return None
        return self._dialogs.get(DialogId(call_id, local, remote))

    def uac_response(self, invite: Request, response: Response, now: float) -> ForkOutcome:
        """A response to our initial ``invite``: create, confirm or end its dialogs."""
        try:
            call_id = invite.call_id
            local_tag = invite.from_addr().tag
            remote_tag = response.to_addr().tag
        except ParseError as exc:
            raise DialogError(f"bad response: {exc.reason}", exc.status) from exc
        if local_tag is None:
            raise DialogError("our INVITE has no From tag (§8.1.1.3)")
        status = response.status
        if status >= 300:
            return self._failed(call_id, local_tag, response, now)
        if remote_tag is None:
            if status >= 200:
                raise DialogError("a 2xx without a To tag creates no dialog (§12.1.2)")
            return ForkOutcome(None)  # 100 Trying, or a 1xx that makes no dialog
        dialog = self._dialogs.get(DialogId(call_id, local_tag, remote_tag))
        created = dialog is None
        if dialog is None:
            dialog = Dialog.from_uac(invite, response, now=now)
            self.add(dialog)
        else:
            dialog.receive_response(response, now)
        if status < 200:
            return ForkOutcome(dialog, created)
        siblings = [d for d in self.forks(call_id, local_tag) if d is not dialog]
        if any(d.state is DialogState.CONFIRMED for d in siblings):
            return ForkOutcome(dialog, created, to_end=(dialog,))
        early = tuple(d for d in siblings if d.state is DialogState.EARLY)
        return ForkOutcome(dialog, created, to_end=early)

    def _failed(self, call_id: str, local_tag: str, response: Response, now: float) -> ForkOutcome:
        # §13.2.2.3/§12.3: a final non-2xx ends every early dialog of the INVITE.
        ended: list[Dialog] = []
        for dialog in self.forks(call_id, local_tag):
            if dialog.role is Role.UAC and dialog.state is DialogState.EARLY:
                dialog.terminate()
                self.remove(dialog.id)
                ended.append(dialog)
        return ForkOutcome(None, terminated=tuple(ended))
