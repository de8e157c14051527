"""Server-rendered pages: sign-in, password change, dashboard, API tokens, audit log.

Forms post back to the same path; on a validation error the page is rendered again
with each reason next to its field and every value kept except passwords.
"""

from __future__ import annotations

import datetime
import html
import secrets
from typing import Final

import bottle

from appliance.store.api_tokens import check_token_name
from appliance.store.errors import StoreError
from appliance.store.extensions import check_password
from appliance.store.web_sessions import TOKEN_BYTES
from appliance.web import templates
from appliance.web.audit_trail import change
from appliance.web.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    client_address,
    current,
    local_path,
    maybe_current,
    see_other,
    set_cookie,
    submitted_csrf,
    tokens_equal,
)
from appliance.web.registry import PUBLIC, SIGNED_IN, Registry
from appliance.web.services import WebServices

MAX_FIELD: Final = 256
REGISTRY_KEY: Final = "yakyak.registry"  # the app's Registry, in Bottle's app.config
NOTICES: Final = {"password": "Your password has been changed."}


def when(unix: float) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def field(name: str, label: str, value: str | None, error: str | None, autocomplete: str) -> str:
    """A labelled input, its error beneath; `value` None makes a password input, which
    is never filled back in."""
    e = html.escape
    kind = "password" if value is None else "text"
    shown = "" if value is None else f' value="{e(value)}"'
    invalid = f' aria-invalid="true" aria-describedby="{e(name)}-error"' if error else ""
    lines = [
        f'<div class="field{" invalid" if error else ""}">',
        f'<label for="{e(name)}">{e(label)}</label>',
        f'<input id="{e(name)}" name="{e(name)}" type="{kind}"{shown}'
        f' autocomplete="{e(autocomplete)}"{invalid}>',
    ]
    if error:
        lines.append(f'<p class="error" id="{e(name)}-error">{e(error)}</p>')
    lines.append("</div>")
    return "\n".join(lines)


def hidden_csrf() -> str:
    """The signed-in session's CSRF token as a form's hidden field ("" without one)."""
    principal = maybe_current()
    session = principal.session if principal is not None else None
    token = session.csrf_token if session is not None else ""
    return f'<input type="hidden" name="csrf_token" value="{html.escape(token)}">'


def sentence(text: str) -> str:
    """A store's or checker's message as a sentence for a page."""
    return f"{text[:1].upper()}{text[1:]}."


def form_text(name: str) -> str:
    """A form field as text ('' when absent), cut to a bounded length."""
    value = bottle.request.forms.getunicode(name, default="")
    return str(value or "")[: MAX_FIELD + 1]


def page(title: str, body: str, status: int = 200) -> str:
    principal = maybe_current()
    nav: list[tuple[str, str]] = []
    csrf_token = ""
    username = ""
    registry = bottle.request.app.config.get(REGISTRY_KEY)
    if principal is not None and not principal.must_change_password and registry is not None:
        nav = registry.menu(principal.may)
    if principal is not None and principal.session is not None:
        csrf_token = principal.session.csrf_token
        username = principal.username
        nav = nav or [("/password", "Password")]
    bottle.response.status = status
    bottle.response.content_type = "text/html; charset=utf-8"
    return str(
        templates.LAYOUT.render(
            title=title, body=body, nav=nav, csrf_token=csrf_token, username=username
        )
    )


def error_page(status: int, message: str) -> str:
    return page(f"Error {status}", str(templates.ERROR.render(message=message)), status)


def register_pages(reg: Registry, services: WebServices) -> None:
    accounts = services.accounts

    # -- sign-in -----------------------------------------------------------------

    def login_form(
        values: dict[str, str], errors: dict[str, str], message: str = "", status: int = 200
    ) -> str:
        # A fresh sign-in CSRF token each time the form is shown; the cookie carries
        # it back, so a page elsewhere cannot sign a browser in to another account.
        token = secrets.token_urlsafe(TOKEN_BYTES)
        set_cookie(LOGIN_COOKIE, token)
        fields = "\n".join(
            (
                field(
                    "username",
                    "User name",
                    values.get("username", ""),
                    errors.get("username"),
                    "username",
                ),
                field("password", "Password", None, errors.get("password"), "current-password"),
            )
        )
        body = templates.LOGIN.render(
            message=message, csrf_token=token, next=values.get("next", "/"), fields=fields
        )
        return page("Sign in", str(body), status)

    @reg.add("GET", "/login", PUBLIC, "Sign-in form")
    def login() -> str:
        target = local_path(bottle.request.query.get("next"))
        if maybe_current() is not None:
            return see_other(target)
        return login_form({"next": target}, {})

    @reg.add("POST", "/login", PUBLIC, "Sign in")
    def login_submit() -> str:
        address = client_address()
        values = {"username": form_text("username").strip(), "next": local_path(form_text("next"))}
        password = form_text("password")
        if not tokens_equal(submitted_csrf(), bottle.request.get_cookie(LOGIN_COOKIE) or ""):
            return login_form(values, {}, "The sign-in form had expired: please try again.", 400)
        errors = {}
        username = values["username"]
        if not username:
            errors["username"] = "Enter your user name."
        elif len(username) > 64:
            errors["username"] = "At most 64 characters."
        if not password:
            errors["password"] = "Enter your password."
        elif len(password) > 128:
            errors["password"] = "At most 128 characters."
        if errors:
            return login_form(values, errors, status=400)
        locked = services.throttle.retry_after(address, username)
        if locked is not None:
            return login_form(values, {}, _locked_message(locked), 429)
        user = accounts.verify(username, password)
        if user is None:
            services.throttle.failed(address, username)
            services.audit.record(username, "login.failed", username, address)
            locked = services.throttle.retry_after(address, username)
            if locked is not None:
                return login_form(values, {}, _locked_message(locked), 429)
            return login_form(values, {}, "Wrong user name or password.", 401)
        services.throttle.succeeded(address, username)
        old = bottle.request.get_cookie(SESSION_COOKIE)
        with services.db.atomic():
            if old:
                services.sessions.delete(old)  # never reuse a session id across sign-ins
            token, _ = services.sessions.create(username, address)
            services.audit.record(username, "login", username, address)
        set_cookie(SESSION_COOKIE, token)
        clear_cookie(LOGIN_COOKIE)
        return see_other("/password" if user.must_change_password else values["next"])

    @reg.add("POST", "/logout", SIGNED_IN, "Sign out", while_must_change=True)
    def logout() -> str:
        token = bottle.request.get_cookie(SESSION_COOKIE) or ""
        with change(services, "logout", current().username):
            services.sessions.delete(token)
        clear_cookie(SESSION_COOKIE)
        return see_other("/login")

    # -- password ----------------------------------------------------------------

    def password_form(errors: dict[str, str], status: int = 200) -> str:
        principal = current()
        fields = "\n".join(
            (
                field(
                    "current", "Current password", None, errors.get("current"), "current-password"
                ),
                field("new", "New password", None, errors.get("new"), "new-password"),
                field("confirm", "New password again", None, errors.get("confirm"), "new-password"),
            )
        )
        csrf_token = principal.session.csrf_token if principal.session else ""
        body = templates.PASSWORD.render(
            forced=principal.must_change_password, csrf_token=csrf_token, fields=fields
        )
        return page("Change your password", str(body), status)

    @reg.add(
        "GET",
        "/password",
        SIGNED_IN,
        "Password change form",
        while_must_change=True,
        nav="Password",
        nav_order=95,
    )
    def password() -> str:
        return password_form({})

    @reg.add("POST", "/password", SIGNED_IN, "Change your password", while_must_change=True)
    def password_submit() -> str:
        principal = current()
        address = client_address()
        old, new, confirm = form_text("current"), form_text("new"), form_text("confirm")
        errors: dict[str, str] = {}
        if not old:
            errors["current"] = "Enter your current password."
        try:
            check_password(new)
        except StoreError as exc:
            errors["new"] = f"{str(exc).capitalize()}."
        if "new" not in errors and new == old:
            errors["new"] = "Choose a password different from the current one."
        if confirm != new:
            errors["confirm"] = "The two new passwords differ."
        if errors:
            return password_form(errors, 400)
        locked = services.throttle.retry_after(address, principal.username)
        if locked is not None:
            return password_form({"current": _locked_message(locked)}, 429)
        if accounts.verify(principal.username, old) is None:
            services.throttle.failed(address, principal.username)
            return password_form({"current": "This is not your current password."}, 400)
        keep = principal.session.id if principal.session else None
        with change(services, "password.change", principal.username):
            accounts.set_user_password(principal.username, new, must_change_password=False)
            # Whoever else knew the old password is signed out everywhere else.
            services.sessions.delete_for_user(principal.username, keep_id=keep)
        return see_other("/?notice=password")

    # -- API tokens --------------------------------------------------------------

    def tokens_page(
        values: dict[str, str],
        errors: dict[str, str],
        secret: tuple[str, str] | None = None,
        status: int = 200,
    ) -> str:
        principal = current()
        body = templates.TOKENS.render(
            tokens=services.tokens.list(principal.username),
            when=when,
            csrf_token=principal.session.csrf_token if principal.session else "",
            secret=secret[0] if secret else "",
            secret_name=secret[1] if secret else "",
            fields=field(
                "name", "Name (what uses it)", values.get("name", ""), errors.get("name"), "off"
            ),
        )
        return page("API tokens", str(body), status)

    @reg.add("GET", "/tokens", "user:read_own", "Your API tokens", nav="API tokens", nav_order=85)
    def tokens() -> str:
        return tokens_page({}, {})

    @reg.add("POST", "/tokens", "user:write_own", "Create an API token")
    def tokens_create() -> str:
        name = form_text("name")
        try:
            name = check_token_name(name)
        except StoreError as exc:
            return tokens_page({"name": name}, {"name": f"{str(exc).capitalize()}."}, None, 400)
        try:
            with change(services, "token.create", name):
                secret, info = services.tokens.create(current().username, name)
        except StoreError as exc:
            return tokens_page({"name": name}, {"name": f"{exc}."}, None, 400)
        # Rendered in this answer, not after a redirect: the secret is never stored.
        return tokens_page({}, {}, (secret, info.name), 201)

    @reg.add("POST", "/tokens/<token_id:int>/revoke", "user:write_own", "Revoke an API token")
    def tokens_revoke(token_id: int) -> str:
        with change(services, "token.revoke", str(token_id)):
            services.tokens.revoke(token_id, current().username)
        return see_other("/tokens")

    # -- audit log ---------------------------------------------------------------

    @reg.add("GET", "/audit", "audit:read", "Audit log", nav="Audit log", nav_order=90)
    def audit() -> str:
        raw = bottle.request.query.get("before") or ""
        before = int(raw) if raw.isdigit() and len(raw) < 19 else None
        entries = services.audit.entries(100, before)
        older = entries[-1].id if len(entries) == 100 else None
        body = templates.AUDIT.render(entries=entries, when=when, older=older)
        return page("Audit log", str(body))

    # -- static ------------------------------------------------------------------

    @reg.add("GET", "/static/yakyak.css", PUBLIC, "Style sheet")
    def stylesheet() -> str:
        bottle.response.content_type = "text/css; charset=utf-8"
        bottle.response.set_header("Cache-Control", "max-age=3600")
        return templates.STYLESHEET


def _locked_message(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return (
        "Too many failed sign-ins from this address or for this user name. "
        f"Sign-in is blocked for {minutes} more minute(s)."
    )
