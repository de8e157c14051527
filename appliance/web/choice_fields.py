"""Form inputs that choose rather than type: selects, check boxes, and lists of them.

The same shape as `appliance.web.pages.field`: a label, the input with a stable id and
name, and the error (if any) beneath it, linked by aria-describedby.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

import bottle


def _error(name: str, error: str | None) -> tuple[str, str]:
    """(attributes for the input, the error paragraph)."""
    if not error:
        return "", ""
    e = html.escape
    return (
        f' aria-invalid="true" aria-describedby="{e(name)}-error"',
        f'<p class="error" id="{e(name)}-error">{e(error)}</p>',
    )


def select_field(
    name: str,
    label: str,
    options: Sequence[tuple[str, str]],
    selected: str,
    error: str | None,
) -> str:
    """A labelled <select> of (value, text) options with `selected` chosen."""
    e = html.escape
    invalid, message = _error(name, error)
    choices = "".join(
        f'<option value="{e(value)}"{" selected" if value == selected else ""}>{e(text)}</option>'
        for value, text in options
    )
    return (
        f'<div class="field{" invalid" if error else ""}">'
        f'<label for="{e(name)}">{e(label)}</label>'
        f'<select id="{e(name)}" name="{e(name)}"{invalid}>{choices}</select>{message}</div>'
    )


def checkbox_field(name: str, label: str, checked: bool, error: str | None = None) -> str:
    e = html.escape
    invalid, message = _error(name, error)
    return (
        f'<div class="field{" invalid" if error else ""}"><label>'
        f'<input type="checkbox" id="{e(name)}" name="{e(name)}" value="yes"'
        f"{' checked' if checked else ''}{invalid}> {e(label)}</label>{message}</div>"
    )


def checkbox_list(
    name: str,
    legend: str,
    options: Sequence[tuple[str, str]],
    checked: Iterable[str],
    error: str | None,
    disabled: Iterable[str] = (),
) -> str:
    """A fieldset of check boxes sharing one name; `disabled` ones cannot be ticked
    (the server checks again: a disabled box is a hint, not the rule)."""
    e = html.escape
    ticked, off = set(checked), set(disabled)
    invalid, message = _error(name, error)
    boxes = "".join(
        f'<li><label><input type="checkbox" id="{e(name)}-{e(value.replace(":", "-"))}"'
        f' name="{e(name)}" value="{e(value)}"'
        f"{' checked' if value in ticked else ''}{' disabled' if value in off else ''}>"
        f" <code>{e(value)}</code> {e(text)}</label></li>"
        for value, text in options
    )
    return (
        f'<fieldset id="{e(name)}" class="field{" invalid" if error else ""}"{invalid}>'
        f'<legend>{e(legend)}</legend><ul class="choices">{boxes}</ul>{message}</fieldset>'
    )


def form_checked(name: str) -> bool:
    return bool(bottle.request.forms.get(name) == "yes")


def form_all(name: str, limit: int = 100) -> list[str]:
    """Every value of a repeated field (check boxes), bounded."""
    values = bottle.request.forms.getall(name)
    return [str(v)[:64] for v in values[:limit]]
