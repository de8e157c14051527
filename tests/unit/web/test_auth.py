"""Sign-in, sessions, CSRF, lockout, password change and API tokens, through the WSGI app."""

from __future__ import annotations

from typing import Any

from appliance.store.web_sessions import SessionPolicy
from appliance.web.auth import LOGIN_COOKIE, SESSION_COOKIE, local_path
from appliance.web.services import WebServices

from .conftest import PASSWORDS, Client, ManualClock


def test_sign_in_sets_a_locked_down_session_cookie(client: Client) -> None:
    response = client.login("admin")
    assert (response.status, response.header("Location")) == (303, "/")
    [cookie] = [c for c in response.header_all("Set-Cookie") if c.startswith(SESSION_COOKIE)]
    flags = {part.strip() for part in cookie.split(";")[1:]}
    assert flags == {"Path=/", "Secure", "HttpOnly", "SameSite=Strict"}
    assert len(client.cookies[SESSION_COOKIE]) == 43  # 256 bits, base64url
    assert LOGIN_COOKIE not in client.cookies  # the sign-in form's token is spent
    assert client.get("/api/me").json()["username"] == "admin"


def test_session_id_is_stored_hashed(client: Client, services: WebServices) -> None:
    client.login("admin")
    token = client.cookies[SESSION_COOKIE]
    rows = services.db.execute_sql('SELECT "token_hash" FROM "web_session"').fetchall()
    assert len(rows) == 1 and token not in rows[0][0] and len(rows[0][0]) == 64


def test_wrong_password_and_unknown_user_answer_alike(client: Client) -> None:
    wrong = client.login("admin", "not-the-password")
    unknown = client.login("nobody", "not-the-password")
    for response in (wrong, unknown):
        assert response.status == 401
        assert "Wrong user name or password." in response.text
        assert SESSION_COOKIE not in client.cookies
    assert 'value="nobody"' in unknown.text  # the user name is kept, the password not
    assert "not-the-password" not in unknown.text


def test_sign_in_without_the_form_token_is_refused(client: Client) -> None:
    response = client.post(
        "/login", form={"username": "admin", "password": PASSWORDS["admin"], "csrf_token": "x"}
    )
    assert response.status == 400
    assert "expired" in response.text
    assert SESSION_COOKIE not in client.cookies


def test_sign_in_fields_are_checked_and_shown_next_to_the_field(client: Client) -> None:
    token = client.form_csrf()
    response = client.post("/login", form={"username": "", "password": "", "csrf_token": token})
    assert response.status == 400
    assert '<p class="error" id="username-error">Enter your user name.</p>' in response.text
    assert '<p class="error" id="password-error">Enter your password.</p>' in response.text


def test_lockout_per_user_name_with_a_clear_message(
    app: Any, services: WebServices, clock: ManualClock
) -> None:
    attacker = Client(app, address="198.51.100.1")
    for _ in range(2):
        assert attacker.login("admin", "guess-guess").status == 401
    third = attacker.login("admin", "guess-guess")  # max_failures=3 in the fixture
    assert third.status == 429
    assert "blocked for 15 more minute(s)" in third.text
    # Locked for that user name from anywhere, even with the right password...
    elsewhere = Client(app, address="203.0.113.5")
    assert elsewhere.login("admin").status == 429
    assert SESSION_COOKIE not in elsewhere.cookies
    # ...but not for other accounts, and not after the lockout time.
    assert Client(app, address="203.0.113.5").login("oper").status == 303
    clock.now += 901
    assert elsewhere.login("admin").status == 303
    actions = [e.action for e in services.audit.entries(actor="admin")]
    assert actions.count("login.failed") == 3 and actions[0] == "login"


def test_lockout_per_address(app: Any, clock: ManualClock) -> None:
    attacker = Client(app, address="198.51.100.2")
    statuses = [
        attacker.login(name, "guess-guess").status
        for name in ("u1", "u2", "u3", "u4", "u5", "u6")  # address_max_failures=6
    ]
    assert statuses == [401] * 5 + [429]
    assert attacker.login("admin").status == 429
    assert Client(app, address="198.51.100.3").login("admin").status == 303


def test_x_forwarded_for_does_not_change_the_address(app: Any) -> None:
    attacker = Client(app, address="198.51.100.4")
    for n in range(6):
        token = attacker.form_csrf()
        attacker.post(
            "/login",
            form={"username": f"u{n}", "password": "guess-guess", "csrf_token": token},
            headers={"X-Forwarded-For": f"10.0.0.{n}"},
        )
    assert attacker.login("admin").status == 429


def test_forced_password_change_on_first_sign_in(client: Client, services: WebServices) -> None:
    response = client.login("fresh")
    assert response.header("Location") == "/password"
    assert client.get("/").header("Location") == "/password"
    assert client.get("/api/users").status == 403
    page = client.get("/password")
    assert "choose a new password" in page.text
    csrf = client.csrf()
    bad = client.post(
        "/password",
        form={"current": "wrong-one", "new": "short", "confirm": "other", "csrf_token": csrf},
    )
    assert bad.status == 400
    assert 'id="new-error">Password too short: at least 8 characters.' in bad.text
    assert 'id="confirm-error">The two new passwords differ.' in bad.text
    assert "wrong-one" not in bad.text
    wrong = client.post(
        "/password",
        form={
            "current": "wrong-one",
            "new": "brand-new-pw",
            "confirm": "brand-new-pw",
            "csrf_token": csrf,
        },
    )
    assert 'id="current-error">This is not your current password.' in wrong.text
    done = client.post(
        "/password",
        form={
            "current": PASSWORDS["fresh"],
            "new": "brand-new-pw",
            "confirm": "brand-new-pw",
            "csrf_token": csrf,
        },
    )
    assert (done.status, done.header("Location")) == (303, "/?notice=password")
    assert "Your password has been changed." in client.get("/?notice=password").text
    assert client.get("/api/users").status == 200
    assert not services.accounts.get_user("fresh").must_change_password
    assert services.accounts.verify("fresh", "brand-new-pw") is not None


def test_password_change_signs_out_other_sessions(app: Any, services: WebServices) -> None:
    laptop, phone = Client(app), Client(app)
    laptop.login("admin")
    phone.login("admin")
    csrf = laptop.csrf()
    laptop.post(
        "/password",
        form={
            "current": PASSWORDS["admin"],
            "new": "admin-password-2",
            "confirm": "admin-password-2",
            "csrf_token": csrf,
        },
    )
    assert laptop.get("/api/me").status == 200
    assert phone.get("/api/me").status == 401


def test_logout_ends_the_session_on_the_server(admin: Client, services: WebServices) -> None:
    token = admin.cookies[SESSION_COOKIE]
    csrf = admin.csrf()
    response = admin.post("/logout", form={"csrf_token": csrf})
    assert (response.status, response.header("Location")) == (303, "/login")
    assert SESSION_COOKIE not in admin.cookies
    assert services.sessions.lookup(token) is None
    stolen = Client(admin.app, cookies={SESSION_COOKIE: token})
    assert stolen.get("/api/me").status == 401


def test_sessions_expire_when_idle_and_absolutely(
    app: Any, services: WebServices, clock: ManualClock
) -> None:
    policy: SessionPolicy = services.sessions.policy
    client = Client(app)
    client.login("admin")
    clock.now += policy.idle - 1
    assert client.get("/api/me").status == 200  # a request keeps it alive
    clock.now += policy.idle - 1
    assert client.get("/api/me").status == 200
    clock.now += policy.idle + 1
    assert client.get("/api/me").status == 401
    busy = Client(app)
    busy.login("admin")
    started = clock.now
    while clock.now < started + policy.absolute - 600:
        clock.now += 600
        assert busy.get("/api/me").status == 200
    clock.now = started + policy.absolute
    assert busy.get("/api/me").status == 401
    assert busy.get("/").header("Location") == "/login?next=/"


def test_csrf_token_is_required_for_session_requests(admin: Client) -> None:
    body = {"number": "150"}
    refused = admin.post("/api/extensions", json_body=body)
    assert refused.status == 403 and "CSRF" in refused.json()["error"]
    wrong = admin.post("/api/extensions", json_body=body, headers={"X-CSRF-Token": "nope"})
    assert wrong.status == 403
    ok = admin.post("/api/extensions", json_body=body, headers={"X-CSRF-Token": admin.csrf()})
    assert ok.status == 201


def test_cross_origin_requests_are_refused(admin: Client) -> None:
    response = admin.post(
        "/api/extensions",
        json_body={"number": "150"},
        headers={"X-CSRF-Token": admin.csrf(), "Origin": "https://evil.example"},
    )
    assert response.status == 403
    assert response.json() == {"error": "cross-origin request refused"}


def test_api_tokens_work_without_csrf_and_stop_when_revoked(
    admin: Client, services: WebServices
) -> None:
    made = admin.post(
        "/api/tokens", json_body={"name": "backup script"}, headers={"X-CSRF-Token": admin.csrf()}
    )
    assert made.status == 201
    secret = made.json()["token"]
    assert secret.startswith("yk_") and len(secret) == 46
    script = Client(admin.app, send_origin=False)
    bearer = {"Authorization": f"Bearer {secret}"}
    me = script.get("/api/me", headers=bearer).json()
    assert (me["username"], me["auth"], me["csrf_token"]) == ("admin", "token", None)
    created = script.post("/api/extensions", json_body={"number": "160"}, headers=bearer)
    assert created.status == 201
    listed = admin.get("/api/tokens").json()["items"]
    assert [(t["name"], t["prefix"]) for t in listed] == [("backup script", secret[:11])]
    assert secret not in admin.get("/api/tokens").text
    revoked = admin.delete(f"/api/tokens/{listed[0]['id']}", headers={"X-CSRF-Token": admin.csrf()})
    assert revoked.status == 204
    refused = script.get("/api/me", headers=bearer)
    assert refused.status == 401
    assert "invalid_token" in (refused.header("WWW-Authenticate") or "")
    digests = services.db.execute_sql('SELECT "token_hash" FROM "api_token"').fetchall()
    assert digests == []


def test_a_bad_bearer_token_does_not_fall_back_to_the_cookie(admin: Client) -> None:
    response = admin.get("/api/me", headers={"Authorization": "Bearer yk_wrong"})
    assert response.status == 401


def test_a_user_cannot_revoke_someone_elses_token(
    admin: Client, alice: Client, services: WebServices
) -> None:
    _, info = services.tokens.create("admin", "admin's")
    response = alice.delete(f"/api/tokens/{info.id}", headers={"X-CSRF-Token": alice.csrf()})
    assert response.status == 404
    assert [t.id for t in services.tokens.list("admin")] == [info.id]


def test_next_is_only_ever_a_local_path() -> None:
    assert local_path("/tokens?x=1") == "/tokens?x=1"
    for bad in ("https://evil.example/", "//evil.example/", "/\\evil.example", "", None, "/\n"):
        assert local_path(bad) == "/"


def test_sign_in_goes_back_to_the_page_asked_for(client: Client) -> None:
    assert client.get("/audit").header("Location") == "/login?next=/audit"
    token = client.form_csrf("/login?next=/audit")
    response = client.post(
        "/login",
        form={
            "username": "admin",
            "password": PASSWORDS["admin"],
            "csrf_token": token,
            "next": "/audit",
        },
    )
    assert response.header("Location") == "/audit"
