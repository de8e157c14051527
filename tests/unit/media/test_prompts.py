"""The prompt catalogue: every Prompt has a file, lookups fall back, loads are cached."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from appliance.media.prompts import (
    CREDITS,
    PROMPT_FILES,
    SOUNDS_ROOT,
    MusicOnHold,
    PromptLibrary,
    PromptMissing,
)
from appliance.media.wav import wav_bytes
from appliance.pbx.prompt_names import Prompt

pytestmark = pytest.mark.timeout(30)

installed = pytest.mark.skipif(
    not (SOUNDS_ROOT / "en").is_dir(), reason="asterisk-core-sounds-en-wav not installed"
)

# Prompts the Debian sound sets do not record in these languages; they play in English.
# Listed so a change in the catalogue or the packages shows up here.
KNOWN_GAPS = {
    "es": {Prompt.INVALID, Prompt.NOT_ANSWERING, Prompt.IS_IN_USE, Prompt.WELCOME, Prompt.SORRY},
    "fr": {Prompt.NOT_ANSWERING},
}


def tone(n: int = 80) -> np.ndarray:
    return (1000 * np.sin(np.arange(n) / 3)).astype(np.int16)


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def sounds(tmp_path: Path) -> Path:
    """A tiny sound set: en has everything the tests ask for, fr only a little."""
    root = tmp_path / "sounds"
    for prompt in (Prompt.BEEP, Prompt.GOODBYE, Prompt.NOT_ANSWERING):
        put(root / "en" / f"{PROMPT_FILES[prompt]}.wav", wav_bytes(tone()))
    put(root / "en" / "digits" / "7.wav", wav_bytes(tone()))
    put(root / "fr" / f"{PROMPT_FILES[Prompt.GOODBYE]}.wav", wav_bytes(tone()))
    put(root / "fr" / "digits" / "7.wav", wav_bytes(tone()))
    return root


# --- the catalogue against the installed sound set ------------------------------


def test_every_prompt_has_a_file_name() -> None:
    assert set(PROMPT_FILES) == set(Prompt)


@installed
@pytest.mark.parametrize("prompt", list(Prompt), ids=str)
def test_every_prompt_resolves_in_the_installed_english_set(prompt: Prompt) -> None:
    assert PromptLibrary().paths(prompt, "en") == tuple(
        SOUNDS_ROOT / "en" / f"{piece}.wav" for piece in pieces(prompt)
    )


def pieces(prompt: Prompt) -> tuple[str, ...]:
    files = PROMPT_FILES[prompt]
    return (files,) if isinstance(files, str) else files


def test_a_prompt_said_in_pieces_loads_as_one_clip(sounds: Path) -> None:
    for piece in pieces(Prompt.MESSAGE_MENU):
        put(sounds / "en" / f"{piece}.wav", wav_bytes(tone(160)))
    library = PromptLibrary([sounds])
    menu = library.load(Prompt.MESSAGE_MENU, "en")
    assert len(menu) == 160 * len(pieces(Prompt.MESSAGE_MENU))
    assert library.load(Prompt.MESSAGE_MENU, "en") is menu  # cached as a whole
    # a piece missing in French comes in English, the others in French
    put(sounds / "fr" / "vm-repeat.wav", wav_bytes(tone(80)))
    assert library.paths(Prompt.MESSAGE_MENU, "fr")[0] == sounds / "en" / "vm-repeat.wav"


@installed
@pytest.mark.parametrize("language", sorted(KNOWN_GAPS))
def test_the_gaps_in_spanish_and_french_are_the_known_ones(language: str) -> None:
    if not (SOUNDS_ROOT / language).is_dir():
        pytest.skip(f"no {language} sound set installed")
    missing = {
        p
        for p in Prompt
        if not all((SOUNDS_ROOT / language / f"{piece}.wav").is_file() for piece in pieces(p))
    }
    assert missing == KNOWN_GAPS[language]
    library = PromptLibrary()
    for prompt in missing:  # and each of them still plays, in English
        assert library.path(prompt, language).parent == SOUNDS_ROOT / "en"


@installed
def test_installed_prompts_load_as_8khz_int16() -> None:
    beep = PromptLibrary().load(Prompt.BEEP, "en")
    assert beep.dtype == np.int16 and beep.ndim == 1
    file_size = (SOUNDS_ROOT / "en" / "beep.wav").stat().st_size
    assert len(beep) == (file_size - 44) // 2  # the set is 8 kHz 16-bit mono already


@installed
def test_installed_languages_include_the_three_sets() -> None:
    assert {"en", "es", "fr"} <= set(PromptLibrary().languages())


def test_credits_name_the_licence_and_the_voices() -> None:
    for fact in ("Attribution-ShareAlike 3.0", "Allison Smith", "June Wallack", "Macroform"):
        assert fact in CREDITS


# --- lookup rules on a sound set of our own ---------------------------------------


def test_a_prompt_resolves_in_its_language(sounds: Path) -> None:
    library = PromptLibrary([sounds])
    assert library.path(Prompt.GOODBYE, "fr") == sounds / "fr" / "vm-goodbye.wav"
    assert library.path("digits/7", "fr") == sounds / "fr" / "digits" / "7.wav"


def test_a_prompt_missing_in_a_language_falls_back_to_english(sounds: Path) -> None:
    library = PromptLibrary([sounds])
    assert library.path(Prompt.BEEP, "fr") == sounds / "en" / "beep.wav"
    assert library.path(Prompt.GOODBYE, "de") == sounds / "en" / "vm-goodbye.wav"


def test_a_regional_language_tries_its_base_language_first(sounds: Path) -> None:
    library = PromptLibrary([sounds])
    assert library.path(Prompt.GOODBYE, "fr_CA") == sounds / "fr" / "vm-goodbye.wav"
    with pytest.raises(PromptMissing, match=r"languages tried: fr_CA, fr, en"):
        library.path(Prompt.URGENT, "fr_CA")


def test_the_installers_recording_wins(sounds: Path, tmp_path: Path) -> None:
    custom = tmp_path / "prompts"
    own = put(custom / "en" / "goodbye.wav", wav_bytes(tone()))
    own_digit = put(custom / "fr" / "digits" / "7.wav", wav_bytes(tone()))
    library = PromptLibrary([sounds], custom=custom)
    assert library.path(Prompt.GOODBYE, "en") == own
    assert library.path("digits/7", "fr") == own_digit
    # but a recording in the caller's own language beats an English custom one
    assert library.path(Prompt.GOODBYE, "fr") == sounds / "fr" / "vm-goodbye.wav"


@pytest.mark.parametrize(
    "name", ["no-such-prompt", "vm-goodbye", "digits/../../etc/passwd", "digits/", "../beep"]
)
def test_unknown_names_raise_prompt_missing(sounds: Path, name: str) -> None:
    with pytest.raises(PromptMissing, match=r"prompt .* \(languages tried: fr, en\)") as caught:
        PromptLibrary([sounds]).path(name, "fr")
    assert caught.value.name == name and caught.value.languages == ("fr", "en")


def test_a_prompt_in_no_language_raises_prompt_missing(sounds: Path) -> None:
    with pytest.raises(PromptMissing, match="'urgent'"):
        PromptLibrary([sounds]).path(Prompt.URGENT, "en")


def test_a_language_that_is_not_a_folder_name_is_not_tried(sounds: Path) -> None:
    library = PromptLibrary([sounds])
    assert library.path(Prompt.GOODBYE, "../fr") == sounds / "en" / "vm-goodbye.wav"


def test_languages_lists_sound_and_custom_folders(sounds: Path, tmp_path: Path) -> None:
    custom = tmp_path / "prompts"
    put(custom / "de" / "goodbye.wav", wav_bytes(tone()))
    (custom / "empty").mkdir()
    assert PromptLibrary([sounds], custom=custom).languages() == ["de", "en", "fr"]


# --- loading and the cache --------------------------------------------------------


def test_load_converts_other_formats_to_8khz_mono(sounds: Path, tmp_path: Path) -> None:
    custom = tmp_path / "prompts"
    samples = (np.sin(np.arange(16000) / 5) * 8000).astype(np.int16)
    put(custom / "en" / "welcome.wav", wav_bytes(samples, rate=16000))
    audio = PromptLibrary([sounds], custom=custom).load(Prompt.WELCOME, "en")
    assert audio.dtype == np.int16 and audio.ndim == 1
    assert abs(len(audio) - 8000) <= 80


def test_loaded_audio_is_read_only(sounds: Path) -> None:
    audio = PromptLibrary([sounds]).load(Prompt.BEEP, "en")
    with pytest.raises(ValueError, match="read-only"):
        audio[0] = 1


def test_load_accepts_a_path(sounds: Path) -> None:
    audio = PromptLibrary([sounds]).load(sounds / "en" / "beep.wav")
    assert np.array_equal(audio, tone())


def test_the_cache_returns_the_same_array_until_the_file_changes(sounds: Path) -> None:
    library = PromptLibrary([sounds])
    first = library.load(Prompt.BEEP, "en")
    assert library.load(Prompt.BEEP, "en") is first
    path = sounds / "en" / "beep.wav"
    path.write_bytes(wav_bytes(tone(80) // 2))  # same size: only the mtime tells
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    second = library.load(Prompt.BEEP, "en")
    assert second is not first and np.array_equal(second, tone(80) // 2)
    assert library.load(Prompt.BEEP, "en") is second


def test_the_cache_forgets_the_least_recently_used(sounds: Path) -> None:
    library = PromptLibrary([sounds], cache_entries=2)
    beep = library.load(Prompt.BEEP, "en")
    goodbye = library.load(Prompt.GOODBYE, "en")
    assert library.load(Prompt.BEEP, "en") is beep  # beep is now the most recent
    library.load("digits/7", "en")  # evicts goodbye
    assert library.load(Prompt.BEEP, "en") is beep
    assert library.load(Prompt.GOODBYE, "en") is not goodbye


def test_the_cache_is_bounded_by_bytes_too(sounds: Path) -> None:
    library = PromptLibrary([sounds], cache_bytes=2 * tone().nbytes)
    beep = library.load(Prompt.BEEP, "en")
    library.load(Prompt.GOODBYE, "en")
    library.load("digits/7", "en")  # three clips do not fit in two clips' bytes
    assert library.load(Prompt.BEEP, "en") is not beep


def test_a_recording_loaded_uncached_is_read_each_time(sounds: Path) -> None:
    library = PromptLibrary([sounds])
    path = sounds / "en" / "beep.wav"
    first = library.load(path, cache=False)
    assert library.load(path, cache=False) is not first
    assert np.array_equal(first, tone())


# --- music on hold ------------------------------------------------------------------


@pytest.fixture
def moh(tmp_path: Path) -> tuple[Path, Path]:
    default, custom = tmp_path / "moh", tmp_path / "data-moh"
    for name in ("b.wav", "a.wav", "notes.txt"):
        put(default / name, b"x")
    put(custom / "jazz" / "z.wav", b"x")
    put(custom / "jazz" / "m.WAV", b"x")
    (custom / "empty").mkdir()
    return default, custom


def test_the_default_class_is_the_packaged_music_sorted(moh: tuple[Path, Path]) -> None:
    default, custom = moh
    assert MusicOnHold(default, custom).files() == [default / "a.wav", default / "b.wav"]


def test_a_custom_class_lists_its_own_folder(moh: tuple[Path, Path]) -> None:
    default, custom = moh
    files = MusicOnHold(default, custom).files("jazz")
    assert files == [custom / "jazz" / "m.WAV", custom / "jazz" / "z.wav"]


@pytest.mark.parametrize("klass", ["empty", "missing", "../moh", ""])
def test_an_empty_missing_or_bad_class_plays_the_default(
    moh: tuple[Path, Path], klass: str
) -> None:
    default, custom = moh
    assert MusicOnHold(default, custom).files(klass) == [default / "a.wav", default / "b.wav"]


@pytest.mark.skipif(not Path("/usr/share/asterisk/moh").is_dir(), reason="no opsound music")
def test_the_installed_music_is_found() -> None:
    files = MusicOnHold().files()
    assert len(files) >= 1 and files == sorted(files)
