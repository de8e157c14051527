"""The web UI in a real headless Chromium against a real `yakyak serve`.

One browser for the module (tests/e2e/browser.py: Debian's chromium through its
chromedriver); one server per test, since each test changes the box. The admin signs
in with the password conftest's `yakyak init --admin-password` set, and must change it
first, as on a new box. Screenshots of the main pages go to
test-artifacts/screenshots/ at the top of the checkout, named after the page.

* The first sign-in: forced password change, then the setup wizard step by step (time
  zone, country, network check, first extensions with their passwords shown once),
  finished, then the dashboard.
* An extension added in the page: its generated password is read off the page and a
  sipp phone registers with it; the dashboard, already open, shows the registration
  (its live table is updated by Server-Sent Events, not by a reload).
* A CSV import with one bad row: the report names that row's line.
* A message left by a baresip phone plays in the page: the <audio> element's source
  is fetched by the page as audio/wav (a RIFF/WAVE body), and play() advances its
  currentTime with no media error (into a muted output: there is no sound card).
* A backup downloaded by the browser, an extension deleted, the backup uploaded for
  restore ("restart to apply"), the server restarted on the same data folder: the
  extension is back.
* The other menu pages render for the administrator: users, roles, routes,
  auto-attendant, analog ports, audit log.
"""

from __future__ import annotations

import json
import re
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from audio_check import TONE_A_HZ, write_tone_wav
from baresip_phone import Phones, Registrar
from browser import Browser, web_url

if TYPE_CHECKING:
    from conftest import Extension, ServerFactory, SippRunner, YakyakServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SCREENSHOTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ADMIN_PASSWORD: Final = "e2e-admin"  # what conftest's `yakyak init` sets
NEW_PASSWORD: Final = "e2e-admin-browser-1"
PASSWORDS: Final = {"101": "e2e-browser-101", "102": "e2e-browser-102"}
PIN: Final = "4321"
RELOADED: Final = r"directory or lockouts changed: reloaded"
CALL_TIMEOUT: Final = 20.0  # s for a call to be answered, recorded, closed
SEEN_TIMEOUT: Final = 15.0  # s for a registration to reach the open dashboard (SSE: 2 s looks)
SPEAK_SECONDS: Final = 2.0  # of message after the beep; shorter than 1 s is not kept
PLAYED_SECONDS: Final = 0.5  # of currentTime that shows playback really advanced
ATTENDANT: Final = {
    "menus": {
        "main": {
            "greeting": ["welcome"],
            "timeout": 5,
            "retries": 3,
            "options": {"1": {"action": "transfer", "extension": "102"}},
        }
    },
    "schedules": {},
}
ROUTES: Final = (
    '[{ name = "attendant", pattern = "500", target = { type = "ivr", menu = "main" } }]'
)


@pytest.fixture
def yakyak_extensions(extension_record: type[Extension]) -> tuple[Extension, ...]:
    """Two extensions (fewer `ext add` runs per server than conftest's three)."""
    return tuple(extension_record(n, p) for n, p in PASSWORDS.items())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    started = Browser(SCREENSHOTS).start()
    try:
        yield started
    finally:
        outlived = started.close()
    assert not outlived, f"browser processes outlived quit() and were killed: {outlived}"


# --- signing in ---------------------------------------------------------------------------


def sign_in(browser: Browser, server: YakyakServer, password: str = ADMIN_PASSWORD) -> None:
    """Signs the admin in from a clean cookie jar (every server of this module is on
    127.0.0.1, and cookies do not tell ports apart)."""
    browser.base = web_url(server.log())
    browser.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.open("/")
    browser.wait_h1("Sign in")
    assert browser.path.startswith("/login"), browser.path
    browser.fill("username", "admin")
    browser.fill("password", password)
    browser.click(browser.submit_button("/login"))


def first_sign_in(browser: Browser, server: YakyakServer) -> None:
    """Signs in with the initial password and changes it, as the box demands; the
    administrator of a new box lands on the setup wizard."""
    sign_in(browser, server)
    browser.wait_h1("Change your password")
    assert "first sign-in" in browser.text()
    browser.fill("current", ADMIN_PASSWORD)
    browser.fill("new", NEW_PASSWORD)
    browser.fill("confirm", NEW_PASSWORD)
    browser.click(browser.submit_button("/password"))
    browser.wait_h1("Setup")
    assert browser.path == "/setup", browser.path


def ready_box(browser: Browser, server: YakyakServer) -> None:
    """First sign-in, and the wizard finished without changing anything."""
    first_sign_in(browser, server)
    browser.click("finish-submit")
    browser.wait_h1("Dashboard")


def menu(browser: Browser, label: str, title: str) -> None:
    """Follows the menu link `label` and waits for the page titled `title`."""
    link = browser.css("nav a")
    chosen = [a for a in link if a.text == label]
    assert chosen, f"no menu entry {label!r}: {[a.text for a in link]}"
    browser.click(chosen[0])
    browser.wait_h1(title)


# --- 1. first sign-in and the wizard ------------------------------------------------------


def test_first_sign_in_changes_the_password_and_walks_the_wizard_to_the_dashboard(
    yakyak_server: YakyakServer, browser: Browser
) -> None:
    server = yakyak_server
    first_sign_in(browser, server)
    assert "Welcome" in browser.by_id("setup-state").text
    steps = browser.by_id("setup-steps").text
    assert "Time zone: not set" in steps and "2 so far" in steps, steps

    browser.click("step-timezone")
    browser.wait_h1("Setup: time zone")
    browser.fill("timezone", "Mars/Olympus_Mons")  # refused, and kept in the field
    browser.click("timezone-submit")
    browser.wait_text("Enter a time zone name from the list")
    assert browser.by_id("timezone").get_attribute("value") == "Mars/Olympus_Mons"
    browser.fill("timezone", "Europe/Berlin")
    browser.click("timezone-submit")

    browser.wait_h1("Setup: country")
    browser.choose("country", "DE")
    browser.click("country-submit")

    browser.wait_h1("Setup: network check")
    assert "The PBX core answers." in browser.by_id("pbx-check").text
    assert browser.by_id("web-host").text == server.host
    browser.click("network-next")

    browser.wait_h1("Setup: first extensions")
    browser.fill("first", "201")
    browser.fill("count", "2")
    browser.click("extensions-submit")
    browser.wait_text("2 extension(s) made")
    shown = {n: browser.by_id(f"password-{n}").text for n in ("201", "202")}
    assert all(len(p) >= 16 for p in shown.values()), shown
    assert shown["201"] != shown["202"]
    browser.screenshot("setup-extensions")

    browser.click("extensions-next")
    browser.wait_h1("Setup")
    steps = browser.by_id("setup-steps").text
    assert "Time zone: Europe/Berlin" in steps, steps
    assert "Country, for dial and ring tones: Germany" in steps, steps
    assert "First extensions: 4 so far" in steps, steps
    browser.screenshot("setup")
    browser.click("finish-submit")

    browser.wait_h1("Dashboard")
    assert browser.path == "/", browser.path
    assert "Signed in as admin (role administrator)" in browser.text()
    assert "4 extension(s)." in browser.text()
    # The wizard is done: the dashboard no longer sends the administrator there.
    browser.open("/")
    browser.wait_h1("Dashboard")


# --- 2. an extension added in the page registers a phone ----------------------------------


def test_an_extension_added_in_the_page_registers_a_phone_seen_on_the_dashboard(
    yakyak_server: YakyakServer,
    browser: Browser,
    sipp: SippRunner,
    extension_record: type[Extension],
) -> None:
    server = yakyak_server
    ready_box(browser, server)
    menu(browser, "Extensions", "Extensions")
    browser.fill("number", "150")
    browser.fill("name", "Browser phone")
    browser.click("add-submit")
    browser.wait(lambda: browser.css("#credentials-150"), "the new extension's credentials")
    password = browser.by_id("sip-password-150").text
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", password), password
    assert browser.by_id("sip-user-150").text == "150"
    assert browser.by_id("sip-server-150").text == server.host
    assert browser.by_id("sip-realm-150").text == server.domain
    assert browser.css("#sip-qr-150 svg"), "no QR code"
    browser.screenshot("extension-password-qr")

    # The dashboard is open before the phone registers: the row must come by SSE.
    menu(browser, "Dashboard", "Dashboard")
    browser.wait(
        lambda: first_cells(browser, "#live-registrations") == ["No phone is registered."],
        "an empty registrations table",
    )
    phone = extension_record("150", password)
    result = sipp("register_auth.xml", server, users=[phone])
    assert result.returncode == 0, result.describe()
    browser.wait(
        lambda: "150" in first_cells(browser, "#live-registrations"),
        "extension 150 in the dashboard's registrations, without a reload",
        SEEN_TIMEOUT,
    )
    browser.screenshot("dashboard")

    menu(browser, "Extensions", "Extensions")
    row = browser.by_id("extension-150").find_element("xpath", "./ancestor::tr")
    assert row.find_element("css selector", ".registered-yes").text == "yes"
    browser.screenshot("extensions")


def first_cells(browser: Browser, table_body: str) -> list[str]:
    return [td.text for td in browser.css(f"{table_body} tr td:first-child")]


# --- 3. a CSV import with one bad row -----------------------------------------------------

IMPORT_CSV: Final = """number,password,name,email
301,correct-horse-301,Reception,desk@example.com
302,short,Stock room,
303,battery-staple-303,Yard,
"""


def test_a_csv_import_with_one_bad_row_reports_its_line(
    yakyak_server: YakyakServer, browser: Browser, tmp_path: Path
) -> None:
    server = yakyak_server
    ready_box(browser, server)
    upload = tmp_path / "extensions.csv"
    upload.write_text(IMPORT_CSV, encoding="utf-8")
    menu(browser, "Extensions", "Extensions")
    browser.click("import-link")
    browser.wait_h1("Import extensions")
    browser.by_id("file").send_keys(str(upload))
    browser.choose("mode", "partial")
    browser.click("import-submit")

    browser.wait_h1("Import report")
    result = browser.by_id("import-result").text
    assert result == "Imported 2 extension(s) from extensions.csv, 1 bad row(s) left out.", result
    issues = [
        [td.text for td in row.find_elements("css selector", "td")]
        for row in browser.css("#import-issues tbody tr")
    ]
    assert len(issues) == 1, issues
    where, number, reason = issues[0]
    assert (where, number) == ("line 3", "302"), issues  # the header is line 1
    assert "8" in reason, reason  # the password rule it broke
    assert browser.by_id("import-imported").text == "301, 303"
    browser.screenshot("import-report")

    menu(browser, "Extensions", "Extensions")
    listed = first_cells(browser, "#extensions")
    assert listed == ["101", "102", "301", "303"], listed


# --- 4. a voicemail plays in the page -----------------------------------------------------

# Runs in the page: fetches the <audio> element's own source as the page would, and
# reports status, type and the first 12 bytes (RIFF....WAVE).
FETCH_AUDIO: Final = """
const done = arguments[arguments.length - 1];
const audio = document.querySelector("audio");
fetch(audio.src, {credentials: "same-origin"})
  .then(async (r) => {
    const head = new Uint8Array(await r.arrayBuffer());
    done({status: r.status, type: r.headers.get("Content-Type"), size: head.length,
          head: String.fromCharCode(...head.slice(0, 4)) +
                String.fromCharCode(...head.slice(8, 12))});
  })
  .catch((e) => done({error: String(e)}));
"""
PLAY: Final = """
const done = arguments[arguments.length - 1];
const audio = document.querySelector("audio");
audio.play().then(() => done("playing"), (e) => done("refused: " + e));
"""
STATE: Final = """
const a = document.querySelector("audio");
return {time: a.currentTime, duration: a.duration, error: a.error && a.error.code,
        paused: a.paused, ended: a.ended};
"""


def test_a_voicemail_left_by_a_phone_plays_in_the_page(
    yakyak_server: YakyakServer, browser: Browser, tmp_path: Path
) -> None:
    server = yakyak_server
    # baresip 1.0.0 answers MD5 challenges only (see baresip_phone.py); 102 gets a box.
    for step in (("ext", "auth", "101", "--algorithms", "MD5"), ("mailbox", "add", "102")):
        mark = server.log_mark()
        server.cli(*step, *(("--pin", PIN) if step[0] == "mailbox" else ()))
        assert server.wait_for_log(RELOADED, 5.0, since=mark), server.log()[-3000:]
    with Phones(tmp_path / "phones") as phones:
        alice = phones.registered(
            "101",
            write_tone_wav(tmp_path / "alice.wav", TONE_A_HZ, 30.0),
            Registrar(server.host, server.port, PASSWORDS["101"]),
        )
        alice.wait_registered()
        mark = server.log_mark()
        alice.dial(f"sip:102@{server.host}:{server.port}")  # 102 has no phone: its mailbox
        alice.wait_event("CALL_ESTABLISHED", CALL_TIMEOUT)
        assert server.wait_for_log(r"call \d+: recording", CALL_TIMEOUT, since=mark)
        time.sleep(SPEAK_SECONDS)  # the message itself: it has to last this long
        alice.hangup()
        alice.wait_event("CALL_CLOSED", CALL_TIMEOUT)
    assert server.wait_for_log(r"mailbox 102: StoreMessage", CALL_TIMEOUT, since=mark)

    ready_box(browser, server)
    menu(browser, "Voicemail", "Voicemail")
    browser.click(browser.driver.find_element("link text", "102"))
    browser.wait_h1("Mailbox 102")
    audio = browser.css("audio")
    assert len(audio) == 1, browser.text()
    source = audio[0].get_attribute("src") or ""
    assert re.fullmatch(re.escape(browser.base) + r"/voicemail/102/msg-[^/]+\.wav", source), source
    assert "101" in browser.text()  # the caller

    fetched: dict[str, Any] = browser.driver.execute_async_script(FETCH_AUDIO)
    assert fetched.get("status") == 200, fetched
    assert fetched["type"] == "audio/wav", fetched
    assert fetched["head"] == "RIFFWAVE" and fetched["size"] > 8000, fetched  # > 0.5 s

    assert browser.driver.execute_async_script(PLAY) == "playing"
    state = browser.wait(
        lambda: (s := browser.driver.execute_script(STATE))["time"] >= PLAYED_SECONDS and s,
        f"the message to play {PLAYED_SECONDS} s",
    )
    assert state["error"] is None, state
    assert SPEAK_SECONDS - 1.0 <= state["duration"] <= SPEAK_SECONDS + 2.0, state
    browser.screenshot("voicemail")  # the player shows how far it got

    menu(browser, "Call log", "Call log")
    calls = [
        [td.text for td in row.find_elements("css selector", "td")]
        for row in browser.css("table tbody tr")
    ]
    assert [cells[1:4] for cells in calls] == [["101", "102", "Answered"]], calls
    browser.screenshot("call-log")


# --- 5. backup, restore, restart ----------------------------------------------------------


def test_a_backup_taken_and_restored_in_the_page_brings_back_a_deleted_extension(
    yakyak_servers: ServerFactory, browser: Browser
) -> None:
    server = yakyak_servers()
    ready_box(browser, server)
    menu(browser, "Backup", "Backup and restore")
    for old in browser.downloads.iterdir():
        old.unlink()  # only this test downloads, but the folder is the module's
    browser.click(browser.submit_button("/backup/download"))
    archive = browser.wait_download(".tar.gz")
    assert re.fullmatch(r"yakyak-backup-\d{8}-\d{6}\.tar\.gz", archive.name), archive.name
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert any(n.endswith("yakyak.db") for n in names), names

    menu(browser, "Extensions", "Extensions")
    browser.click("extension-102")
    browser.wait_h1("Extension 102")
    browser.click("delete-link")
    browser.wait_h1("Delete extension 102?")
    browser.click("delete-submit")
    browser.wait_text("The extension has been deleted.")
    assert first_cells(browser, "#extensions") == ["101"]

    menu(browser, "Backup", "Backup and restore")
    browser.by_id("archive").send_keys(str(archive))
    browser.click(browser.submit_button("/backup/restore"))
    browser.wait_text("Restart YakYak to apply it")
    assert browser.path == "/backup?notice=staged", browser.path
    browser.screenshot("backup")

    assert server.stop() == 0, server.log()[-3000:]
    restarted = yakyak_servers(data=server.data)
    assert restarted.wait_for_log(r"restored the backup of", 1.0), restarted.log()[-3000:]
    # The restored database has the admin with the changed password and setup done.
    sign_in(browser, restarted, NEW_PASSWORD)
    browser.wait_h1("Dashboard")
    menu(browser, "Extensions", "Extensions")
    assert first_cells(browser, "#extensions") == ["101", "102"]
    menu(browser, "Backup", "Backup and restore")
    assert "A restore is waiting" not in browser.text()


# --- 6. the other pages -------------------------------------------------------------------


def test_the_menu_pages_render_for_the_administrator(
    yakyak_servers: ServerFactory, browser: Browser, tmp_path: Path
) -> None:
    server = yakyak_servers(
        config={"board.fxs_extensions": '{ "1" = "101" }', "dialplan.routes": ROUTES}
    )
    ivr = tmp_path / "ivr.json"
    ivr.write_text(json.dumps(ATTENDANT), encoding="utf-8")
    mark = server.log_mark()
    server.cli("ivr", "load", str(ivr))
    assert server.wait_for_log(RELOADED, 5.0, since=mark), server.log()[-3000:]
    ready_box(browser, server)

    pages = (
        # menu label, page title, screenshot, a text the page must show
        ("Users", "Users", "users", "admin administrator"),
        ("Roles", "Roles", "roles", "administrator"),
        ("Routes", "Routes", "routes", "auto-attendant main"),
        ("Auto-attendant", "Auto-attendant", "auto-attendant", "1: transfer 102"),
        ("Analog ports", "Analog ports", "analog-ports", "extension 101"),
        ("Audit log", "Audit log", "audit-log", "setup.done"),
    )
    for label, title, name, expected in pages:
        menu(browser, label, title)
        browser.wait_text(expected)
        browser.screenshot(name)
    written = sorted(p.stem for p in SCREENSHOTS.glob("*.png"))
    assert {name for _, _, name, _ in pages} <= set(written), written
