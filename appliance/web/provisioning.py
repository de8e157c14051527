"""What a phone needs to sign in to an extension, shown once: server, user, password,
realm, and the same as a QR code (inline SVG, made by segno).

The password is generated here and never stored in clear: the store keeps HA1 only
(RFC 7616 §3.4.2), so this page is the one chance to copy it.
"""

from __future__ import annotations

import html
import io
import re
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

import bottle
import segno

GENERATED_PASSWORD_BYTES: Final = 12  # 16 characters of base64url: ~96 bits
SIP_PORT: Final = 5060  # the [sip] listen default (WebServices.sip_port says the real one)
# A Host header as RFC 9110 §7.2 allows it: a name or an IPv6 literal, then a port.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:[0-9]{1,5})?")
# RFC 3261 §25.1 `password`: unreserved / escaped / "&" "=" "+" "$" ",".
_PASSWORD_SAFE: Final = "-_.!~*'()&=+$,"


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def server_host() -> str:
    """The host the browser reached us by: the phone is on the same LAN, so the same
    name or address reaches the SIP side too. The port of the web UI is dropped."""
    environ = bottle.request.environ
    for candidate in (environ.get("HTTP_HOST"), environ.get("SERVER_NAME")):
        match = _HOST.fullmatch(str(candidate or ""))
        if match:
            return match.group(1)
    return "this box's address"


@dataclass(frozen=True, slots=True)
class SipAccount:
    """One extension's sign-in details, as shown right after the password was set."""

    number: str
    password: str
    host: str
    realm: str
    port: int = SIP_PORT

    @property
    def uri(self) -> str:
        """A SIP URI with the password in its userinfo. RFC 3261 §19.1.1 allows that
        form though it advises against it on the wire; here it never goes on the wire,
        it is what softphones that scan a QR code read their account from."""
        password = quote(self.password, safe=_PASSWORD_SAFE)
        return f"sip:{self.number}:{password}@{self.host}:{self.port}"


def qr_svg(text: str) -> str:
    """`text` as a QR code in an <svg> element: attributes only, no style (the CSP
    allows no inline style), so it can sit inside the page."""
    out = io.BytesIO()
    # Error correction M: it survives a phone camera at an angle on a bright screen.
    code = segno.make(text, error="m", micro=False)
    code.save(
        out,
        kind="svg",
        xmldecl=False,
        nl=False,
        scale=4,
        dark="#000",
        light="#fff",
        title="QR code of the SIP account",
    )
    return out.getvalue().decode("ascii")


def account_panel(account: SipAccount) -> str:
    """The shown-once box: every value with a stable id, and the QR code."""
    e = html.escape
    n = e(account.number)
    return "\n".join(
        (
            f'<section class="notice credentials" id="credentials-{n}">',
            f"<h2>SIP account of extension {n}</h2>",
            "<p><strong>Copy the password now: it is shown only once.</strong> "
            "YakYak keeps only a hash of it; a lost password is reset, not looked up.</p>",
            "<dl>",
            f'<dt>SIP server</dt><dd><code id="sip-server-{n}">{e(account.host)}</code>, '
            f'port <code id="sip-port-{n}">{account.port}</code>, UDP or TCP</dd>',
            f'<dt>User name (and authentication name)</dt><dd><code id="sip-user-{n}">{n}'
            "</code></dd>",
            f'<dt>Password</dt><dd><code class="secret" id="sip-password-{n}">'
            f"{e(account.password)}</code></dd>",
            f'<dt>Domain (realm)</dt><dd><code id="sip-realm-{n}">{e(account.realm)}</code></dd>',
            "</dl>",
            f'<figure class="qr" id="sip-qr-{n}">{qr_svg(account.uri)}',
            "<figcaption>For softphones that scan an account: "
            f"<code>sip:{n}:…@{e(account.host)}:{account.port}</code></figcaption>",
            "</figure>",
            "</section>",
        )
    )
