"""Reading a TOML document's tables with typed getters whose errors name the file, the
key path and the reason, in one line: board files (``board_loader``), the HIL bench
config. A misspelt key is refused at ``close()``, never taken as "use the default"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import NoReturn, TypeVar

E = TypeVar("E", bound=Enum)

# (file, key path, reason) -> the reader's own exception
ErrorFactory = Callable[[str, str, str], Exception]


def show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


class TomlTable:
    """One TOML table being read: typed getters that raise the reader's error, then
    close()."""

    def __init__(
        self, raw: Mapping[str, object], where: str, file: str, error: ErrorFactory
    ) -> None:
        self._raw = raw
        self._where = where
        self._file = file
        self._error = error
        self._used: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self._where}.{key}" if self._where else key

    def fail(self, key: str, reason: str) -> NoReturn:
        raise self._error(self._file, self.path(key), reason)

    def has(self, key: str) -> bool:
        self._used.add(key)
        return key in self._raw

    def _take(self, key: str, required: bool) -> object:
        self._used.add(key)
        if key not in self._raw and required:
            self.fail(key, "missing")
        return self._raw.get(key)

    def text(
        self, key: str, default: str | None = None, max_len: int = 200, multiline: bool = False
    ) -> str:
        value = self._take(key, default is None)
        if value is None:
            return default or ""
        if not isinstance(value, str) or not 0 < len(value) <= max_len:
            self.fail(key, f"must be a string of 1 to {max_len} characters, got {show(value)}")
        flat = value.replace("\n", "").replace("\t", "") if multiline else value
        if not flat.isprintable():
            self.fail(key, f"must be printable text, got {show(value)}")
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self._take(key, default is None)
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"must be an integer from {low} to {high}, got {show(value)}")
        return value

    def number(self, key: str, low: float, high: float, default: float | None = None) -> float:
        value = self._take(key, default is None)
        if value is None and default is not None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            self.fail(key, f"must be a number from {low:g} to {high:g}, got {show(value)}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._take(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {show(value)}")
        return value

    def choice(self, key: str, kind: type[E], default: E | None = None) -> E:
        value = self._take(key, default is None)
        if value is None and default is not None:
            return default
        for member in kind:
            if member.value == value:
                return member
        self.fail(key, f"must be one of {options(kind)}, got {show(value)}")

    def choices(self, key: str, kind: type[E], default: tuple[E, ...]) -> tuple[E, ...]:
        value = self._take(key, False)
        if value is None:
            return default
        if not isinstance(value, list):
            self.fail(key, f"must be an array of {options(kind)}, got {show(value)}")
        picked: list[E] = []
        for index, item in enumerate(value):
            member = next((m for m in kind if m.value == item), None)
            if member is None:
                self.fail(f"{key}[{index}]", f"must be one of {options(kind)}, got {show(item)}")
            if member in picked:
                self.fail(f"{key}[{index}]", f"{show(item)} is listed twice")
            picked.append(member)
        return tuple(picked)

    def table(self, key: str) -> TomlTable | None:
        """An optional sub-table, None when absent."""
        self._used.add(key)
        return self.sub(key) if key in self._raw else None

    def sub(self, key: str, required: bool = False) -> TomlTable:
        """A sub-table; an absent optional one reads as empty, so every key takes its default."""
        value = self._take(key, required)
        if value is None:
            return TomlTable({}, self.path(key), self._file, self._error)
        if not isinstance(value, dict):
            self.fail(key, f"must be a table, got {show(value)}")
        return TomlTable(value, self.path(key), self._file, self._error)

    def tables(self, key: str, required: bool = False) -> list[TomlTable]:
        value = self._take(key, required)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(key, f"must be an array of tables ([[{key}]]), got {show(value)}")
        return [
            TomlTable(v, f"{self.path(key)}[{i}]", self._file, self._error)
            for i, v in enumerate(value)
        ]

    def byte_list(self, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
        value = self._take(key, False)
        if value is None:
            return default
        if not isinstance(value, list) or not 1 <= len(value) <= 8:
            self.fail(key, f"must be an array of 1 to 8 bytes, got {show(value)}")
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 255:
                self.fail(f"{key}[{index}]", f"must be a byte from 0 to 255, got {show(item)}")
        return tuple(value)

    def close(self) -> None:
        """Refuse keys nobody asked for: a misspelt key must not mean 'use the default'."""
        unknown = sorted(set(self._raw) - self._used)
        if unknown:
            expected = ", ".join(sorted(self._used))
            self.fail(unknown[0], f"unknown key (expected one of: {expected})")


def options(kind: type[Enum]) -> str:
    return ", ".join(repr(m.value) for m in kind)
