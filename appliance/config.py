"""The appliance's start-up configuration: `yakyak.toml` in the data folder.

Every key is checked when the file is read; a bad one stops start-up with a
`ConfigError` naming the file, the dotted key and the reason. Values an administrator
changes while the box runs live in the database instead (appliance.store.settings).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Self

from appliance.dsp.tones import TONE_PLANS
from appliance.pbx.dialplan import Dialplan, DialplanError, Route
from appliance.sip.digest_hash import ALGORITHMS

CONFIG_FILE: Final = "yakyak.toml"
DATABASE_FILE: Final = "yakyak.db"
TRANSPORTS: Final[tuple[str, ...]] = ("udp", "tcp")
LOG_LEVELS: Final[tuple[str, ...]] = ("debug", "info", "warning", "error")

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_BOARD = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_DIALABLE: Final = frozenset("0123456789*#+")


class ConfigError(ValueError):
    """A bad configuration file or command-line override; the message is one line."""


LAN_HOST: Final = "lan"  # [http] listen/redirect: the LAN address, found at start


class _Bad(ValueError):
    """A value's reason for refusal, before the file and key are known."""


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _is_hostname(text: str) -> bool:
    return 0 < len(text) <= 253 and all(_LABEL.fullmatch(p) for p in text.split("."))


def _is_host(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return _is_hostname(text) and not text.replace(".", "").isdigit()
    return True


def _split_host_port(text: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host without brackets, port); _Bad otherwise."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _Bad(f"{host!r} is not an IPv6 address") from None
        if not sep or not rest.startswith(":"):
            raise _Bad("expected [IPv6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not _is_host(host):
            raise _Bad("expected HOST:PORT (IPv6 as [::1]:PORT)")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _Bad(f"port must be 1-65535, got {port_text!r}")
    return host, int(port_text)


def _format_host(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Self:
        return cls(*_split_host_port(text))

    def __str__(self) -> str:
        return _format_host(self.host, self.port)


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """One SIP listening socket, written `transport:host:port`, e.g. `tcp:[::1]:5060`."""

    transport: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Self:
        transport, sep, rest = text.partition(":")
        if not sep or transport not in TRANSPORTS:
            raise _Bad(
                f"expected TRANSPORT:HOST:PORT with TRANSPORT one of {', '.join(TRANSPORTS)}"
            )
        return cls(transport, *_split_host_port(rest))

    def __str__(self) -> str:
        return f"{self.transport}:{_format_host(self.host, self.port)}"


@dataclass(frozen=True, slots=True)
class PortRange:
    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> Self:
        low, sep, high = text.partition("-")
        if not (sep and low.strip().isdigit() and high.strip().isdigit()):
            raise _Bad(f"must look like LOW-HIGH, e.g. '10000-20000', got {text!r}")
        lo, hi = int(low), int(high)
        if not 1024 <= lo < hi <= 65535:
            raise _Bad(f"must satisfy 1024 <= LOW < HIGH <= 65535, got {text!r}")
        if lo % 2:
            # RFC 3550 §11: RTP on an even port, RTCP on the odd one above it.
            raise _Bad(f"LOW must be even (RTP even, RTCP odd), got {text!r}")
        return cls(lo, hi)

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


@dataclass(frozen=True, slots=True)
class GeneralConfig:
    domain: str = "yakyak.local"  # also the digest realm: changing it invalidates HA1s
    log_level: str = "info"


@dataclass(frozen=True, slots=True)
class SipConfig:
    listen: tuple[ListenAddress, ...] = (
        ListenAddress("udp", "0.0.0.0", 5060),
        ListenAddress("tcp", "0.0.0.0", 5060),
    )
    min_expires: int = 60  # RFC 3261 §10.3 step 7: below this, 423 Interval Too Brief
    max_expires: int = 3600
    default_expires: int = 3600
    user_agent: str = "YakYak"


@dataclass(frozen=True, slots=True)
class AuthConfig:
    # MD5 first: sipp 3.6 and many phones answer only the first challenge (RFC 8760
    # §2.4 lets them) and only know MD5.
    algorithms: tuple[str, ...] = ALGORITHMS
    nonce_lifetime: int = 300
    max_failures: int = 5  # per address within failure_window
    failure_window: int = 300
    lockout_time: int = 900
    extension_max_failures: int = 20  # per extension, all addresses, within failure_window
    unauth_rate: float = 20.0  # requests/s per address while unauthenticated or failing
    unauth_burst: int = 40


@dataclass(frozen=True, slots=True)
class HttpConfig:
    # "lan": the address of the interface the default route leaves by, found at start:
    # the web UI is on the office LAN, not on every interface the box has
    listen: HostPort = HostPort(LAN_HOST, 8443)
    redirect: HostPort | None = None  # a plain-HTTP listener that only redirects to HTTPS


@dataclass(frozen=True, slots=True)
class MediaConfig:
    rtp_ports: PortRange = PortRange(10000, 20000)


@dataclass(frozen=True, slots=True)
class CallsConfig:
    no_answer_timeout: int = 30  # s of ringing before the caller hears 480
    session_expires: int = 1800  # s, RFC 4028 session interval asked of phones
    min_se: int = 90  # s, the shortest interval accepted (RFC 4028 floor is 90)
    rtp_timeout: int = 60  # s without RTP from a phone that should send; 0 = never
    tone_country: str = "US"  # ringback, busy... from this country's tone plan
    max_calls: int = 500


@dataclass(frozen=True, slots=True)
class DialplanConfig:
    # Checked before the built-in rule (a number equal to an extension rings it).
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class VoicemailConfig:
    own_code: str = "*97"  # dial-in to the caller's own mailbox
    any_code: str = "*98"  # dial-in to any mailbox
    sounds: str = "/usr/share/asterisk/sounds"  # Debian asterisk-core-sounds-*-wav
    music: str = "/usr/share/asterisk/moh"  # Debian asterisk-moh-opsound-wav
    music_on_hold: bool = True
    language: str = "en"  # prompts of mailboxes and menus that name none
    smtp_host: str = ""  # empty: no email notification
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_sender: str = "yakyak@localhost"


@dataclass(frozen=True, slots=True)
class BoardConfig:
    name: str = "sim"
    analog: bool = True  # run the board's analog ports (FXS phones, FXO lines)
    fxs_extensions: Mapping[int, str] = field(default_factory=dict)  # port -> extension
    fxo_inbound: Mapping[int, str] = field(default_factory=dict)  # port -> number it calls


# -- value checkers: raw TOML value -> typed value, or _Bad(reason) -------------


def _integer(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Bad(f"must be an integer between {low} and {high}, got {_show(value)}")
        return value

    return check


def _number(low: float, high: float) -> Callable[[object], float]:
    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Bad(f"must be a number between {low:g} and {high:g}, got {_show(value)}")
        if not low < value <= high:
            raise _Bad(f"must be a number above {low:g} and at most {high:g}, got {value}")
        return float(value)

    return check


def _choice(options: tuple[str, ...]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str) or value not in options:
            raise _Bad(f"must be one of {', '.join(options)}, got {_show(value)}")
        return value

    return check


def _text(max_length: int) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str) or not 0 < len(value) <= max_length:
            raise _Bad(f"must be a string of 1 to {max_length} characters, got {_show(value)}")
        if not value.isprintable():
            raise _Bad(f"must be printable text, got {_show(value)}")
        return value

    return check


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"must be true or false, got {_show(value)}")
    return value


def _optional_text(max_length: int) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str) or len(value) > max_length or not value.isprintable():
            raise _Bad(f"must be printable text of at most {max_length} characters")
        return value

    return check


def _feature_code(value: object) -> str:
    if not isinstance(value, str) or not 2 <= len(value) <= 8 or value[0] != "*":
        raise _Bad(f"must be a star code such as '*97', got {_show(value)}")
    if not all(c in "0123456789*#" for c in value):
        raise _Bad(f"must hold only digits, * and #, got {_show(value)}")
    return value


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad(f"must be a string, got {_show(value)}")
    return value


def _domain(value: object) -> str:
    text = _string(value)
    if not _is_host(text):
        raise _Bad(f"must be a host name like 'pbx.example.com' or an IPv4 address, got {text!r}")
    return text


def _string_list(value: object) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _Bad(f"must be a non-empty list of strings, got {_show(value)}")
    if len(set(value)) != len(value):
        raise _Bad(f"lists an entry twice: {_show(value)}")
    return value


def _listen(value: object) -> tuple[ListenAddress, ...]:
    addresses = []
    for item in _string_list(value):
        try:
            addresses.append(ListenAddress.parse(item))
        except _Bad as exc:
            raise _Bad(f"{item!r}: {exc}") from None
    return tuple(addresses)


def _algorithms(value: object) -> tuple[str, ...]:
    names = _string_list(value)
    unknown = [n for n in names if n not in ALGORITHMS]
    if unknown:
        raise _Bad(f"unknown algorithm {unknown[0]!r}; known: {', '.join(ALGORITHMS)}")
    return tuple(names)


def _host_port(value: object) -> HostPort:
    return HostPort.parse(_string(value))


def _port_range(value: object) -> PortRange:
    return PortRange.parse(_string(value))


def _country(value: object) -> str:
    text = _string(value).upper()
    if text not in TONE_PLANS and text != "UK":
        raise _Bad(f"no tone plan for {_show(value)}; known: {', '.join(sorted(TONE_PLANS))}")
    return text


def _routes(value: object) -> tuple[Route, ...]:
    try:
        return Dialplan.from_dicts(value).routes
    except DialplanError as exc:
        raise _Bad(str(exc)) from None


def _port_numbers(value: object) -> dict[int, str]:
    """``{ "1" = "201", "2" = "202" }``: port number -> a dialable number."""
    if not isinstance(value, dict):
        raise _Bad(f'must be a table like {{ "1" = "201" }}, got {_show(value)}')
    out: dict[int, str] = {}
    for key, number in value.items():
        if not str(key).isdigit() or not 1 <= int(key) <= 64:
            raise _Bad(f"{key!r}: must be a port number 1-64")
        if not isinstance(number, str) or not number or set(number) - _DIALABLE:
            raise _Bad(f"{key!r}: must be a number to dial (0-9 * # +), got {_show(number)}")
        out[int(key)] = number
    return out


def _board(value: object) -> str:
    text = _string(value)
    if not _BOARD.fullmatch(text):
        raise _Bad(f"must be a board name like 'sim' (a-z, 0-9, _ -), got {text!r}")
    return text


_DAY: Final = 86400
_SECTIONS: Final[dict[str, tuple[type[Any], dict[str, Callable[[object], object]]]]] = {
    "general": (GeneralConfig, {"domain": _domain, "log_level": _choice(LOG_LEVELS)}),
    "sip": (
        SipConfig,
        {
            "listen": _listen,
            "min_expires": _integer(1, _DAY),
            "max_expires": _integer(1, _DAY),
            "default_expires": _integer(1, _DAY),
            "user_agent": _text(100),
        },
    ),
    "auth": (
        AuthConfig,
        {
            "algorithms": _algorithms,
            "nonce_lifetime": _integer(10, _DAY),
            "max_failures": _integer(1, 1000),
            "failure_window": _integer(1, _DAY),
            "lockout_time": _integer(1, 30 * _DAY),
            "extension_max_failures": _integer(1, 100_000),
            "unauth_rate": _number(0, 100_000),
            "unauth_burst": _integer(1, 1_000_000),
        },
    ),
    "http": (HttpConfig, {"listen": _host_port, "redirect": _host_port}),
    "media": (MediaConfig, {"rtp_ports": _port_range}),
    "calls": (
        CallsConfig,
        {
            "no_answer_timeout": _integer(1, 3600),
            "session_expires": _integer(90, _DAY),
            "min_se": _integer(90, _DAY),
            "rtp_timeout": _integer(0, _DAY),
            "tone_country": _country,
            "max_calls": _integer(1, 100_000),
        },
    ),
    "dialplan": (DialplanConfig, {"routes": _routes}),
    "voicemail": (
        VoicemailConfig,
        {
            "own_code": _feature_code,
            "any_code": _feature_code,
            "sounds": _text(4096),
            "music": _text(4096),
            "music_on_hold": _boolean,
            "language": _choice(("en", "es", "fr")),
            "smtp_host": _optional_text(253),
            "smtp_port": _integer(1, 65535),
            "smtp_starttls": _boolean,
            "smtp_username": _optional_text(256),
            "smtp_password": _optional_text(256),
            "smtp_sender": _text(256),
        },
    ),
    "board": (
        BoardConfig,
        {
            "name": _board,
            "analog": _boolean,
            "fxs_extensions": _port_numbers,
            "fxo_inbound": _port_numbers,
        },
    ),
}


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path
    general: GeneralConfig = field(default_factory=GeneralConfig)
    sip: SipConfig = field(default_factory=SipConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    dialplan: DialplanConfig = field(default_factory=DialplanConfig)
    voicemail: VoicemailConfig = field(default_factory=VoicemailConfig)
    board: BoardConfig = field(default_factory=BoardConfig)

    @property
    def path(self) -> Path:
        return self.data_dir / CONFIG_FILE

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_FILE

    @classmethod
    def load(cls, data_dir: Path) -> Self:
        """Read and check `data_dir/yakyak.toml`; ConfigError if missing or bad."""
        path = data_dir / CONFIG_FILE
        try:
            with path.open("rb") as f:
                document = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: not found; create it with `yakyak init --data {data_dir}`"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not valid TOML: not UTF-8") from None
        return cls.from_document(document, data_dir, str(path))

    @classmethod
    def from_document(cls, document: Mapping[str, object], data_dir: Path, source: str) -> Self:
        """Check a parsed TOML document; `source` names it in error messages."""
        sections: dict[str, object] = {}
        for name, table in document.items():
            if name not in _SECTIONS:
                raise ConfigError(
                    f"{source}: {name}: unknown section (known: {', '.join(_SECTIONS)})"
                )
            if not isinstance(table, dict):
                raise ConfigError(f"{source}: {name}: must be a [{name}] table")
            section_type, checks = _SECTIONS[name]
            values: dict[str, object] = {}
            for key, raw in table.items():
                if key not in checks:
                    raise ConfigError(
                        f"{source}: {name}.{key}: unknown key (known: {', '.join(checks)})"
                    )
                try:
                    values[key] = checks[key](raw)
                except _Bad as exc:
                    raise ConfigError(f"{source}: {name}.{key}: {exc}") from None
            sections[name] = section_type(**values)
        config = cls(data_dir, **sections)  # type: ignore[arg-type]  # keys come from _SECTIONS
        config._check_together(source)
        return config

    def _check_together(self, source: str) -> None:
        sip = self.sip
        if sip.min_expires > sip.max_expires:
            raise ConfigError(
                f"{source}: sip.min_expires: must not exceed sip.max_expires "
                f"({sip.max_expires}), got {sip.min_expires}"
            )
        if not sip.min_expires <= sip.default_expires <= sip.max_expires:
            raise ConfigError(
                f"{source}: sip.default_expires: must be between sip.min_expires "
                f"({sip.min_expires}) and sip.max_expires ({sip.max_expires}), "
                f"got {sip.default_expires}"
            )

    def with_overrides(
        self,
        *,
        sip: str | None = None,
        http: str | None = None,
        board: str | None = None,
        rtp_ports: str | None = None,
    ) -> Config:
        """This config with command-line flags applied; ConfigError names the flag.

        `sip` is HOST:PORT and means listening on both UDP and TCP there.
        """
        config = self
        try:
            flag = "--sip"
            if sip is not None:
                host, port = _split_host_port(sip)
                listen = tuple(ListenAddress(t, host, port) for t in TRANSPORTS)
                config = dataclasses.replace(
                    config, sip=dataclasses.replace(config.sip, listen=listen)
                )
            flag = "--http"
            if http is not None:
                https = HostPort.parse(http)
                config = dataclasses.replace(
                    config, http=dataclasses.replace(config.http, listen=https)
                )
            flag = "--board"
            if board is not None:
                config = dataclasses.replace(
                    config, board=dataclasses.replace(config.board, name=_board(board))
                )
            flag = "--rtp-ports"
            if rtp_ports is not None:
                config = dataclasses.replace(config, media=MediaConfig(PortRange.parse(rtp_ports)))
        except _Bad as exc:
            raise ConfigError(f"{flag}: {exc}") from None
        return config


def check_domain(domain: str) -> str:
    """The domain if valid for [general] domain, else ConfigError (for `init --domain`)."""
    try:
        return _domain(domain)
    except _Bad as exc:
        raise ConfigError(f"--domain: {exc}") from None


def render_default(
    domain: str,
    attendant: tuple[str, str] | None = None,
    analog: tuple[Mapping[int, str], Mapping[int, str]] | None = None,
) -> str:
    """The yakyak.toml `yakyak init` writes: the domain set, every other key commented
    out at its default (tomllib reads TOML but the standard library cannot write it)."""
    default = Config(Path("."))
    listen = ", ".join(f'"{a}"' for a in default.sip.listen)
    algorithms = ", ".join(f'"{a}"' for a in default.auth.algorithms)
    auth = default.auth
    calls = default.calls
    example_routes = (
        '[{ name = "reception", pattern = "100", target = { type = "extension", number = "101" } },'
        ' { name = "no-outside", pattern = "_9.", target = { type = "reject", cause = 21 } }]'
    )
    vm = default.voicemail
    routes = "# routes = " + example_routes
    if attendant is not None:
        number, menu = attendant
        routes = (
            f'routes = [{{ name = "attendant", pattern = "{number}",'
            f' target = {{ type = "ivr", menu = "{menu}" }} }}]'
        )
    ports = '# fxs_extensions = { "1" = "201", "2" = "202" }\n# fxo_inbound = { "3" = "500" }'
    if analog is not None:
        fxs, fxo = analog
        ports = f"fxs_extensions = {_inline(fxs)}\nfxo_inbound = {_inline(fxo)}"
    return f"""\
# YakYak configuration. Lines starting with # show the default value; remove the #
# and change the value to override it. Restart the service after editing.

[general]
# SIP domain, also the digest realm. Changing it makes every stored extension
# password unusable until it is set again (`yakyak ext passwd NUMBER`).
domain = "{check_domain(domain)}"
# log_level = "{default.general.log_level}"  # debug, info, warning, error

[sip]
# Where to listen: TRANSPORT:HOST:PORT, IPv6 as "tcp:[::1]:5060".
# listen = [{listen}]
# min_expires = {default.sip.min_expires}
# max_expires = {default.sip.max_expires}
# default_expires = {default.sip.default_expires}
# user_agent = "{default.sip.user_agent}"

[auth]
# Digest algorithms offered, in this order. MD5 first: many phones answer only the
# first challenge and only know MD5.
# algorithms = [{algorithms}]
# nonce_lifetime = {auth.nonce_lifetime}
# An address is locked out for lockout_time seconds after max_failures failures
# within failure_window seconds; an extension after extension_max_failures.
# max_failures = {auth.max_failures}
# failure_window = {auth.failure_window}
# lockout_time = {auth.lockout_time}
# extension_max_failures = {auth.extension_max_failures}
# Requests per second (and burst) allowed from an address not yet authenticated.
# unauth_rate = {auth.unauth_rate:g}
# unauth_burst = {auth.unauth_burst}

[http]
# HTTPS for the web UI; "lan" is this box's address on the LAN, found at start
# listen = "{default.http.listen}"
# A plain-HTTP address that only redirects browsers to the HTTPS one:
# redirect = "lan:80"

[media]
# rtp_ports = "{default.media.rtp_ports}"  # LOW-HIGH, LOW even

[calls]
# Seconds of ringing before the call goes to the callee's voicemail (or 480 without).
# no_answer_timeout = {calls.no_answer_timeout}
# RFC 4028 session timers: interval asked of phones and the shortest accepted.
# session_expires = {calls.session_expires}
# min_se = {calls.min_se}
# A call whose phone stops sending RTP this many seconds is torn down (0: never).
# rtp_timeout = {calls.rtp_timeout}
# Country of the tone plan for ringback, busy and congestion tones.
# tone_country = "{calls.tone_country}"
# max_calls = {calls.max_calls}

[dialplan]
# Routes from dialled numbers to targets, checked before the built-in rule that a
# number equal to an extension rings it. Patterns: an exact number, or _ then X (0-9),
# Z (1-9), N (2-9), [1-5], and a final . for "one or more of anything". This example
# makes 100 ring 101 and refuses numbers starting with 9 (cause 21: SIP 403).
{routes}

[voicemail]
# Dial-in codes: own_code opens the caller's mailbox, any_code asks which.
# own_code = "{vm.own_code}"
# any_code = "{vm.any_code}"
# Prompts (asterisk-core-sounds-en/es/fr-wav) and music (asterisk-moh-opsound-wav).
# sounds = "{vm.sounds}"
# music = "{vm.music}"
# music_on_hold = true
# language = "{vm.language}"  # en, es or fr
# New messages are mailed through this SMTP relay when smtp_host is set.
# smtp_host = ""
# smtp_port = {vm.smtp_port}
# smtp_starttls = false
# smtp_username = ""
# smtp_password = ""
# smtp_sender = "{vm.smtp_sender}"

[board]
# name = "{default.board.name}"
# analog = true  # run the board's analog ports
# The extension each FXS port is (it registers like a phone), and the number a ringing
# FXO line calls (an extension, or the auto-attendant's number):
{ports}
"""


def _inline(ports: Mapping[int, str]) -> str:
    return "{ " + ", ".join(f'"{port}" = "{number}"' for port, number in ports.items()) + " }"


def write_default(
    data_dir: Path,
    domain: str,
    attendant: tuple[str, str] | None = None,
    analog: tuple[Mapping[int, str], Mapping[int, str]] | None = None,
) -> Path:
    """Write a fresh yakyak.toml (replacing any) and return its path.

    Written to a temporary name, fsync'd and renamed, so a power cut leaves either
    the old file or the new one, never half of one.
    """
    path = data_dir / CONFIG_FILE
    temporary = path.with_suffix(".toml.tmp")
    with temporary.open("w", encoding="utf-8") as f:
        f.write(render_default(domain, attendant, analog))
        f.flush()
        os.fsync(f.fileno())
    temporary.replace(path)
    return path
