"""Voicemail in the browser: mailboxes, their messages, playing, downloading, deleting.

`voicemail:read` sees every mailbox, `voicemail:read_own` only the account's own
extension's (others look absent, 404). Deleting needs `voicemail:delete`, or
`voicemail:delete_own` for one's own box, and goes through `VoicemailStore`, which
removes the file and marks the row in the order its crash rules want.

A message is named in URLs by its file name (msg-<ms>-<token>.wav): the store looks
it up among the box's live messages, and the path served is checked to resolve to a
plain file directly in the box's folder, so no request can name another file.
Playing needs no script: an <audio controls> element whose source is the message's
route (inline), beside a download link (attachment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import bottle

from appliance.pbx.app_events import MessageInfo, MessageStatus
from appliance.store.errors import NotFoundError
from appliance.store.voicemail import MailboxSummary, VoicemailStore
from appliance.web.audit_trail import change
from appliance.web.auth import Principal, current, see_other
from appliance.web.pages import page, when
from appliance.web.registry import Registry
from appliance.web.schemas import NULLABLE_STRING, obj
from appliance.web.services import WebServices

VOICEMAIL_FOLDER: Final = "voicemail"
WAV_TYPE: Final = "audio/wav"  # RFC 2361's audio/wav; every browser plays it
NOTICES: Final = {"deleted": "The message has been deleted."}

MAILBOX: Final = obj(
    {
        "number": {"type": "string"},
        "name": NULLABLE_STRING,
        "enabled": {"type": "boolean"},
        "new": {"type": "integer"},
        "old": {"type": "integer"},
    }
)
MESSAGE: Final = obj(
    {
        "id": {"type": "integer"},
        "name": {"type": "string", "description": "the audio file's name, used in its URL"},
        "caller": {"type": "string"},
        "caller_name": NULLABLE_STRING,
        "received_at": {"type": "number", "description": "Unix time"},
        "duration": {"type": "number", "description": "seconds"},
        "status": {"enum": ["new", "read", "saved"]},
        "urgent": {"type": "boolean"},
        "audio": {"type": "string", "description": "GET this path for the WAV"},
    }
)
MAILBOX_MESSAGES: Final = obj({"mailbox": MAILBOX, "messages": {"type": "array", "items": MESSAGE}})


def file_name(message: MessageInfo) -> str:
    return Path(message.recording.path).name


def message_dict(number: str, message: MessageInfo) -> dict[str, object]:
    name = file_name(message)
    return {
        "id": message.id,
        "name": name,
        "caller": message.caller,
        "caller_name": message.caller_name,
        "received_at": message.received_at,
        "duration": message.duration,
        "status": message.status.value,
        "urgent": message.urgent,
        "audio": f"/api/voicemail/{number}/messages/{name}",
    }


def mailbox_dict(box: MailboxSummary) -> dict[str, object]:
    return {
        "number": box.number,
        "name": box.name,
        "enabled": box.enabled,
        "new": box.new,
        "old": box.old,
    }


def visible(principal: Principal, number: str) -> None:
    """Others' mailboxes look absent to an account with only voicemail:read_own."""
    if not principal.may("voicemail:read") and principal.extension != number:
        raise NotFoundError(f"no mailbox {number}")


def may_delete(principal: Principal, number: str) -> bool:
    return principal.may("voicemail:delete") or (
        principal.may("voicemail:delete_own") and principal.extension == number
    )


def audio_path(store: VoicemailStore, number: str, name: str) -> tuple[MessageInfo, Path]:
    """The live message in file `name` of box `number`, and its checked path; 404 if none."""
    message = store.message_in_file(number, name)
    if message is None:
        raise NotFoundError(f"no message {name} in mailbox {number}")
    box = (store.root / number).resolve()
    path = Path(message.recording.path)
    # The row names the file; still, serve it only as a plain file right in the box.
    if path.is_symlink() or path.resolve().parent != box or not path.is_file():
        raise NotFoundError(f"the audio of message {name} is missing")
    return message, path.resolve()


def serve_wav(path: Path, *, download: bool) -> bottle.HTTPResponse:
    """The WAV with Range support (browsers seek with it) and the right disposition."""
    response = bottle.static_file(
        path.name,
        root=str(path.parent),
        mimetype=WAV_TYPE,
        download=path.name if download else False,
    )
    if response.status_code < 300:
        kind = "attachment" if download else "inline"
        response.set_header("Content-Disposition", f'{kind}; filename="{path.name}"')
    return response


MAILBOXES: Final = bottle.SimpleTemplate("""% if not boxes:
<p>{{empty}}</p>
% else:
<table>
<thead><tr><th>Mailbox</th><th>Name</th><th>New</th><th>Old</th><th></th></tr></thead>
<tbody>
% for b in boxes:
<tr><td><a href="/voicemail/{{b.number}}">{{b.number}}</a></td><td>{{b.name or ''}}</td>
<td>{{b.new}}</td><td>{{b.old}}</td><td>{{'' if b.enabled else 'disabled'}}</td></tr>
% end
</tbody>
</table>
% end
""")

MESSAGES: Final = bottle.SimpleTemplate("""% if notice:
<p class="notice">{{notice}}</p>
% end
% if all_boxes:
<p><a href="/voicemail">All mailboxes</a></p>
% end
% if not messages:
<p>No messages.</p>
% else:
<table>
<thead><tr><th></th><th>Received (UTC)</th><th>Caller</th><th>Length</th><th>Listen</th>
<th></th><th></th></tr></thead>
<tbody>
% for m in messages:
<tr><td>{{'new' if m.status.value == 'new' else 'old'}}{{', urgent' if m.urgent else ''}}</td>
<td>{{when(m.received_at)}}</td>
<td>{{(m.caller_name + ' <' + m.caller + '>') if m.caller_name else m.caller}}</td>
<td>{{seconds(m.duration)}}</td>
<td><audio controls preload="none" src="/voicemail/{{number}}/{{name(m)}}"></audio></td>
<td><a href="/voicemail/{{number}}/{{name(m)}}/download" download>Download</a></td>
<td>
% if deletable:
<form method="post" action="/voicemail/{{number}}/{{name(m)}}/delete" class="inline">
<input type="hidden" name="csrf_token" value="{{csrf_token}}">
<button type="submit">Delete</button></form>
% end
</td></tr>
% end
</tbody>
</table>
% end
""")


def seconds(value: float) -> str:
    whole = max(0, round(value))
    return f"{whole // 60}:{whole % 60:02d}"


def register_voicemail_pages(reg: Registry, services: WebServices) -> None:
    def store() -> VoicemailStore:
        if services.data_dir is None:
            raise bottle.HTTPError(
                503, "voicemail is not available: this server has no data folder"
            )
        return VoicemailStore(services.db, services.data_dir / VOICEMAIL_FOLDER)

    def boxes_for(principal: Principal, vm: VoicemailStore) -> list[MailboxSummary]:
        boxes = vm.mailboxes()
        if principal.may("voicemail:read"):
            return boxes
        return [b for b in boxes if b.number == principal.extension]

    def summary(vm: VoicemailStore, number: str) -> tuple[MailboxSummary, list[MessageInfo]]:
        visible(current(), number)
        messages = vm.live_messages(number)
        box = next((b for b in vm.mailboxes() if b.number == number), None)
        if messages is None or box is None:
            raise NotFoundError(f"no mailbox {number}")
        return box, messages

    def delete(vm: VoicemailStore, number: str, name: str) -> None:
        principal = current()
        visible(principal, number)
        if not may_delete(principal, number):
            raise bottle.HTTPError(403, "you may delete only your own mailbox's messages")
        message, _ = audio_path(vm, number, name)
        with change(services, "voicemail.delete", f"{number}/{name}", f"from {message.caller}"):
            if not vm.set_status(number, message.id, MessageStatus.DELETED):
                raise NotFoundError(f"no message {name} in mailbox {number}")

    # -- pages -------------------------------------------------------------------

    @reg.add("GET", "/voicemail", "voicemail:read_own", "Mailboxes", nav="Voicemail", nav_order=35)
    def mailboxes() -> str:
        principal = current()
        boxes = boxes_for(principal, store())
        if principal.may("voicemail:read"):
            empty = "No extension has a mailbox yet."
        elif principal.extension is None:
            empty = "No extension is tied to your account, so there is no mailbox to show."
        else:
            empty = f"Extension {principal.extension} has no mailbox."
        return page("Voicemail", str(MAILBOXES.render(boxes=boxes, empty=empty)))

    @reg.add("GET", "/voicemail/<number>", "voicemail:read_own", "Messages of a mailbox")
    def mailbox(number: str) -> str:
        principal = current()
        box, messages = summary(store(), number)
        body = MESSAGES.render(
            notice=NOTICES.get(bottle.request.query.get("notice") or "", ""),
            all_boxes=principal.may("voicemail:read"),
            messages=messages,
            number=number,
            name=file_name,
            when=when,
            seconds=seconds,
            deletable=may_delete(principal, number),
            csrf_token=principal.session.csrf_token if principal.session else "",
        )
        title = f"Mailbox {number}" + (f" ({box.name})" if box.name else "")
        return page(title, str(body))

    @reg.add("GET", "/voicemail/<number>/<name>", "voicemail:read_own", "Play a message (WAV)")
    def play(number: str, name: str) -> bottle.HTTPResponse:
        visible(current(), number)
        _, path = audio_path(store(), number, name)
        return serve_wav(path, download=False)

    @reg.add(
        "GET", "/voicemail/<number>/<name>/download", "voicemail:read_own", "Download a message"
    )
    def download(number: str, name: str) -> bottle.HTTPResponse:
        visible(current(), number)
        _, path = audio_path(store(), number, name)
        return serve_wav(path, download=True)

    @reg.add(
        "POST", "/voicemail/<number>/<name>/delete", "voicemail:delete_own", "Delete a message"
    )
    def delete_page(number: str, name: str) -> str:
        delete(store(), number, name)
        return see_other(f"/voicemail/{number}?notice=deleted")

    # -- API ---------------------------------------------------------------------

    @reg.add(
        "GET",
        "/api/voicemail",
        "voicemail:read_own",
        "List mailboxes (only your own without voicemail:read)",
        response=obj({"items": {"type": "array", "items": MAILBOX}}),
    )
    def mailboxes_api() -> dict[str, object]:
        boxes = boxes_for(current(), store())
        return {"items": [mailbox_dict(b) for b in boxes]}

    @reg.add(
        "GET",
        "/api/voicemail/<number>",
        "voicemail:read_own",
        "A mailbox and its messages, newest first",
        response=MAILBOX_MESSAGES,
    )
    def mailbox_api(number: str) -> dict[str, object]:
        box, messages = summary(store(), number)
        return {
            "mailbox": mailbox_dict(box),
            "messages": [message_dict(number, m) for m in messages],
        }

    @reg.add(
        "GET",
        "/api/voicemail/<number>/messages/<name>",
        "voicemail:read_own",
        "A message's audio (audio/wav)",
        produces="audio/wav",
    )
    def message_api(number: str, name: str) -> bottle.HTTPResponse:
        visible(current(), number)
        _, path = audio_path(store(), number, name)
        return serve_wav(path, download=True)

    @reg.add(
        "DELETE",
        "/api/voicemail/<number>/messages/<name>",
        "voicemail:delete_own",
        "Delete a message",
        status=204,
    )
    def delete_api(number: str, name: str) -> str:
        delete(store(), number, name)
        bottle.response.status = 204
        return ""
