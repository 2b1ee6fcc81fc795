"""Config files: TOML into validated, frozen dataclasses; unknown keys and bad values are errors.

Every part with a config file (gateway, simulator, planner) declares it as a dataclass whose
fields carry their defaults and whose ``__post_init__`` raises ``ValueError`` for bad values.
:func:`load` turns a TOML file into that dataclass and reports any problem as
``file:line: [section] key: problem``, so the person editing the file finds the line at once.
An empty file gives the defaults.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import tempfile
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from smartbins.errors import SmartbinsError

T = TypeVar("T")


class ConfigError(SmartbinsError, ValueError):
    """A config problem: names the file, the line when known, the key and what is wrong."""


def load(cls: type[T], path: Path | str) -> T:
    """Read ``path`` (TOML) into ``cls``; raise ConfigError naming the line and key at fault."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return from_mapping(cls, data, source=str(path), text=text)


def from_mapping(
    cls: type[T], data: dict[str, Any], *, source: str = "<config>", text: str = ""
) -> T:
    return _build(cls, data, (), source, text)


def _line_of(text: str, section: tuple[str, ...], key: str | None) -> int | None:
    """Best-effort line number of ``key`` in ``[section]`` (or of the section header)."""
    lines = text.splitlines()
    current: tuple[str, ...] = ()
    header_re = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+\s*(#.*)?$")
    for n, line in enumerate(lines, 1):
        m = header_re.match(line)
        if m:
            current = tuple(part.strip().strip('"') for part in m.group(1).split("."))
            if key is None and current == section:
                return n
            continue
        if (
            key is not None
            and current == section
            and re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", line)
        ):
            return n
    return None


def _where(source: str, text: str, section: tuple[str, ...], key: str | None) -> str:
    line = _line_of(text, section, key) if text else None
    place = f"{source}:{line}" if line else source
    name = ".".join((*section, key) if key else section)
    return f"{place}: {name}" if name else place


def _build(
    cls: type[T], data: dict[str, Any], section: tuple[str, ...], source: str, text: str
) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{_where(source, text, section, None)}: must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(
                f"{_where(source, text, section, key)}: unknown key (known keys here: {known})"
            )
        kwargs[key] = _convert(hints[key], value, (*section, key), source, text)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        # Point at the key the message names, if any (validators name their field first).
        named = [k for k in kwargs if re.search(rf"\b{re.escape(k)}\b", str(e))]
        where = _where(source, text, section, named[0] if named else None)
        raise ConfigError(f"{where}: {e}") from None


def _convert(hint: Any, value: Any, path: tuple[str, ...], source: str, text: str) -> Any:
    section, key = path[:-1], path[-1]

    def bad(expected: str) -> ConfigError:
        return ConfigError(
            f"{_where(source, text, section, key)}: expected {expected}, got {value!r}"
        )

    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, path, source, text)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, source, text)  # type: ignore[arg-type]
    if hint is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if hint is Path:
        if not isinstance(value, str):
            raise bad("a path (string)")
        return Path(os.path.expanduser(value))
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise bad("a list")
        (item,) = get_args(hint)[:1]
        return tuple(_convert(item, v, path, source, text) for v in value)
    if origin is typing.Literal:
        if value not in get_args(hint):
            raise bad("one of " + ", ".join(repr(a) for a in get_args(hint)))
        return value
    return value


def to_toml(obj: object, section: tuple[str, ...] = ()) -> str:
    """Write a settings dataclass back as TOML (round trip of :func:`load`)."""
    plain: list[str] = []
    tables: list[str] = []
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            tables.append(to_toml(value, (*section, f.name)))
        elif value is not None:
            plain.append(f"{f.name} = {_toml_value(value)}")
    head = [f"[{'.'.join(section)}]"] if section and plain else []
    return "\n".join([*head, *plain, *([""] if plain else []), *tables]).strip() + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def read_secret(env: str, file: Path | None, what: str) -> str:
    """A secret from the environment variable ``env`` or from ``file`` (which must be mode 0600
    or stricter). Never logged; the error names where to put it, not its value."""
    value = os.environ.get(env)
    if value:
        return value
    if file is None:
        raise ConfigError(f"{what}: set the environment variable {env} or give a secret file")
    try:
        mode = file.stat().st_mode & 0o777
    except OSError as e:
        raise ConfigError(f"{what}: cannot read secret file {file} ({e.strerror})") from None
    if mode & 0o077:
        raise ConfigError(
            f"{what}: secret file {file} is readable by others (mode {mode:04o}); "
            f"run: chmod 600 {file}"
        )
    return file.read_text().strip()


#: Mode of every file smartbins writes that holds a secret or a hash, and of the secrets dir.
SECRET_FILE_MODE = 0o600
SECRET_DIR_MODE = 0o700


def secret_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) or bring an existing one to 0700; an existing directory
    someone else owns is an error (we cannot vouch for who reads it)."""
    path.mkdir(parents=True, exist_ok=True, mode=SECRET_DIR_MODE)
    st = path.stat()
    if st.st_mode & 0o777 != SECRET_DIR_MODE:
        if st.st_uid != os.geteuid() and os.geteuid() != 0:
            raise ConfigError(
                f"secrets directory {path} has mode {st.st_mode & 0o777:04o} and is not ours; "
                f"run: chmod 700 {path}"
            )
        os.chmod(path, SECRET_DIR_MODE)
    return path


def write_secret(path: Path, value: str) -> Path:
    """Write a secret to ``path`` with mode 0600 and the writer as owner, whatever was there
    before: written next to it and renamed over it, so an existing file's looser mode, owner or
    hard links never carry over and a reader never sees half a secret."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, SECRET_FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def private_file(path: Path, mode: int = SECRET_FILE_MODE) -> Path:
    """Create ``path`` empty with ``mode`` if missing, else set ``mode`` on it: for databases
    that hold hashes or device secrets (SQLite gives its -wal/-shm files the same mode).

    An existing file is changed by path, never opened: closing any descriptor of a SQLite
    database drops the POSIX locks that this process's open connections hold on it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
        return path
    os.close(fd)
    os.chmod(path, mode)  # whatever the umask took away
    return path
