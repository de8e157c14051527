"""Pages: security headers everywhere, no inline script, escaping, forms that keep input."""

from __future__ import annotations

import re
from typing import Any

from appliance.web.headers import CSP
from appliance.web.services import WebServices

from .conftest import Client

HEADERS = {
    "Content-Security-Policy": CSP,
    "Strict-Transport-Security": "max-age=31536000",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def test_security_headers_on_every_kind_of_answer(app: Any, admin: Client) -> None:
    anonymous = Client(app)
    answers = {
        "page": admin.get("/"),
        "api": admin.get("/api/me"),
        "redirect": anonymous.get("/tokens"),
        "401": anonymous.get("/api/me"),
        "403": Client(app).post("/api/tokens", headers={"Origin": "https://evil.example"}),
        "404 page": admin.get("/no/such/page"),
        "404 api": admin.get("/api/no-such-thing"),
        "405": admin.request("PUT", "/api/me"),
        "login": anonymous.get("/login"),
    }
    for name, response in answers.items():
        for header, value in HEADERS.items():
            assert response.header(header) == value, f"{name}: {header}"
        assert response.header("Cache-Control") == "no-store", name
    assert "frame-ancestors 'none'" in CSP and "default-src 'self'" in CSP
    css = anonymous.get("/static/yakyak.css")
    assert css.status == 200 and css.header("Content-Type") == "text/css; charset=utf-8"
    assert css.header("Cache-Control") == "max-age=3600"


def test_pages_have_no_inline_script_or_style(admin: Client) -> None:
    for path in ("/", "/tokens", "/audit", "/password", "/login"):
        text = admin.get(path).text
        # scripts only from files (the CSP allows 'self'), never inline
        assert re.search(r"<script(?![^>]*\ssrc=)", text) is None, path
        assert re.search(r"<script[^>]*>[^<]", text) is None, path
        assert "style=" not in text and "<style" not in text, path
        assert re.search(r"\son[a-z]+=", text) is None, path  # no onclick= etc.


def test_api_errors_are_json_and_page_errors_html(admin: Client) -> None:
    api = admin.get("/api/users/nobody")
    assert api.status == 404 and api.header("Content-Type") == "application/json"
    assert api.json() == {"error": "no user 'nobody'"}
    page = admin.get("/nope")
    assert page.status == 404 and "<h1>Error 404</h1>" in page.text


def test_values_from_users_are_escaped(admin: Client, services: WebServices) -> None:
    services.audit.record("<script>x</script>", "evil", '"><img src=x>', "192.0.2.1")
    text = admin.get("/audit").text
    assert "<script>x</script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text
    assert '"><img' not in text


def test_token_page_shows_the_secret_once_and_keeps_a_bad_name(
    admin: Client, services: WebServices
) -> None:
    csrf = admin.csrf()
    bad = admin.post("/tokens", form={"name": "   ", "csrf_token": csrf})
    assert bad.status == 400
    assert 'id="name-error">Token name: 1 to 64 printable characters.' in bad.text
    long_name = "x" * 70
    kept = admin.post("/tokens", form={"name": long_name, "csrf_token": csrf})
    assert f'value="{long_name}"' in kept.text and kept.status == 400
    made = admin.post("/tokens", form={"name": "nightly <backup>", "csrf_token": csrf})
    assert made.status == 201
    [secret] = re.findall(r'<code class="secret">(yk_[\w-]+)</code>', made.text)
    assert "nightly &lt;backup&gt;" in made.text
    listing = admin.get("/tokens").text
    assert secret not in listing and secret[:11] in listing
    [token] = services.tokens.list("admin")
    revoked = admin.post(f"/tokens/{token.id}/revoke", form={"csrf_token": csrf})
    assert (revoked.status, revoked.header("Location")) == (303, "/tokens")
    assert services.tokens.list("admin") == []
    actions = [e.action for e in services.audit.entries(actor="admin")]
    assert actions[:2] == ["token.revoke", "token.create"]


def test_audit_page_is_for_administrators_only(admin: Client, oper: Client) -> None:
    assert admin.get("/audit").status == 200
    assert oper.get("/audit").status == 403
    assert "Audit log" not in oper.get("/").text  # not offered in the navigation either


def test_dashboard_says_what_exists(admin: Client, alice: Client) -> None:
    text = admin.get("/").text
    assert "2 extension(s)." in text and "4 web account(s)." in text and "3 role(s)." in text
    own = alice.get("/").text
    assert "Your extension is 101." in own and "web account(s)" not in own
