"""The broker's password file, written in Mosquitto 2.0's own format, atomically.

Writing the file ourselves (instead of one `mosquitto_passwd` run per device) lets bulk
provisioning of thousands of devices rewrite it once. The format is Mosquitto's
``username:$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512 hash>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

#: Mosquitto's own default. The broker verifies a password at every device wake, so this is a
#: trade-off between brute-force cost and connects per second; the passwords are 192-bit random,
#: which is what makes them safe, not the iteration count.
ITERATIONS = 101
SALT_BYTES = 12


def new_secret() -> str:
    """A random password for a device or service account (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    try:
        _, kind, iterations, salt_b64, digest_b64 = hashed.split("$")
        if kind != "7":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(iterations))
    return hmac.compare_digest(digest, expected)


class PasswordFile:
    """Read-modify-write of a Mosquitto password file; ``reload`` tells the broker afterwards."""

    def __init__(self, path: Path, reload: Callable[[], None] | None = None) -> None:
        self.path = Path(path)
        self._reload = reload

    def read(self) -> dict[str, str]:
        entries: dict[str, str] = {}
        if not self.path.exists():
            return entries
        for n, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep:
                raise ValueError(f"{self.path}:{n}: expected 'username:hash'")
            entries[user] = hashed
        return entries

    def usernames(self) -> set[str]:
        return set(self.read())

    def update(
        self, set_passwords: Mapping[str, str] | None = None, remove: Iterable[str] = ()
    ) -> None:
        """Set (hashing) and remove accounts in one atomic rewrite, then reload the broker."""
        entries = self.read()
        for user, password in (set_passwords or {}).items():
            if ":" in user or "\n" in user or not user:
                raise ValueError(f"username {user!r}: may not be empty or contain ':' or a newline")
            entries[user] = hash_password(password)
        for user in remove:
            entries.pop(user, None)
        self._write(entries)
        if self._reload:
            self._reload()

    def _write(self, entries: Mapping[str, str]) -> None:
        """Write next to the file and rename over it, keeping owner and mode: the broker rereads
        it as its own (unprivileged) user on SIGHUP."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        st = self.path.stat() if self.path.exists() else None
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".passwd-")
        try:
            with os.fdopen(fd, "w") as f:
                f.writelines(f"{user}:{hashed}\n" for user, hashed in sorted(entries.items()))
                f.flush()
                os.fsync(f.fileno())
            if st is not None:
                os.chmod(tmp, st.st_mode & 0o777)
                if os.geteuid() == 0:
                    os.chown(tmp, st.st_uid, st.st_gid)
            else:
                os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
