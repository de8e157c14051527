from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from appliance.config import (
    Config,
    ConfigError,
    HostPort,
    ListenAddress,
    PortRange,
    check_domain,
    render_default,
    write_default,
)


def _write(tmp_path: Path, text: str) -> str:
    (tmp_path / "yakyak.toml").write_text(text)
    return str(tmp_path / "yakyak.toml")


def test_default_file_loads_as_the_defaults(tmp_path: Path) -> None:
    write_default(tmp_path, "pbx.example.com")
    config = Config.load(tmp_path)
    expected = Config(tmp_path)
    assert config.general.domain == "pbx.example.com"
    assert (config.sip, config.auth, config.http, config.media, config.board) == (
        expected.sip,
        expected.auth,
        expected.http,
        expected.media,
        expected.board,
    )
    assert config.auth.algorithms == ("MD5", "SHA-256", "SHA-512-256")
    assert [str(a) for a in config.sip.listen] == ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"]
    assert config.database_path == tmp_path / "yakyak.db"


def test_every_commented_default_is_valid_when_uncommented(tmp_path: Path) -> None:
    text = render_default("yakyak.local")
    uncommented = "\n".join(
        line[2:].split("  #")[0] if line.startswith("# ") and " = " in line else line
        for line in text.splitlines()
    )
    document = tomllib.loads(uncommented)
    assert sum(len(table) for table in document.values()) == 41  # every key, shown once
    config = Config.from_document(document, tmp_path, "x")
    # Every value shown is the default, except the dialplan's routes, the analog ports'
    # roles and the HTTP redirect: those are examples.
    default = Config(tmp_path)
    assert (
        dataclasses.replace(
            config,
            dialplan=default.dialplan,
            board=default.board,
            http=dataclasses.replace(config.http, redirect=None),
        )
        == default
    )
    assert str(config.http.redirect) == "lan:80" and str(config.http.listen) == "lan:8443"
    assert [r.name for r in config.dialplan.routes] == ["reception", "no-outside"]
    assert dict(config.board.fxs_extensions) == {1: "201", 2: "202"}
    assert dict(config.board.fxo_inbound) == {3: "500"}
    assert (config.board.name, config.board.analog) == ("sim", True)


def test_analog_port_roles_are_checked(tmp_path: Path) -> None:
    _write(tmp_path, '[board]\nfxs_extensions = { "one" = "201" }\n')
    with pytest.raises(ConfigError, match=r"board.fxs_extensions: 'one': must be a port number"):
        Config.load(tmp_path)
    _write(tmp_path, '[board]\nfxo_inbound = { "3" = "5a0" }\n')
    with pytest.raises(ConfigError, match=r"board.fxo_inbound: '3': must be a number to dial"):
        Config.load(tmp_path)


def test_values_are_read(tmp_path: Path) -> None:
    _write(
        tmp_path,
        """
[general]
domain = "10.0.0.2"
log_level = "debug"
[sip]
listen = ["udp:[::1]:5070", "tcp:localhost:5071"]
min_expires = 30
default_expires = 120
[auth]
algorithms = ["SHA-256"]
unauth_rate = 2.5
[http]
listen = "[::]:80"
[media]
rtp_ports = "4000-4100"
[board]
name = "yakboard-2"
""",
    )
    config = Config.load(tmp_path)
    assert config.sip.listen == (
        ListenAddress("udp", "::1", 5070),
        ListenAddress("tcp", "localhost", 5071),
    )
    assert str(config.sip.listen[0]) == "udp:[::1]:5070"
    assert (config.sip.min_expires, config.sip.default_expires) == (30, 120)
    assert config.auth.algorithms == ("SHA-256",)
    assert config.auth.unauth_rate == 2.5
    assert config.http.listen == HostPort("::", 80)
    assert config.media.rtp_ports == PortRange(4000, 4100)
    assert config.board.name == "yakboard-2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[sip]\nmin_expires = "abc"',
            "sip.min_expires: must be an integer between 1 and 86400, got 'abc'",
        ),
        (
            "[sip]\nmin_expires = 0",
            "sip.min_expires: must be an integer between 1 and 86400, got 0",
        ),
        (
            "[sip]\nmax_expires = true",
            "sip.max_expires: must be an integer between 1 and 86400, got True",
        ),
        ("[sip]\nlisten = []", "sip.listen: must be a non-empty list of strings, got []"),
        ('[sip]\nlisten = "udp:0.0.0.0:5060"', "sip.listen: must be a non-empty list of strings"),
        (
            '[sip]\nlisten = ["sctp:0.0.0.0:5060"]',
            "sip.listen: 'sctp:0.0.0.0:5060': expected TRANSPORT:HOST:PORT"
            " with TRANSPORT one of udp, tcp",
        ),
        (
            '[sip]\nlisten = ["udp:0.0.0.0:99999"]',
            "sip.listen: 'udp:0.0.0.0:99999': port must be 1-65535, got '99999'",
        ),
        (
            '[sip]\nlisten = ["tcp:::1:5060"]',
            "sip.listen: 'tcp:::1:5060': expected HOST:PORT (IPv6 as [::1]:PORT)",
        ),
        (
            '[sip]\nlisten = ["tcp:[::g]:5060"]',
            "sip.listen: 'tcp:[::g]:5060': '::g' is not an IPv6 address",
        ),
        ('[sip]\nlisten = ["udp:a:1", "udp:a:1"]', "sip.listen: lists an entry twice"),
        (
            "[sip]\nmin_expires = 4000",
            "sip.min_expires: must not exceed sip.max_expires (3600), got 4000",
        ),
        (
            "[sip]\ndefault_expires = 30",
            "sip.default_expires: must be between sip.min_expires (60)"
            " and sip.max_expires (3600), got 30",
        ),
        (
            '[sip]\nuser_agent = ""',
            "sip.user_agent: must be a string of 1 to 100 characters, got ''",
        ),
        ('[sip]\nuser_agent = "a\\u0007"', "sip.user_agent: must be printable text"),
        (
            "[sip]\nlistn = []",
            "sip.listn: unknown key"
            " (known: listen, min_expires, max_expires, default_expires, user_agent)",
        ),
        (
            "[sipp]\nx = 1",
            "sipp: unknown section"
            " (known: general, sip, auth, http, media, calls, dialplan, voicemail, board)",
        ),
        ("domain = 'x'", "domain: unknown section"),
        (
            '[general]\ndomain = "bad domain"',
            "general.domain: must be a host name like 'pbx.example.com'"
            " or an IPv4 address, got 'bad domain'",
        ),
        ('[general]\ndomain = "300.1.1.1"', "general.domain: must be a host name"),
        (
            '[general]\nlog_level = "loud"',
            "general.log_level: must be one of debug, info, warning, error, got 'loud'",
        ),
        (
            '[auth]\nalgorithms = ["SHA-1"]',
            "auth.algorithms: unknown algorithm 'SHA-1'; known: MD5, SHA-256, SHA-512-256",
        ),
        (
            "[auth]\nunauth_rate = 0",
            "auth.unauth_rate: must be a number above 0 and at most 100000, got 0",
        ),
        (
            '[auth]\nunauth_rate = "fast"',
            "auth.unauth_rate: must be a number between 0 and 100000, got 'fast'",
        ),
        (
            "[auth]\nmax_failures = 0",
            "auth.max_failures: must be an integer between 1 and 1000, got 0",
        ),
        ('[http]\nlisten = "8080"', "http.listen: expected HOST:PORT (IPv6 as [::1]:PORT)"),
        (
            '[media]\nrtp_ports = "20000-10000"',
            "media.rtp_ports: must satisfy 1024 <= LOW < HIGH <= 65535, got '20000-10000'",
        ),
        (
            '[media]\nrtp_ports = "10001-20000"',
            "media.rtp_ports: LOW must be even (RTP even, RTCP odd), got '10001-20000'",
        ),
        (
            '[media]\nrtp_ports = "100-200"',
            "media.rtp_ports: must satisfy 1024 <= LOW < HIGH <= 65535",
        ),
        (
            '[media]\nrtp_ports = "lots"',
            "media.rtp_ports: must look like LOW-HIGH, e.g. '10000-20000', got 'lots'",
        ),
        (
            '[board]\nname = "Big Board"',
            "board.name: must be a board name like 'sim' (a-z, 0-9, _ -), got 'Big Board'",
        ),
        ("board = 3", "board: must be a [board] table"),
        (
            "[dialplan]\nroutes = [{ name = 'x', pattern = '_1Q', target = { type = 'reject', "
            "cause = 21 } }]",
            "dialplan.routes: route 'x': ",
        ),
    ],
)
def test_errors_name_file_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Config.load(tmp_path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"yakyak.toml: not found; create it with `yakyak init"):
        Config.load(tmp_path)
    _write(tmp_path, "[sip\n")
    with pytest.raises(ConfigError, match=r"yakyak.toml: not valid TOML: .*line 1"):
        Config.load(tmp_path)
    (tmp_path / "yakyak.toml").write_bytes(b"[general]\ndomain = '\xff'\n")
    with pytest.raises(ConfigError, match=r"yakyak.toml: not valid TOML"):
        Config.load(tmp_path)


def test_overrides(tmp_path: Path) -> None:
    config = Config(tmp_path).with_overrides(
        sip="127.0.0.1:5099", http="[::1]:8081", board="bench", rtp_ports="30000-30100"
    )
    assert [str(a) for a in config.sip.listen] == ["udp:127.0.0.1:5099", "tcp:127.0.0.1:5099"]
    assert config.http.listen == HostPort("::1", 8081)
    assert config.board.name == "bench"
    assert config.media.rtp_ports == PortRange(30000, 30100)
    assert Config(tmp_path).with_overrides() == Config(tmp_path)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"sip": "5060"}, "--sip: expected HOST:PORT"),
        ({"sip": "[::1]:0"}, "--sip: port must be 1-65535, got '0'"),
        ({"http": "localhost"}, "--http: expected HOST:PORT"),
        ({"board": "../etc"}, "--board: must be a board name"),
        ({"rtp_ports": "5-4"}, "--rtp-ports: must satisfy 1024 <= LOW < HIGH"),
    ],
)
def test_override_errors_name_the_flag(tmp_path: Path, flags: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config(tmp_path).with_overrides(**flags)
    assert str(caught.value).startswith(message)


def test_check_domain() -> None:
    assert check_domain("pbx.example.com") == "pbx.example.com"
    with pytest.raises(ConfigError, match="--domain: must be a host name"):
        check_domain('evil"\n[sip]')
