from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

import appliance
from appliance.cli import main
from appliance.config import Config
from appliance.pbx.location import Binding
from appliance.sip.digest_hash import ha1
from appliance.store.db import open_database
from appliance.store.extensions import Directory
from appliance.store.lockouts import Lockout, LockoutKind, list_lockouts, upsert_lockout
from appliance.store.migrations import DIRECTORY_REVISION_KEY
from appliance.store.registrations import Upsert, apply
from appliance.store.settings import get_setting
from appliance.store.users import Accounts

Capture = pytest.CaptureFixture[str]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def data(tmp_path: Path, capsys: Capture) -> Path:
    folder = tmp_path / "var"
    code, _, _ = run(capsys, "init", "--data", str(folder), "--admin-password", "admin-pass-1")
    assert code == 0
    return folder


def test_init_generates_a_password_once_and_must_change(tmp_path: Path, capsys: Capture) -> None:
    folder = tmp_path / "new" / "var"
    code, out, err = run(capsys, "init", "--data", str(folder), "--domain", "pbx.example.com")
    assert (code, err) == (0, "")
    password = re.search(r"admin password: (\S+)", out)
    assert password is not None
    assert Config.load(folder).general.domain == "pbx.example.com"
    db = open_database(folder / "yakyak.db")
    try:
        user = Accounts(db).verify("admin", password.group(1))
        assert user is not None and user.role == "administrator" and user.must_change_password
    finally:
        db.close()


def test_init_refuses_to_overwrite_without_force(data: Path, capsys: Capture) -> None:
    assert (
        run(capsys, "ext", "add", "101", "--password", "password-101", "--data", str(data))[0] == 0
    )
    code, out, err = run(capsys, "init", "--data", str(data))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "already holds a YakYak setup" in err and "--force" in err
    code, _, _ = run(
        capsys, "init", "--data", str(data), "--force", "--admin-password", "pw-second"
    )
    assert code == 0
    assert run(capsys, "ext", "list", "--data", str(data))[1].startswith("no extensions")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--domain", "not a domain"], "yakyak: --domain: must be a host name"),
        (["--admin-password", "short"], "yakyak: --admin-password: password too short"),
    ],
)
def test_init_checks_before_writing(
    tmp_path: Path, capsys: Capture, args: list[str], message: str
) -> None:
    code, _, err = run(capsys, "init", "--data", str(tmp_path / "var"), *args)
    assert code == 1 and err.startswith(message)
    assert not (tmp_path / "var").exists()


def test_extension_commands(data: Path, capsys: Capture) -> None:
    d = ["--data", str(data)]
    assert run(capsys, "ext", "add", "101", "--password", "password-101", "--name", "Alice", *d)[
        :2
    ] == (0, "added extension 101\n")
    assert (
        run(capsys, "ext", "add", "102", "--password", "password-102", "--email", "b@x.org", *d)[0]
        == 0
    )
    db = open_database(data / "yakyak.db")
    apply(db, Upsert(Binding("101", "sip:101@192.0.2.1", 4e9, "cid", 1)))
    apply(db, Upsert(Binding("101", "sip:101@192.0.2.2", 4e9, "cid", 1)))
    db.close()
    code, out, _ = run(capsys, "ext", "list", *d)
    assert code == 0
    assert out.splitlines() == [
        "NUMBER  NAME   EMAIL    CONTACTS",
        "101     Alice  -        2",
        "102     -      b@x.org  0",
    ]
    code, out, _ = run(capsys, "ext", "passwd", "102", *d)
    new_password = re.search(r"new password: (\S+)", out)
    assert code == 0 and new_password is not None
    db = open_database(data / "yakyak.db")
    creds = Directory(db, "yakyak.local").load_credentials()
    db.close()
    assert creds["102"].ha1["MD5"] == ha1("MD5", "102", "yakyak.local", new_password.group(1))
    assert run(capsys, "ext", "passwd", "101", "--password", "password-new", *d)[1] == (
        "password of extension 101 changed\n"
    )
    assert run(capsys, "ext", "del", "101", *d)[:2] == (0, "deleted extension 101\n")
    assert [line.split()[0] for line in run(capsys, "ext", "list", *d)[1].splitlines()] == [
        "NUMBER",
        "102",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["ext", "add", "101", "--password", "password-x"],
            "yakyak: extension 101 already exists\n",
        ),
        (["ext", "add", "1x", "--password", "password-x"], "yakyak: bad extension number '1x'"),
        (["ext", "add", "105", "--password", "short"], "yakyak: password too short"),
        (["ext", "del", "999"], "yakyak: no extension 999\n"),
        (["ext", "passwd", "999", "--password", "password-x"], "yakyak: no extension 999\n"),
    ],
)
def test_store_errors_are_one_line_exit_1(
    data: Path, capsys: Capture, argv: list[str], message: str
) -> None:
    run(capsys, "ext", "add", "101", "--password", "password-101", "--data", str(data))
    code, out, err = run(capsys, *argv, "--data", str(data))
    assert (code, out) == (1, "")
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


def test_commands_need_an_initialised_folder(tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run(capsys, "ext", "list", "--data", str(tmp_path))
    assert code == 1
    assert err == (
        f"yakyak: {tmp_path / 'yakyak.toml'}: not found; "
        f"create it with `yakyak init --data {tmp_path}`\n"
    )
    (tmp_path / "yakyak.toml").write_text("")
    code, _, err = run(capsys, "lockout", "list", "--data", str(tmp_path))
    assert code == 1 and "no database here" in err
    assert not (tmp_path / "yakyak.db").exists()


def test_bad_config_file_is_one_line(data: Path, capsys: Capture) -> None:
    (data / "yakyak.toml").write_text('[sip]\nmin_expires = "abc"\n')
    code, _, err = run(capsys, "ext", "list", "--data", str(data))
    assert code == 1
    assert err == (
        f"yakyak: {data / 'yakyak.toml'}: sip.min_expires: "
        "must be an integer between 1 and 86400, got 'abc'\n"
    )


def test_data_folder_defaults_to_the_environment(
    data: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YAKYAK_DATA", str(data))
    assert run(capsys, "ext", "add", "101", "--password", "password-101")[0] == 0
    assert "101" in run(capsys, "ext", "list", "--data", str(data))[1]


def test_import_all_or_nothing_then_partial(data: Path, capsys: Capture, tmp_path: Path) -> None:
    sheet = tmp_path / "staff.csv"
    sheet.write_text(
        "number,password,name\n201,password-201,Ann\n202,short,Ben\n203,password-203,\n"
    )
    code, out, _ = run(capsys, "ext", "import", str(sheet), "--data", str(data))
    assert code == 1
    assert out.splitlines() == [
        f"{sheet}: line 3: extension 202: password too short: at least 8 characters",
        "nothing imported: 1 bad row(s); fix them, or use --partial to import the good rows",
    ]
    assert run(capsys, "ext", "list", "--data", str(data))[1].startswith("no extensions")
    code, out, _ = run(capsys, "ext", "import", str(sheet), "--partial", "--data", str(data))
    assert code == 0
    assert out.splitlines()[-1] == "imported 2 extension(s); skipped 1 bad row(s)"
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    code, out, _ = run(capsys, "ext", "import", str(bad), "--partial", "--data", str(data))
    assert code == 1 and "malformed JSON" in out


def test_lockout_list_and_clear(data: Path, capsys: Capture) -> None:
    d = ["--data", str(data)]
    assert run(capsys, "lockout", "list", *d)[1] == "no lockouts\n"
    db = open_database(data / "yakyak.db")
    for kind, key in ((LockoutKind.ADDRESS, "198.51.100.9"), (LockoutKind.EXTENSION, "101")):
        upsert_lockout(db, Lockout(kind, key, 4e9, 5, "5 failures in 300 s", 1.7e9))
    upsert_lockout(db, Lockout(LockoutKind.ADDRESS, "192.0.2.1", 1.0, 5, "old", 0.0))
    db.close()
    code, out, _ = run(capsys, "lockout", "list", *d)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["KIND", "KEY", "UNTIL", "FAILURES", "REASON"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["address", "198.51.100.9"],
        ["extension", "101"],
    ]
    assert run(capsys, "lockout", "clear", "101", *d)[:2] == (0, "lifted 1 lockout(s)\n")
    assert run(capsys, "lockout", "clear", "101", *d)[::2] == (1, "yakyak: no lockout for 101\n")
    assert run(capsys, "lockout", "clear", *d)[0] == 2
    assert run(capsys, "lockout", "clear", "x", "--all", *d)[0] == 2
    db = open_database(data / "yakyak.db")
    before = get_setting(db, DIRECTORY_REVISION_KEY)
    db.close()
    assert run(capsys, "lockout", "clear", "--all", *d)[:2] == (0, "lifted 2 lockout(s)\n")
    db = open_database(data / "yakyak.db")
    assert list_lockouts(db) == []
    assert get_setting(db, DIRECTORY_REVISION_KEY) != before  # how the server notices
    db.close()


def test_demo_sets_up_once(tmp_path: Path, capsys: Capture) -> None:
    folder = tmp_path / "var"
    code, out, _ = run(capsys, "demo", "--data", str(folder))
    assert code == 0
    assert "SIP domain (realm): yakyak.local" in out
    found = dict(re.findall(r"extension (\d+) +\w+ +password (\S+)", out))
    assert set(found) == {"101", "102", "103"}
    admin = re.search(r"web admin: admin / (\S+)", out)
    assert admin is not None
    db = open_database(folder / "yakyak.db")
    try:
        creds = Directory(db, "yakyak.local").load_credentials()
        for number, password in found.items():
            assert creds[number].ha1["SHA-256"] == ha1("SHA-256", number, "yakyak.local", password)
        assert Accounts(db).verify("admin", admin.group(1)) is not None
    finally:
        db.close()
    code, out, _ = run(capsys, "demo", "--data", str(folder))
    assert (code, out) == (0, f"{folder} already has a database; leaving it as it is\n")


def test_serve_loads_config_with_overrides(
    data: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Config] = []

    def serve(config: Config, restored: str | None = None) -> int:
        seen.append(config)
        return 7

    fake = types.ModuleType("appliance.app")
    fake.serve = serve  # type: ignore[attr-defined]  # a stand-in for the real module
    monkeypatch.setitem(sys.modules, "appliance.app", fake)
    monkeypatch.setattr(appliance, "app", fake, raising=False)
    code, _, _ = run(
        capsys, "serve", "--data", str(data), "--sip", "127.0.0.1:5099", "--board", "sim",
        "--http", "127.0.0.1:9000", "--rtp-ports", "30000-30100",
    )  # fmt: skip
    assert code == 7
    [config] = seen
    assert [str(a) for a in config.sip.listen] == ["udp:127.0.0.1:5099", "tcp:127.0.0.1:5099"]
    assert (str(config.http.listen), str(config.media.rtp_ports)) == (
        "127.0.0.1:9000",
        "30000-30100",
    )
    code, _, err = run(capsys, "serve", "--data", str(data), "--sip", "nowhere")
    assert code == 1 and err.startswith("yakyak: --sip: expected HOST:PORT")


@pytest.mark.parametrize(
    "argv",
    [[], ["ext"], ["ext", "add", "101"], ["bogus"], ["lockout", "clear", "--nope"]],
)
def test_usage_errors_exit_2(capsys: Capture, argv: list[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_exits_0(capsys: Capture) -> None:
    assert main(["--help"]) == 0
    assert "init" in capsys.readouterr().out


def test_ext_auth_sets_and_resets_one_phones_challenge_order(data: Path, capsys: Capture) -> None:
    d = str(data)
    assert run(capsys, "ext", "add", "101", "--password", "secret-101", "--data", d)[0] == 0
    code, out, _ = run(capsys, "ext", "auth", "101", "--algorithms", "SHA-256,MD5", "--data", d)
    assert code == 0 and "SHA-256, MD5" in out
    db = open_database(data / "yakyak.db")
    try:
        assert Directory(db, "yakyak.local").get("101").algorithms == ("SHA-256", "MD5")
    finally:
        db.close()
    code, _, err = run(capsys, "ext", "auth", "101", "--algorithms", "MD4", "--data", d)
    assert code == 1 and "MD4" in err
    assert run(capsys, "ext", "auth", "101", "--default", "--data", d)[0] == 0
    db = open_database(data / "yakyak.db")
    try:
        assert Directory(db, "yakyak.local").get("101").algorithms is None
    finally:
        db.close()


def _stereo_wav(path: Path, rate: int, seconds: float) -> Path:
    import wave

    import numpy as np

    t = np.arange(int(rate * seconds)) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.repeat(tone, 2).tobytes())
    return path


def test_mailbox_greeting_and_prompt_uploads_are_converted_to_8khz(
    data: Path, capsys: Capture, tmp_path: Path
) -> None:
    import wave

    assert (
        run(capsys, "ext", "add", "101", "--password", "pw-101-long", "--data", str(data))[0] == 0
    )
    assert run(capsys, "mailbox", "add", "101", "--pin", "4711", "--data", str(data))[0] == 0
    upload = _stereo_wav(tmp_path / "greet.wav", 44100, 2.0)
    code, out, _ = run(
        capsys, "mailbox", "greeting", "101", "busy", str(upload), "--data", str(data)
    )
    assert code == 0 and "2.0 s" in out
    with wave.open(str(data / "voicemail" / "101" / "greet-busy.wav"), "rb") as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (8000, 1, 2)
        assert abs(f.getnframes() - 16000) <= 160
    code, _, _ = run(capsys, "prompt", "set", "welcome", str(upload), "--data", str(data))
    assert code == 0 and (data / "prompts" / "en" / "welcome.wav").is_file()

    bad = tmp_path / "bad.wav"
    bad.write_bytes(upload.read_bytes()[:100])  # a header promising data that is not there
    code, _, err = run(capsys, "mailbox", "greeting", "101", "name", str(bad), "--data", str(data))
    assert code == 1 and "bad.wav" in err and "truncated" in err
    assert not (data / "voicemail" / "101" / "greet-name.wav").exists()
