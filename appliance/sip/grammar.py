"""Lexical helpers shared by the header parsers (RFC 3261 §25.1).

Everything here splits or scans strings while respecting quoted strings (with
backslash escapes) and angle-bracketed URIs, which is what makes SIP's comma and
semicolon separators ambiguous for naive ``str.split``.
"""

from __future__ import annotations

import re
from typing import Final

from appliance.sip.errors import ParseError

Params = tuple[tuple[str, str | None], ...]

TOKEN_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)


_TOKEN: Final = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# Parameters in their everyday spelling: no quotes, no white space. Anything else
# takes the general path below, which gives the same result where both apply.
_PLAIN_PARAMS: Final = re.compile(r"(?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[^;\s\"=]+)?)*")


def is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def split_unquoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings and <...>; parts are stripped."""
    if '"' not in text:
        if sep not in text:
            return [text.strip()]
        if "<" not in text:
            return [part.strip() for part in text.split(sep)]
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if in_quotes:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quotes = False
        elif c == '"':
            in_quotes = True
        elif c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == sep and not in_angle:
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    if in_quotes:
        raise ParseError("unterminated quoted string")
    parts.append(text[start:].strip())
    return parts


# Everything before the first '<' that is outside a quoted string (escapes honoured).
_BEFORE_LT: Final = re.compile(r'(?:[^"<]|"(?:[^"\\]|\\.)*")*')


def find_unquoted_lt(text: str) -> int:
    """Index of the first '<' outside quoted strings, or -1 (name-addr, RFC 3261 §25.1)."""
    match = _BEFORE_LT.match(text)  # a `*` pattern: always matches, maybe empty
    end = match.end() if match else 0
    if end == len(text):
        return -1
    if text[end] == '"':
        raise ParseError("unterminated quoted string")
    return end


def split_list(value: str) -> list[str]:
    """Values of a comma-separated header (RFC 3261 §7.3.1), empty items dropped."""
    return [item for item in split_unquoted(value, ",") if item]


def unquote(text: str) -> str:
    """The content of a quoted-string, escapes resolved (RFC 3261 §25.1 quoted-pair)."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ParseError(f"not a quoted string: {text[:40]!r}")
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    i = 0
    while i < len(inner):
        c = inner[i]
        if c == "\\":
            i += 1
            if i == len(inner):
                raise ParseError("dangling escape in quoted string")
            c = inner[i]
        out.append(c)
        i += 1
    return "".join(out)


def quote(text: str) -> str:
    """A quoted-string for ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str) -> Params:
    """``;a=b;c;d="x y"`` (leading ';' optional) into ((name, value), ...).

    Names keep their case (round trips are exact); compare with ``param()``.
    """
    if not text:
        return ()
    plain = text if text[0] == ";" else ";" + text
    if _PLAIN_PARAMS.fullmatch(plain) is not None:
        out: list[tuple[str, str | None]] = []
        for part in plain[1:].split(";"):
            name, eq, value = part.partition("=")
            out.append((name, value if eq else None))
        return tuple(out)
    if text[0] == ";":
        text = text[1:]
    params: list[tuple[str, str | None]] = []
    for part in split_unquoted(text, ";"):
        if not part:
            raise ParseError("empty parameter")
        name, eq, value = part.partition("=")
        name = name.strip()
        if not is_token(name):
            raise ParseError(f"bad parameter name {name[:40]!r}")
        if eq:
            value = value.strip()
            if not value:
                raise ParseError(f"parameter {name} has an empty value")
            params.append((name, value))
        else:
            params.append((name, None))
    return tuple(params)


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def param(params: Params, name: str) -> str | None:
    """Value of a parameter (case-insensitive name); '' for a flag; None if absent."""
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return "" if v is None else v
    return None


def has_param(params: Params, name: str) -> bool:
    lname = name.lower()
    return any(k.lower() == lname for k, _ in params)


def replace_param(params: Params, name: str, value: str | None) -> Params:
    """Set (or add at the end) one parameter, keeping the others' order."""
    lname = name.lower()
    out = []
    found = False
    for k, v in params:
        if k.lower() == lname:
            if not found:
                out.append((k, value))
                found = True
        else:
            out.append((k, v))
    if not found:
        out.append((name, value))
    return tuple(out)
