"""SIP and SIPS URIs (RFC 3261 §19.1), with IPv6 references (RFC 5118).

Other URI schemes (tel:, urn:, ...) are kept opaque: we route on SIP URIs only, but
must carry the others through unchanged.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import Final, Self

from appliance.sip.errors import ParseError
from appliance.sip.grammar import Params, format_params, param, parse_params

_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_IPV6_CHARS: Final = frozenset("0123456789abcdefABCDEF:.")
_SCHEME_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."
)
MAX_URI_LENGTH: Final = 2048
# The everyday sip:user@host:port;params form, matched in one step. Users with ';' or
# '?' (telephone-subscriber), odd hosts and errors take the general path.
_PLAIN_SIP: Final = re.compile(
    r"(sips?):(?:([^:@;?\s<>\"]+)(?::([^@;?\s<>\"]*))?@)?"
    r"(\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\]|[A-Za-z0-9.\-]+)(?::([0-9]{1,5}))?"
    r"((?:;[^?\s\"<>@]*)?)(?:\?([^\s\"<>]*))?"
)


@dataclass(frozen=True, slots=True)
class Uri:
    scheme: str  # "sip", "sips", or another scheme kept opaque
    user: str | None = None
    password: str | None = None
    host: str = ""  # IPv6 hosts keep their brackets: "[::1]"
    port: int | None = None
    params: Params = ()
    headers: str | None = None  # the raw part after '?', kept as is
    opaque: str | None = None  # everything after "scheme:" for non-SIP schemes

    @classmethod
    def parse(cls, text: str) -> Self:
        if cls is Uri:
            return _parse_uri_memo(text)  # type: ignore[return-value]  # Self is Uri here
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Self:
        match = _PLAIN_SIP.fullmatch(text)
        if match is not None and len(text) <= MAX_URI_LENGTH:
            scheme, user, password, host, port, ptext, headers = match.groups()
            if port is None or int(port) <= 65535:
                return cls(
                    scheme,
                    user,
                    password,
                    host,
                    None if port is None else int(port),
                    parse_params(ptext) if ptext else (),
                    headers,
                )
        return cls._parse_general(text)

    @classmethod
    def _parse_general(cls, text: str) -> Self:
        if len(text) > MAX_URI_LENGTH:
            raise ParseError("URI too long", 414)
        scheme, colon, rest = text.partition(":")
        if not colon or not scheme or not all(c in _SCHEME_CHARS for c in scheme):
            raise ParseError(f"bad URI {text[:60]!r}", 416)
        lscheme = scheme.lower()
        if lscheme not in ("sip", "sips"):
            if not rest or any(c in rest for c in ' \t\r\n<>"'):
                raise ParseError(f"bad URI {text[:60]!r}", 416)
            return cls(scheme=scheme, opaque=rest)
        user: str | None = None
        password: str | None = None
        if "@" in rest:
            userinfo, _, rest = rest.partition("@")
            user, has_pw, pw = userinfo.partition(":")
            if has_pw:
                password = pw
            if not user or any(c in user for c in ' \t\r\n<>"@'):
                raise ParseError(f"bad user part in URI {text[:60]!r}")
        headers: str | None = None
        if "?" in rest:
            rest, _, headers = rest.partition("?")
        hostport, semi, ptext = rest.partition(";")
        params = parse_params(ptext) if semi else ()
        host, port = _split_hostport(hostport, text)
        return cls(
            lscheme if scheme == lscheme else scheme, user, password, host, port, params, headers
        )

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        if self.params:
            out.append(format_params(self.params))
        if self.headers is not None:
            out.append("?" + self.headers)
        return "".join(out)

    @property
    def is_sip(self) -> bool:
        return self.opaque is None

    def param(self, name: str) -> str | None:
        return param(self.params, name)

    def with_params(self, params: Params) -> Uri:
        return replace(self, params=params)

    def host_key(self) -> str:
        """Host compared case-insensitively, as RFC 3261 §19.1.4 requires."""
        return self.host.lower()

    def bare_host(self) -> str:
        """Host without IPv6 brackets, as sockets want it."""
        if self.host.startswith("["):
            return self.host[1:-1]
        return self.host


def _split_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference in {text[:60]!r}")
        host = hostport[: end + 1]
        if not all(c in _IPV6_CHARS for c in host[1:-1]) or ":" not in host:
            raise ParseError(f"bad IPv6 reference in {text[:60]!r}")
        after = hostport[end + 1 :]
        if not after:
            return host, None
        if after[0] != ":":
            raise ParseError(f"bad host in {text[:60]!r}")
        return host, parse_port(after[1:])
    host, colon, port_text = hostport.partition(":")
    if not host or not all(c in _HOST_CHARS for c in host):
        raise ParseError(f"bad host in URI {text[:60]!r}")
    return host, parse_port(port_text) if colon else None


def parse_port(text: str) -> int:
    if not text.isdigit() or len(text) > 5 or not text.isascii():
        raise ParseError(f"bad port {text[:10]!r}")
    port = int(text)
    if port > 65535:
        raise ParseError(f"bad port {text!r}")
    return port


# Phones send the same URIs again and again (request-URI, To, Contact); a parsed Uri
# is an immutable value, so a small memo of the pure parse is safe and saves ~2 us.
_parse_uri_memo = functools.lru_cache(maxsize=4096)(Uri._parse)
