"""A headless Chromium for end-to-end tests of the web UI, driven by selenium.

Only Debian's packages are used: `chromium` (/usr/bin/chromium, a launcher script that
execs /usr/lib/chromium/chromium) and `chromium-driver` (/usr/bin/chromedriver). The
driver's path is given to selenium, so selenium-manager is never asked to find or
download anything. `make test` installs both (TEST_DEBS in the Makefile).

`Browser.start()` runs chromedriver on a free loopback port with a browser that has a
temporary profile and download folder, accepts the server's self-signed certificate
(--ignore-certificate-errors) and runs as root (--no-sandbox). `close()` quits through
selenium, then checks, by the PIDs recorded while it ran (chromedriver's process tree,
read from /proc), that none of them is still alive, and SIGKILLs any that is. Nothing
is ever looked up or killed by name. Chromium's crash handler (chrome_crashpad_handler)
double-forks away from that tree: its PIDs are recorded as the processes whose
`--database=` is the crash folder under this browser's own temporary XDG_CONFIG_HOME,
a path no other process names. (--disable-crashpad-for-testing would avoid it, but
with it Chromium 156's network service crashes at once: "FD ownership violation".)

Test modules import this file (not conftest), as they do sipp_peer and baresip_phone.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM: Final = "/usr/bin/chromium"
CHROMEDRIVER: Final = "/usr/bin/chromedriver"
WINDOW: Final = (1280, 1000)  # px: wide enough that the menu fits in one or two rows
WAIT: Final = 10.0  # s, default bound of every wait for the page
PAGE_LOAD: Final = 20.0  # s, selenium's bound on one navigation
QUIT_TIMEOUT: Final = 10.0  # s for the browser's processes to be gone after quit()
POLL: Final = 0.1  # s between two looks while waiting for the page or a file
LOCALHOST: Final = "127.0.0.1"
WEB_URL: Final = re.compile(r"web UI on (https://[0-9.]+:[0-9]+)/")
MAX_SCREENSHOT_HEIGHT: Final = 4000  # px: a longer page is cut there
SCREENSHOT_NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]*")

T = TypeVar("T")


class BrowserError(AssertionError):
    """The page did not do what the test waited for; the message says what it showed."""


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return (
                f"{path} is missing: run `make test`, which installs Debian's chromium "
                "and chromium-driver"
            )
    return None


def free_tcp_port(host: str = LOCALHOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def web_url(log: str) -> str:
    """The https://HOST:PORT of the web UI, from the `ready` line of `yakyak serve`."""
    match = WEB_URL.search(log)
    if match is None:
        raise BrowserError(f"no `web UI on https://...` in the server's output:\n{log[-3000:]}")
    return match.group(1)


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if it is gone or a
    zombie: with the start time a recorded PID is never mistaken for a new process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # exited; only its parent has not reaped it yet
        return None
    return fields[19]


def process_tree(root: int) -> dict[int, str]:
    """`root` and its descendants now, as {pid: start time}, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    tree: dict[int, str] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        started = _start_time(pid)
        if started is not None:
            tree[pid] = started
        todo.extend(children.get(pid, []))
    return tree


def processes_naming(token: bytes) -> dict[int, str]:
    """Processes whose command line contains `token`, as {pid: start time}."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        started = _start_time(int(entry))
        if token in command and started is not None:
            found[int(entry)] = started
    return found


class Browser:
    """One headless Chromium with its chromedriver; `screenshots` is where PNGs go."""

    def __init__(self, screenshots: Path) -> None:
        self.screenshots = screenshots
        self._home = Path(tempfile.mkdtemp(prefix="yakyak-browser-"))
        self.downloads = self._home / "downloads"
        self.profile = self._home / "profile"
        self.base = ""
        self._driver: webdriver.Chrome | None = None
        self._service: Service | None = None
        self._pids: dict[int, str] = {}

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> Browser:
        problem = missing()
        if problem:
            raise BrowserError(problem)
        self.downloads.mkdir(parents=True)
        self.profile.mkdir()
        self.screenshots.mkdir(parents=True, exist_ok=True)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",  # small /dev/shm in containers
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--ignore-certificate-errors",  # the box's own self-signed certificate
            f"--user-data-dir={self.profile}",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-sync",
            "--disable-extensions",
            # No sound card here: media plays into a muted output, without a gesture.
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
        ):
            options.add_argument(argument)
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(self.downloads),
                "download.prompt_for_download": False,
                "download.directory_upgrade": True,
                "safebrowsing.enabled": False,
            },
        )
        self._service = Service(
            executable_path=CHROMEDRIVER,
            port=free_tcp_port(),
            log_output=str(self._home / "chromedriver.log"),
            # Chromium's crash folder (and caches) under our temporary folder, not ~/.config.
            env=dict(
                os.environ,
                XDG_CONFIG_HOME=str(self._home / "config"),
                XDG_CACHE_HOME=str(self._home / "cache"),
            ),
        )
        try:
            self._driver = webdriver.Chrome(service=self._service, options=options)
        except Exception:
            self._stop_service()
            raise
        self._driver.set_page_load_timeout(PAGE_LOAD)
        self._remember_pids()
        return self

    def _remember_pids(self) -> None:
        if self._service is not None and self._service.process is not None:
            self._pids.update(process_tree(self._service.process.pid))
        crash_folder = f"--database={self._home / 'config'}/".encode()
        self._pids.update(processes_naming(crash_folder))

    @property
    def pids(self) -> dict[int, str]:
        """Every PID of chromedriver and the browser seen so far, with its start time."""
        return dict(self._pids)

    def _stop_service(self) -> None:
        if self._service is not None:
            self._service.stop()

    def close(self) -> list[int]:
        """Quits the browser and the driver; returns the PIDs that outlived the quit
        (each has been SIGKILLed). An empty list is the good outcome."""
        self._remember_pids()  # renderers started since start()
        failure: Exception | None = None
        try:
            if self._driver is not None:
                self._driver.quit()  # also stops the chromedriver service
        except Exception as exc:  # a hung renderer: the PIDs below are still stopped
            failure = exc
        self._driver = None
        try:
            self._stop_service()
        except Exception as exc:
            failure = failure or exc
        deadline = time.monotonic() + QUIT_TIMEOUT
        alive = self._alive()
        while alive and time.monotonic() < deadline:
            time.sleep(POLL)
            alive = self._alive()
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if failure is not None:
            raise BrowserError(
                f"quit failed ({failure}); killed by PID: {alive}; chromedriver's log is "
                f"{self._home / 'chromedriver.log'}"
            ) from failure
        if not alive:  # else its profile and log are kept for a look
            shutil.rmtree(self._home, ignore_errors=True)
        return alive

    def _alive(self) -> list[int]:
        return [pid for pid, started in self._pids.items() if _start_time(pid) == started]

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def driver(self) -> webdriver.Chrome:
        if self._driver is None:
            raise BrowserError("the browser is not running")
        return self._driver

    # --- pages ---------------------------------------------------------------------------

    def open(self, path: str) -> None:
        """Goes to `path` on the server `base` names (set it to web_url(...))."""
        self.driver.get(self.base + path)
        self._remember_pids()

    @property
    def path(self) -> str:
        url = self.driver.current_url
        return url[len(self.base) :] if url.startswith(self.base) else url

    def h1(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "h1").text

    def text(self) -> str:
        """The text of the page's <main> (without the menu), or of its body if none."""
        found = self.css("main") or self.css("body")
        return found[0].text if found else ""

    def by_id(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def css(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def fill(self, element_id: str, value: str) -> None:
        element = self.by_id(element_id)
        element.clear()
        element.send_keys(value)

    def choose(self, element_id: str, value: str) -> None:
        Select(self.by_id(element_id)).select_by_value(value)

    def click(self, element: WebElement | str) -> None:
        """Clicks an element (or the one with that id)."""
        (self.by_id(element) if isinstance(element, str) else element).click()

    def submit_button(self, form_action: str) -> WebElement:
        """The submit button of the form posting to `form_action`."""
        return self.driver.find_element(
            By.CSS_SELECTOR, f'form[action="{form_action}"] button[type="submit"]'
        )

    def wait(self, condition: Callable[[], T], what: str, timeout: float = WAIT) -> T:
        """The first truthy value of `condition`, polled until `timeout` s; a failure
        says `what` was awaited and what the page showed."""
        try:
            value: T = WebDriverWait(
                self.driver,
                timeout,
                poll_frequency=POLL,
                # live.js replaces whole table bodies: an element found a moment ago may be gone
                ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
            ).until(lambda _: condition())
        except TimeoutException:
            raise BrowserError(
                f"waited {timeout:.0f} s for {what}; at {self.path} the page shows "
                f"h1 {self._h1_or_none()!r}:\n{self._text_or_none()[:3000]}"
            ) from None
        return value

    def wait_h1(self, title: str, timeout: float = WAIT) -> None:
        self.wait(lambda: self._h1_or_none() == title, f"the page titled {title!r}", timeout)

    def wait_text(self, text: str, timeout: float = WAIT) -> None:
        self.wait(lambda: text in self._text_or_none(), f"the text {text!r}", timeout)

    def _h1_or_none(self) -> str | None:
        found = self.css("h1")
        try:
            return found[0].text if found else None
        except Exception:  # the page changed between find and read
            return None

    def _text_or_none(self) -> str:
        try:
            return self.text()
        except Exception:  # between two pages
            return ""

    # --- files ---------------------------------------------------------------------------

    def screenshot(self, name: str) -> Path:
        """The whole page (not only the window: through the DevTools protocol, since
        selenium's own screenshot stops at the viewport) as `screenshots/NAME.png`,
        NAME in lower-case-with-dashes."""
        if not SCREENSHOT_NAME.fullmatch(name):
            raise ValueError(f"not a screenshot name: {name!r}")
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {
            "x": 0,
            "y": 0,
            "width": max(1, min(int(size["width"]), WINDOW[0])),
            "height": max(1, min(int(size["height"]), MAX_SCREENSHOT_HEIGHT)),
            "scale": 1,
        }
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        path = self.screenshots / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def wait_download(self, suffix: str, timeout: float = WAIT) -> Path:
        """The one finished file ending in `suffix` in the download folder (Chromium
        writes NAME.crdownload and renames it at the end)."""
        deadline = time.monotonic() + timeout
        while True:
            names = sorted(self.downloads.iterdir())
            done = [p for p in names if p.name.endswith(suffix)]
            if done and not any(p.name.endswith(".crdownload") for p in names):
                return done[-1]
            if time.monotonic() >= deadline:
                raise BrowserError(
                    f"no finished *{suffix} download in {self.downloads} within "
                    f"{timeout:.0f} s: {[p.name for p in names]}"
                )
            time.sleep(POLL)
