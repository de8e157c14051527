"""An HTTPS client with a cookie jar, for end-to-end tests of the web UI: one request per
connection over http.client, the server's cookies kept and sent back (a Max-Age=0 one
removed), as a browser would, without one."""

from __future__ import annotations

import http.client
import ssl
from typing import BinaryIO

TIMEOUT = 10.0  # s per request


class CookieSession:
    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self.host, self.port = host, port
        self.context = context
        self.cookies: dict[str, str] = {}

    def send(
        self,
        method: str,
        path: str,
        body: bytes | BinaryIO = b"",
        headers: dict[str, str] | None = None,
        *,
        timeout: float = TIMEOUT,
        with_cookies: bool = True,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """One request; `with_cookies=False` sends none (a client that authenticates by
        a token header instead), though cookies the server sets are still kept."""
        connection = http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=timeout
        )
        try:
            sent = dict(headers or {})
            if with_cookies and self.cookies:
                sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = rest.split(";", 1)[0]
        return response, data
