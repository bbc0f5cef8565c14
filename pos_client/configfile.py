"""Typed reads from parsed TOML tables, with errors that name the key and the file."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

E = TypeVar("E", bound=Enum)
_MISSING: Any = object()


class ConfigError(ValueError):
    """A configuration problem; str() is one line naming the key, the file and the problem."""


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # arrays or tables nested thousands deep
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} cannot be read)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


@dataclass(frozen=True)
class Section:
    data: Mapping[str, Any]
    source: str
    prefix: str = ""
    origins: Mapping[str, str] | None = None  # dotted key -> file or variable that set it

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str, problem: str) -> ConfigError:
        key = self.key(name)
        return ConfigError(f"config key '{key}' ({self.origin(key)}): {problem}")

    def origin(self, key: str) -> str:
        """The file or variable that set `key`: its own record, else that of the nearest
        table or array it lies in (a user file's [[readers]] replaces the whole array, so
        'readers[0].port' came from wherever 'readers' did), else this section's source."""
        origins = self.origins or {}
        while key:
            if key in origins:
                return origins[key]
            key = key[: max(key.rfind("."), key.rfind("["), 0)]
        return self.source

    def _get(self, name: str, default: Any) -> Any:
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise self.fail(name, "is required")
        return default

    def text(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is not None and not isinstance(value, str):
            raise self.fail(name, f"expected text, got {value!r}")
        return value

    def flag(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {value!r}")
        return value

    def integer(
        self,
        name: str,
        default: Any = _MISSING,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        value = self._get(name, default)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise self.fail(name, f"expected a whole number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"expected a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(name, f"must be at most {maximum}, got {value}")
        return value

    def decimal(self, name: str, default: Any = _MISSING, minimum: Decimal | None = None) -> Any:
        value = self._get(name, default)
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(name, f"expected a number, got {value!r}")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(name, f"expected a number, got {value!r}") from None
        if not number.is_finite():
            raise self.fail(name, f"expected a finite number, got {value!r}")
        if minimum is not None and number < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {number}")
        return number

    def choice(self, name: str, enum: type[E], default: Any = _MISSING) -> E:
        value = self._get(name, default)
        if isinstance(value, enum):
            return value
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(str(member.value) for member in enum)
            raise self.fail(name, f"expected one of {allowed}; got {value!r}") from None

    def table(self, name: str, required: bool = False) -> Section:
        value = self.data.get(name, _MISSING)
        if value is _MISSING:
            if required:
                raise self.fail(name, "section is required")
            value = {}
        if not isinstance(value, Mapping):
            raise self.fail(name, f"expected a table, got {value!r}")
        return Section(value, self.source, f"{self.key(name)}.", self.origins)

    def tables(self, name: str) -> list[Section]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.fail(name, "expected an array of tables ([[...]])")
        return [
            Section(v, self.source, f"{self.key(name)}[{i}].", self.origins)
            for i, v in enumerate(value)
        ]

    def str_list(self, name: str) -> list[str]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "expected a list of text values")
        return list(value)

    def decimal_map(self, name: str) -> dict[str, Decimal]:
        table = self.table(name)
        return {key: table.decimal(key, minimum=Decimal(0)) for key in table.data}
