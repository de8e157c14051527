"""The web UI's own HTTPS certificate: what browsers are shown, and replacing it.

The box makes a self-signed certificate on first start (``tls.ensure``); an installer
who has a real one for the box's name uploads it here with its private key. The pair is
checked completely (``tls.install``: it parses, the key matches, it is in date, OpenSSL
loads it) before the old one is replaced, and the running listener uses it for new
connections at once.
"""

from __future__ import annotations

import datetime
import html
from typing import Final

import bottle

from appliance.web.audit_trail import change
from appliance.web.auth import current, see_other
from appliance.web.jsonio import FieldErrors, Fields, read_object
from appliance.web.pages import hidden_csrf, page
from appliance.web.registry import Registry
from appliance.web.schemas import obj
from appliance.web.services import WebServices
from appliance.web.tls import CertificateError, CertificateInfo, install
from appliance.web.tls import current as current_certificate

MAX_PEM: Final = 64 * 1024  # a chain of a few certificates and a key: far below this
CERTIFICATE_INFO: Final = obj(
    {
        "subject": {"type": "string"},
        "issuer": {"type": "string"},
        "not_before": {"type": "string", "description": "ISO 8601, UTC"},
        "not_after": {"type": "string", "description": "ISO 8601, UTC"},
        "names": {"type": "array", "items": {"type": "string"}},
        "sha256": {"type": "string"},
        "self_signed": {"type": "boolean"},
    }
)
CERTIFICATE_UPLOAD: Final = obj(
    {
        "certificate": {"type": "string", "description": "PEM: the certificate, then its chain"},
        "key": {"type": "string", "description": "PEM: its private key (RSA >= 2048, or EC)"},
    }
)


def info_dict(info: CertificateInfo) -> dict[str, object]:
    return {
        "subject": info.subject,
        "issuer": info.issuer,
        "not_before": info.not_before.isoformat(),
        "not_after": info.not_after.isoformat(),
        "names": list(info.names),
        "sha256": info.sha256,
        "self_signed": info.self_signed,
    }


def register_certificate_pages(reg: Registry, services: WebServices) -> None:
    def folder() -> object:
        if services.data_dir is None:
            raise bottle.HTTPError(503, "not available: this web server has no data folder")
        return services.data_dir

    def shown() -> CertificateInfo | None:
        try:
            return current_certificate(services.data_dir) if services.data_dir else None
        except (OSError, CertificateError):
            return None

    def put(cert: bytes, key: bytes) -> CertificateInfo:
        folder()
        assert services.data_dir is not None
        now = datetime.datetime.fromtimestamp(services.clock(), datetime.UTC)
        with change(services, "certificate.install"):
            info = install(services.data_dir, cert, key, now)
        reload = services.certificate.reload
        if reload is not None:
            reload()
        return info

    def view(error: str = "", notice: str = "", status: int = 200) -> str:
        e = html.escape
        info = shown()
        parts: list[str] = []
        if notice:
            parts.append(f'<p class="notice" id="notice">{e(notice)}</p>')
        if info is None:
            parts.append("<p>No certificate is available.</p>")
        else:
            kind = "self-signed (browsers warn)" if info.self_signed else f"from {info.issuer}"
            parts.append(
                '<dl id="certificate">'
                f"<dt>Subject</dt><dd>{e(info.subject)}</dd>"
                f"<dt>Issued</dt><dd>{e(kind)}</dd>"
                f"<dt>Names</dt><dd>{e(', '.join(info.names))}</dd>"
                f"<dt>Valid</dt><dd>{e(info.not_before.date().isoformat())} to "
                f"{e(info.not_after.date().isoformat())}</dd>"
                f'<dt>SHA-256</dt><dd><code id="fingerprint">{e(info.sha256)}</code></dd></dl>'
            )
        if current().may("system:write"):
            invalid = ' aria-invalid="true"' if error else ""
            parts.append(
                "<h2>Replace it</h2>"
                "<p>Upload the certificate (PEM, with its chain) and its private key. "
                "Both are checked before anything is replaced.</p>"
                '<form method="post" action="/certificate" enctype="multipart/form-data">'
                + hidden_csrf()
                + '<div class="field"><label for="certificate">Certificate</label>'
                f'<input id="certificate" name="certificate" type="file"{invalid}></div>'
                '<div class="field"><label for="key">Private key</label>'
                f'<input id="key" name="key" type="file"{invalid}></div>'
                + (f'<p class="error" id="certificate-error">{e(error)}</p>' if error else "")
                + '<button type="submit" id="certificate-submit">Install</button></form>'
            )
        return page("Certificate", "\n".join(parts), status)

    @reg.add(
        "GET", "/certificate", "system:read", "The web UI's certificate", nav="Certificate",
        nav_order=82,
    )  # fmt: skip
    def certificate_page() -> str:
        notice = "The new certificate is in use." if bottle.request.query.get("installed") else ""
        return view(notice=notice)

    @reg.add("POST", "/certificate", "system:write", "Install an uploaded certificate")
    def certificate_upload() -> str:
        folder()
        cert, key = _upload("certificate"), _upload("key")
        if not cert or not key:
            return view("Choose both the certificate and its private key.", status=400)
        try:
            put(cert, key)
        except CertificateError as exc:
            return view(f"Not installed, nothing changed: {exc}", status=400)
        return see_other("/certificate?installed=1")

    @reg.add(
        "GET", "/api/certificate", "system:read", "The web UI's certificate",
        response=CERTIFICATE_INFO,
    )  # fmt: skip
    def certificate_api() -> dict[str, object]:
        folder()
        info = shown()
        if info is None:
            raise bottle.HTTPError(404, "no certificate")
        return info_dict(info)

    @reg.add(
        "PUT",
        "/api/certificate",
        "system:write",
        "Replace the web UI's certificate (checked first: a bad pair changes nothing)",
        request=CERTIFICATE_UPLOAD,
        response=CERTIFICATE_INFO,
    )
    def certificate_put() -> dict[str, object]:
        fields = Fields(read_object(), ("certificate", "key"))
        cert = fields.text("certificate", max_length=MAX_PEM)
        key = fields.text("key", max_length=MAX_PEM)
        if fields.errors or cert is None or key is None:
            raise FieldErrors(fields.errors)
        try:
            info = put(cert.encode(), key.encode())
        except CertificateError as exc:
            raise FieldErrors({"certificate": str(exc)}) from None
        return info_dict(info)


def _upload(name: str) -> bytes:
    upload = bottle.request.files.get(name)
    if not isinstance(upload, bottle.FileUpload):
        return b""
    return bytes(upload.file.read(MAX_PEM + 1))[: MAX_PEM + 1]
