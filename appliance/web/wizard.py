"""The first-run wizard at /setup: time zone, country (for call-progress tones), a
network check, and the first extensions; then a flag says setup is done.

Step one of the issue's wizard, the administrator's own password, is the forced
password change every new account goes through before it reaches any page.
Time zone and country are stored as settings here; the PBX reads them elsewhere.
"""

from __future__ import annotations

import html
import socket
import zoneinfo
from dataclasses import dataclass
from typing import Final

import bottle

from appliance.dsp.tones import TONE_PLANS
from appliance.store.errors import StoreError
from appliance.store.extensions import NewExtension, check_number
from appliance.store.settings import COUNTRY_KEY, TIME_ZONE_KEY, get_setting, set_setting
from appliance.web.audit_trail import change
from appliance.web.auth import current, see_other
from appliance.web.choice_fields import select_field
from appliance.web.pages import field, form_text, hidden_csrf, page
from appliance.web.provisioning import generate_password, server_host
from appliance.web.registry import Registry
from appliance.web.services import WebServices

SETUP_DONE: Final = "web.setup_done"
TIME_ZONE: Final = TIME_ZONE_KEY
COUNTRY: Final = COUNTRY_KEY
MAX_FIRST: Final = 50  # extensions the wizard makes at once; the import takes more
PROBE_TIMEOUT: Final = 0.5  # s for the SIP port to accept a TCP connection
COUNTRY_NAMES: Final = {
    "DE": "Germany",
    "ES": "Spain",
    "FR": "France",
    "GB": "United Kingdom",
    "US": "United States",
}


SETUP_PATH: Final = "/setup"


def setup_done(services: WebServices) -> bool:
    """Whether an administrator has finished the wizard (the dashboard asks this)."""
    return get_setting(services.db, SETUP_DONE, False) is True


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    hostname: str
    addresses: tuple[str, ...]
    web_host: str
    sip_tcp_answers: bool
    pbx_answers: bool | None  # None: this web server has no PBX attached


def tcp_answers(host: str, port: int, timeout: float) -> bool:
    """Whether something accepts a TCP connection there (the SIP listener, we hope)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def host_addresses(hostname: str) -> tuple[str, ...]:
    """The addresses the host's own name resolves to, loopback last, no repeats."""
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except OSError:  # the name does not resolve: nothing to list
        return ()
    found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return tuple(sorted(found, key=lambda a: (a.startswith(("127.", "::1")), a)))


def network_facts(services: WebServices) -> NetworkFacts:
    pbx: bool | None = None
    if services.live is not None:
        try:
            services.live.snapshot(PROBE_TIMEOUT)
            pbx = True
        except TimeoutError:
            pbx = False
    hostname = socket.gethostname()
    return NetworkFacts(
        hostname=hostname,
        addresses=host_addresses(hostname),
        web_host=server_host(),
        sip_tcp_answers=tcp_answers("127.0.0.1", services.sip_port, PROBE_TIMEOUT),
        pbx_answers=pbx,
    )


def first_numbers(first: str, count: int) -> list[str]:
    """`count` numbers from `first` up, keeping its width ("0201" -> "0202")."""
    check_number(first)
    numbers = [str(int(first) + i).zfill(len(first)) for i in range(count)]
    check_number(numbers[-1])  # 99 + 2 is three digits, fine; 15 nines + 1 is not
    return numbers


def zone_input(value: str, error: str | None) -> str:
    """Like `pages.field`, with a datalist of zone names to pick from as one types."""
    e = html.escape
    invalid = ' aria-invalid="true" aria-describedby="timezone-error"' if error else ""
    message = f'<p class="error" id="timezone-error">{e(error)}</p>' if error else ""
    return (
        f'<div class="field{" invalid" if error else ""}"><label for="timezone">Time zone'
        f'</label><input id="timezone" name="timezone" type="text" value="{e(value)}" '
        f'list="timezones" autocomplete="off"{invalid}>{message}</div>'
    )


def register_wizard(reg: Registry, services: WebServices) -> None:
    db = services.db
    zones = frozenset(zoneinfo.available_timezones())  # read from disk once, not per request

    def steps() -> str:
        e = html.escape
        zone = get_setting(db, TIME_ZONE)
        country = get_setting(db, COUNTRY)
        count = len(services.directory.list())
        items = (
            ("Your password", "done: you changed it at your first sign-in", None),
            ("Time zone", e(str(zone)) if zone else "not set", "/setup/timezone"),
            (
                "Country, for dial and ring tones",
                e(COUNTRY_NAMES.get(str(country), str(country))) if country else "not set",
                "/setup/country",
            ),
            ("Network check", "look before phones try", "/setup/network"),
            ("First extensions", f"{count} so far", "/setup/extensions"),
        )
        rows = "".join(
            f"<li><strong>{title}</strong>: {state}"
            + (f' (<a href="{href}" id="step-{href.rsplit("/", 1)[1]}">open</a>)' if href else "")
            + "</li>"
            for title, state, href in items
        )
        return f'<ol id="setup-steps">{rows}</ol>'

    @reg.add("GET", SETUP_PATH, "system:write", "First-run setup", nav="Setup", nav_order=5)
    def setup() -> str:
        done = setup_done(services)
        status = (
            '<p class="notice" id="setup-state">Setup is finished; you can still change any '
            "step here.</p>"
            if done
            else '<p id="setup-state">Welcome. A few steps and the box is ready for phones.</p>'
        )
        body = (
            f"{status}{steps()}"
            '<form method="post" action="/setup/done" id="finish-setup">'
            f'{hidden_csrf()}<button type="submit" id="finish-submit">'
            f"{'Finish again' if done else 'Finish setup'}</button></form>"
        )
        return page("Setup", body)

    @reg.add("POST", "/setup/done", "system:write", "Mark first-run setup as done")
    def setup_finish() -> str:
        with change(services, "setup.done"):
            set_setting(db, SETUP_DONE, True)
        return see_other("/")

    # -- time zone ---------------------------------------------------------------

    def zone_page(value: str, error: str | None, status: int = 200) -> str:
        options = "".join(f'<option value="{html.escape(z)}">' for z in sorted(zones))
        body = (
            "<p>Times in the call log and on voicemail are shown in this zone. Type a name "
            "like <code>Europe/Berlin</code> or <code>America/New_York</code>.</p>"
            f'<form method="post" action="/setup/timezone" id="timezone-form">{hidden_csrf()}'
            + zone_input(value, error)
            + f'<datalist id="timezones">{options}</datalist>'
            '<button type="submit" id="timezone-submit">Save and go on</button></form>'
        )
        return page("Setup: time zone", body, status)

    @reg.add("GET", "/setup/timezone", "system:write", "Setup: time zone")
    def timezone() -> str:
        return zone_page(str(get_setting(db, TIME_ZONE) or "UTC"), None)

    @reg.add("POST", "/setup/timezone", "system:write", "Set the time zone")
    def timezone_submit() -> str:
        value = form_text("timezone").strip()
        if value not in zones:
            error = "Enter a time zone name from the list, like Europe/Berlin."
            return zone_page(value, error, 400)
        with change(services, "setup.time_zone", value):
            set_setting(db, TIME_ZONE, value)
        return see_other("/setup/country")

    # -- country -----------------------------------------------------------------

    options = [(code, COUNTRY_NAMES.get(code, code)) for code in sorted(TONE_PLANS)]

    def country_page(value: str, error: str | None, status: int = 200) -> str:
        body = (
            "<p>Analog phones hear the dial, ring-back and busy tones of this country. "
            "Only these countries' tones are known so far.</p>"
            f'<form method="post" action="/setup/country" id="country-form">{hidden_csrf()}'
            + select_field("country", "Country", options, value, error)
            + '<button type="submit" id="country-submit">Save and go on</button></form>'
        )
        return page("Setup: country", body, status)

    @reg.add("GET", "/setup/country", "system:write", "Setup: country")
    def country() -> str:
        return country_page(str(get_setting(db, COUNTRY) or "US"), None)

    @reg.add("POST", "/setup/country", "system:write", "Set the country")
    def country_submit() -> str:
        value = form_text("country").strip().upper()
        if value not in TONE_PLANS:
            return country_page(value, "Choose one of the countries listed.", 400)
        with change(services, "setup.country", value):
            set_setting(db, COUNTRY, value)
        return see_other("/setup/network")

    # -- network check -----------------------------------------------------------

    @reg.add("GET", "/setup/network", "system:write", "Setup: network check")
    def network() -> str:
        e = html.escape
        facts = network_facts(services)
        addresses = "".join(f"<li><code>{e(a)}</code></li>" for a in facts.addresses)
        sip = (
            "answers"
            if facts.sip_tcp_answers
            else "does not answer (is the PBX running, and listening on this box's addresses?)"
        )
        pbx = {
            None: "This web server runs without the PBX attached: registrations cannot be "
            "shown here.",
            True: "The PBX core answers.",
            False: "The PBX core did not answer in time.",
        }[facts.pbx_answers]
        body = (
            f'<p>Host name: <code id="hostname">{e(facts.hostname)}</code>. You reached this '
            f'page as <code id="web-host">{e(facts.web_host)}</code>; phones on the same '
            "network use that as their SIP server.</p>"
            f"<h2>Addresses of this box</h2>"
            f'<ul id="addresses">{addresses or "<li>None found for the host name.</li>"}</ul>'
            "<h2>SIP</h2>"
            f'<p id="sip-check">SIP port {services.sip_port} (UDP and TCP, the default listen '
            f"setting) on this box: TCP {sip}.</p>"
            f'<p id="pbx-check">{e(pbx)}</p>'
            '<p><a href="/setup/extensions" id="network-next">Go on to the first '
            "extensions</a></p>"
        )
        return page("Setup: network check", body)

    # -- first extensions --------------------------------------------------------

    def extensions_page(
        values: dict[str, str],
        errors: dict[str, str],
        made: list[NewExtension] | None = None,
        status: int = 200,
    ) -> str:
        e = html.escape
        parts = []
        if made:
            host, realm = e(server_host()), e(services.directory.realm)
            rows = "".join(
                f'<tr><td>{e(x.number)}</td><td><code class="secret" '
                f'id="password-{e(x.number)}">{e(x.password)}</code></td></tr>'
                for x in made
            )
            parts.append(
                '<section class="notice credentials" id="made-extensions">'
                f"<h2>{len(made)} extension(s) made</h2><p><strong>Copy the passwords now: "
                "they are shown only once.</strong> Each extension's page can reset its "
                "password and show a QR code for a softphone.</p>"
                f'<p>SIP server <code id="sip-server">{host}</code>, '
                f"port {services.sip_port} (UDP or "
                f'TCP); domain (realm) <code id="sip-realm">{realm}</code>; the user name is '
                "the extension number.</p>"
                '<table id="new-passwords"><thead><tr><th>Extension</th><th>Password</th></tr>'
                f"</thead><tbody>{rows}</tbody></table></section>"
                '<p><a href="/setup" id="extensions-next">Back to the setup steps</a></p>'
            )
        parts.append(
            f"<p>Make up to {MAX_FIRST} extensions in a row of numbers, each with a "
            "generated SIP password. More can be added or imported later.</p>"
            f'<form method="post" action="/setup/extensions" id="first-extensions">'
            + hidden_csrf()
            + field("first", "First number", values.get("first", ""), errors.get("first"), "off")
            + field("count", "How many", values.get("count", ""), errors.get("count"), "off")
            + '<button type="submit" id="extensions-submit">Make extensions</button></form>'
            + '<p><a href="/setup" id="extensions-skip">Skip: back to the steps</a></p>'
        )
        return page("Setup: first extensions", "\n".join(parts), status)

    @reg.add("GET", "/setup/extensions", "system:write", "Setup: first extensions")
    def first_extensions() -> str:
        return extensions_page({"first": "201", "count": "5"}, {})

    @reg.add("POST", "/setup/extensions", "system:write", "Make the first extensions")
    def first_extensions_submit() -> str:
        if not current().may("extension:write"):
            raise bottle.HTTPError(403, "making extensions needs extension:write")
        values = {"first": form_text("first").strip(), "count": form_text("count").strip()}
        errors: dict[str, str] = {}
        count = int(values["count"]) if values["count"].isdigit() else 0
        if not 1 <= count <= MAX_FIRST:
            errors["count"] = f"A whole number from 1 to {MAX_FIRST}."
        numbers: list[str] = []
        try:
            numbers = first_numbers(values["first"], max(count, 1))
        except StoreError:
            errors["first"] = "1 to 15 digits, and room for the whole row below 15 digits."
        if "first" not in errors and (taken := services.directory.existing(numbers)):
            errors["first"] = f"Already taken: {', '.join(taken[:10])}."
        if errors:
            return extensions_page(values, errors, status=400)
        made = [NewExtension(number=n, password=generate_password()) for n in numbers]
        with change(services, "extension.create", f"{numbers[0]}-{numbers[-1]}", "setup"):
            services.directory.add_many(made)
        return extensions_page({}, {}, made, 201)
