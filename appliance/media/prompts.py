"""The prompt catalogue: which sound file says each ``Prompt``, and music on hold.

Prompts come from the Asterisk core sound set Debian installs
(asterisk-core-sounds-{en,es,fr}-wav: ``<root>/<lang>/<file>.wav`` and
``<root>/<lang>/digits/<word>.wav``); an installer's own recordings in
``data/prompts/<lang>/<prompt-name>.wav`` win over them. A prompt the language lacks
is taken from the fallback language, so a caller hears English rather than silence.
Music on hold comes from asterisk-moh-opsound-wav, or from ``data/moh/<class>/``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.media.wav import read_wav, to_telephony
from appliance.pbx.prompt_names import Prompt

SOUNDS_ROOT: Final = Path("/usr/share/asterisk/sounds")
MOH_FOLDER: Final = Path("/usr/share/asterisk/moh")
FALLBACK_LANGUAGE: Final = "en"

# Chosen from the file names and the sound set's transcript
# (/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz). Where a prompt's
# wording has no exact file, the comment says what the file says instead.
PROMPT_FILES: Final[dict[Prompt, str | tuple[str, ...]]] = {
    Prompt.BEEP: "beep",
    Prompt.LEAVE_MESSAGE: "vm-intro",
    Prompt.THE_PERSON_AT: "vm-theperson",
    Prompt.IS_UNAVAILABLE: "vm-isunavail",
    Prompt.IS_ON_THE_PHONE: "vm-isonphone",
    Prompt.NOBODY_AVAILABLE: "vm-nobodyavail",
    Prompt.MAILBOX_FULL: "vm-mailboxfull",
    Prompt.MESSAGE_SAVED: "vm-msgsaved",  # "your message has been saved"
    Prompt.TOO_SHORT: "vm-tooshort",
    Prompt.MAILBOX_NUMBER: "vm-login",  # "Comedian Mail. Mailbox?": the only "mailbox?"
    Prompt.ENTER_PIN: "vm-password",
    Prompt.LOGIN_INCORRECT: "vm-incorrect",
    Prompt.NO_SUCH_MAILBOX: "vm-incorrect-mailbox",  # "login incorrect. Mailbox?"
    Prompt.GOODBYE: "vm-goodbye",
    Prompt.YOU_HAVE: "vm-youhave",
    Prompt.NEW: "vm-INBOX",  # the folder name file says "new"
    Prompt.OLD: "vm-Old",
    Prompt.AND: "vm-and",
    Prompt.MESSAGE: "vm-message",
    Prompt.MESSAGES: "vm-messages",
    Prompt.NO: "vm-no",
    Prompt.NO_MORE_MESSAGES: "vm-nomore",
    Prompt.FIRST: "vm-first",
    Prompt.NEXT: "vm-next",  # "press 6 to play the next message": no bare "next"
    Prompt.LAST: "vm-last",
    Prompt.RECEIVED: "vm-received",
    Prompt.FROM_PHONE_NUMBER: "vm-from-phonenumber",
    Prompt.UNKNOWN_CALLER: "vm-unknown-caller",
    # Menus are said in pieces, so what the caller hears names the keys the mailbox
    # application takes: "press 1 for new messages; press 2 to change folders, 3 for
    # advanced options, 0 for mailbox options; star for help or pound to exit" (3 is
    # not offered and says so).
    Prompt.MAIN_MENU: ("vm-onefor", "vm-INBOX", "vm-messages", "vm-opts", "vm-helpexit"),
    # "5 to repeat, 7 to delete, or 9 to save, 4 previous, 6 next, star main menu";
    # vm-msginstruct would say "delete 0, quit pound", which is not our layout.
    Prompt.MESSAGE_MENU: (
        "vm-repeat",
        "vm-delete",
        "vm-savemessage",
        "vm-prev",
        "vm-next",
        "vm-starmain",
    ),
    Prompt.OPTIONS_MENU: "vm-options",  # 1/2/3 greetings, 4 temporary (not ours), 5 PIN
    Prompt.DELETED: "vm-deleted",
    Prompt.SAVED: "vm-saved",
    Prompt.UNDELETED: "vm-undeleted",
    Prompt.URGENT: "vm-Urgent",
    Prompt.RECORD_UNAVAILABLE: "vm-rec-unv",
    Prompt.RECORD_BUSY: "vm-rec-busy",
    Prompt.RECORD_NAME: "vm-rec-name",
    Prompt.NEW_PIN: "vm-newpassword",
    Prompt.REENTER_PIN: "vm-reenterpassword",
    Prompt.PIN_CHANGED: "vm-passchanged",
    Prompt.PIN_MISMATCH: "vm-mismatch",
    Prompt.INVALID: "pm-invalid-option",  # "that option is invalid. please try again"
    Prompt.PLEASE_TRY_AGAIN: "please-try-again",
    Prompt.PLEASE_HOLD: "transfer",  # "please hold while I try that extension"
    Prompt.NOT_ANSWERING: "number-not-answering",
    Prompt.IS_IN_USE: "is-in-use",
    Prompt.EXTENSION: "vm-extension",  # in all three languages; "extension" is not in es
    Prompt.ENTER_EXTENSION: "vm-enter-num-to-call",  # "enter the number you wish to call"
    Prompt.WELCOME: "hello",  # the greetings in the set name Asterisk or a made-up firm
    Prompt.THANK_YOU: "auth-thankyou",
    Prompt.SORRY: "sorry",  # "we're sorry"
}

CREDITS: Final = """\
Voice prompts: the Asterisk core sound prompts, licensed under Creative Commons
Attribution-ShareAlike 3.0 (https://creativecommons.org/licenses/by-sa/3.0/).
English and Spanish prompts recorded by Allison Smith (http://www.theivrvoice.com);
French prompts recorded by June Wallack (http://www.junewallack.com) and translated
into French by Clod Patry, Kristopher Lalletti and June Wallack. Financial
contributions by Digium, Inc. (http://www.digium.com), and for French by Unlimitel
and BGM Informatique.

Music on hold: the Asterisk "opsound" music, licensed under Creative Commons
Attribution-ShareAlike 3.0 with its authors' permission: "Cold Day", "Robot Dity"
and "The Simplicity" by Paul Shuler (Macroform, http://macroform.bandcamp.com/),
"Morning Coffee" by Manolo Camp (http://ccmixter.org/people/ManoloCamp), and
"System" by Reno Project (http://www.jamendo.com/en/album/23661).
"""

_DIGITS_NAME: Final = re.compile(r"digits/[A-Za-z0-9][A-Za-z0-9_-]*")
# "en", "es", "fr_CA", "en_US_f_Allison": one folder name, never a path.
_LANGUAGE: Final = re.compile(r"[A-Za-z]{2,3}(?:_[A-Za-z0-9]+)*")
_MOH_CLASS: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_PROMPT_VALUES: Final = frozenset(p.value for p in Prompt)

Samples = npt.NDArray[np.int16]


class PromptMissing(LookupError):
    """No file says this prompt in the language asked for or the fallback."""

    def __init__(self, name: str, languages: Sequence[str]) -> None:
        tried = ", ".join(languages) if languages else "none"
        super().__init__(f"no sound file for prompt {name!r} (languages tried: {tried})")
        self.name = name
        self.languages = tuple(languages)


@dataclass(frozen=True, slots=True)
class _Cached:
    stamp: tuple[tuple[int, int], ...]  # (mtime_ns, size) per file: a re-recording shows
    samples: Samples


CacheKey = Path | tuple[Path, ...]


class PromptLibrary:
    """Finds and decodes prompts; decoded audio is kept in a small LRU cache."""

    def __init__(
        self,
        sound_roots: Sequence[Path] = (SOUNDS_ROOT,),
        custom: Path | None = None,
        fallback: str = FALLBACK_LANGUAGE,
        cache_entries: int = 128,
        cache_bytes: int = 48 * 1024 * 1024,  # about 50 min of 8 kHz audio (music included)
    ) -> None:
        self._roots = tuple(sound_roots)
        self._custom = custom
        self._fallback = fallback
        self._cache_entries = cache_entries
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0
        self._cache: OrderedDict[CacheKey, _Cached] = OrderedDict()

    def path(self, name: str, language: str) -> Path:
        """The file that says ``name`` (a ``Prompt`` value or ``digits/<word>``); for a
        prompt the sound set says in pieces, the first piece (see ``paths``)."""
        return self.paths(name, language)[0]

    def paths(self, name: str, language: str) -> tuple[Path, ...]:
        """The files that, played in turn, say ``name``.

        Searched per language, the asked one first, then its base ("es" for "es_MX"),
        then the fallback; the installer's recording of the whole prompt comes first,
        and each piece of a prompt said in pieces falls back on its own.
        """
        languages = self._languages_to_try(language)
        pieces = _relative_files(name)
        if pieces is None:
            raise PromptMissing(name, languages)
        for lang in languages:
            if self._custom is not None:
                candidate = self._custom / lang / f"{name}.wav"
                if candidate.is_file():
                    return (candidate,)
            found = [self._piece(relative, [lang]) for relative in pieces]
            if all(found):
                return tuple(f for f in found if f is not None)
        # not whole in any language: each piece in the first language that has it
        found = [self._piece(relative, languages) for relative in pieces]
        if not all(found):
            raise PromptMissing(name, languages)
        return tuple(f for f in found if f is not None)

    def _piece(self, relative: str, languages: list[str]) -> Path | None:
        for lang in languages:
            for root in self._roots:
                candidate = root / lang / relative
                if candidate.is_file():
                    return candidate
        return None

    def load(
        self, name_or_path: str | Path, language: str = FALLBACK_LANGUAGE, *, cache: bool = True
    ) -> Samples:
        """Decoded 8 kHz mono int16 audio, read-only, shared between callers.

        A ``Path`` is loaded as is (a greeting, a music file); a ``str`` is a prompt
        name resolved with ``path``. ``WavError`` and ``OSError`` pass through.
        """
        if isinstance(name_or_path, Path):
            files: tuple[Path, ...] = (name_or_path,)
        else:
            files = self.paths(name_or_path, language)
        key: CacheKey = files[0] if len(files) == 1 else files
        stamp = tuple((st.st_mtime_ns, st.st_size) for st in (f.stat() for f in files))
        cached = self._cache.get(key)
        if cached is not None and cached.stamp == stamp:
            self._cache.move_to_end(key)
            return cached.samples
        decoded = [to_telephony(read_wav(f.read_bytes())) for f in files]
        samples = decoded[0] if len(decoded) == 1 else np.concatenate(decoded)
        samples.setflags(write=False)  # shared by every call playing it
        if not cache:  # a message heard once: not worth the memory
            return samples
        if cached is not None:
            self._cached_bytes -= cached.samples.nbytes
        self._cache[key] = _Cached(stamp, samples)
        self._cached_bytes += samples.nbytes
        self._cache.move_to_end(key)
        while len(self._cache) > 1 and (
            len(self._cache) > self._cache_entries or self._cached_bytes > self._cache_bytes
        ):
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= dropped.samples.nbytes
        return samples

    def languages(self) -> list[str]:
        """Languages with at least one prompt installed, in the sound set or custom."""
        found: set[str] = set()
        folders = [*self._roots, *([self._custom] if self._custom is not None else [])]
        for folder in folders:
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if _LANGUAGE.fullmatch(entry.name) and entry.is_dir():
                    if any(entry.glob("*.wav")) or (entry / "digits").is_dir():
                        found.add(entry.name)
        return sorted(found)

    def _languages_to_try(self, language: str) -> list[str]:
        # An unusable language code is skipped rather than raised: a caller with a
        # misconfigured language still hears the fallback.
        candidates = [language]
        if "_" in language:
            candidates.append(language.split("_", 1)[0])
        candidates.append(self._fallback)
        tried: list[str] = []
        for lang in candidates:
            if _LANGUAGE.fullmatch(lang) and lang not in tried:
                tried.append(lang)
        return tried


def _relative_files(name: str) -> tuple[str, ...] | None:
    if name in _PROMPT_VALUES:
        files = PROMPT_FILES[Prompt(name)]
        pieces = (files,) if isinstance(files, str) else files
        return tuple(f"{piece}.wav" for piece in pieces)
    if _DIGITS_NAME.fullmatch(name):
        return (f"{name}.wav",)
    return None


class MusicOnHold:
    """Music files of a class: "default" is the packaged music, others are folders."""

    def __init__(self, default_folder: Path = MOH_FOLDER, custom: Path | None = None) -> None:
        self._default = default_folder
        self._custom = custom

    def files(self, klass: str = "default") -> list[Path]:
        """Sorted WAV files of ``klass``; the default class's when it has none."""
        if klass != "default" and self._custom is not None and _MOH_CLASS.fullmatch(klass):
            chosen = _wav_files(self._custom / klass)
            if chosen:
                return chosen
        return _wav_files(self._default)


def _wav_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
