"""The broker's password file, written in Mosquitto 2.0's own format, atomically.

Writing the file ourselves (instead of one `mosquitto_passwd` run per device) lets bulk
provisioning of thousands of devices rewrite it once. The format is Mosquitto's
``username:$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512 hash>``.
"""

from __future__ import annotations

import base64
import contextlib
import grp
import hashlib
import hmac
import os
import pwd
import secrets
import socket
import stat
import struct
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from smartbins.errors import SmartbinsError

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


#: The user Debian's Mosquitto drops to when started as root; it reads the password file.
BROKER_USER = "mosquitto"
#: The password file's mode: the writer reads and writes, the broker's group reads, no one else.
PASSWORD_FILE_MODE = 0o640
#: An account with no rights (no ACL line, no subscription) whose password is new in every
#: rewrite of the file: a login with it proves the broker read this very version. Logging in
#: as a changed device instead would create or take over that device's session.
VERIFY_ACCOUNT = "smartbins.verify"


class PasswordFileError(SmartbinsError, RuntimeError):
    """The password file was left as it was; the message says what to fix."""


def mqtt_login(host: str, port: int, username: str, password: str, timeout: float = 5.0) -> int:
    """Log in to the broker once (MQTT 3.1.1 CONNECT, clean session) and return the CONNACK
    code: 0 accepted, 4 bad username or password, 5 not authorised.

    The client id is the account's own (a device's id; ``<account>-login`` for a service
    account), the only ones the broker takes. Meant for :data:`VERIFY_ACCOUNT`: a clean login
    as a device would end that device's session. No paho: one packet each way, no threads."""
    client_id = f"{username}-login" if "." in username else username

    def field(text: str) -> bytes:
        data = text.encode()
        return struct.pack("!H", len(data)) + data

    body = field("MQTT") + bytes([4, 0x80 | 0x40 | 0x02]) + struct.pack("!H", 10)
    body += field(client_id) + field(username) + field(password)
    length, n = b"", len(body)
    while True:
        n, digit = n >> 7, n & 0x7F
        length += bytes([digit | (0x80 if n else 0)])
        if not n:
            break
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"\x10" + length + body)
        answer = b""
        while len(answer) < 4:
            chunk = sock.recv(4 - len(answer))
            if not chunk:
                raise ConnectionError("the broker closed the connection before its CONNACK")
            answer += chunk
        if answer[0] != 0x20:
            raise ConnectionError(f"expected a CONNACK, got packet type {answer[0] >> 4}")
        if answer[3] == 0:
            sock.sendall(b"\xe0\x00")  # DISCONNECT: the session stays as it was
        return answer[3]


def _readable_by(path: Path, user: str, shown: Path | None = None) -> str | None:
    """None if ``user`` can reach and read ``path`` (by the mode bits), else what stops it
    (naming ``shown``, the path the file will have)."""
    shown = shown or path
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return None  # no such user here: the broker runs as whoever writes the file
    if pw.pw_uid == 0:
        return None
    gids = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}

    def allowed(st: os.stat_result, bits: int) -> bool:
        if st.st_uid == pw.pw_uid:
            return bool(st.st_mode & (bits << 6))
        if st.st_gid in gids:
            return bool(st.st_mode & (bits << 3))
        return bool(st.st_mode & bits)

    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if not allowed(st, 0o1):
            return (
                f"the broker's user {user!r} cannot enter {parent} (mode "
                f"{stat.S_IMODE(st.st_mode):04o}, owner {_owner(st)}); run: chmod o+x {parent} "
                f"or chgrp {user} {parent} && chmod g+x {parent}"
            )
    st = path.stat()
    if not allowed(st, 0o4):
        return (
            f"the broker's user {user!r} cannot read {shown} (mode "
            f"{stat.S_IMODE(st.st_mode):04o}, owner {_owner(st)}); run: chgrp {user} {shown} && "
            f"chmod 640 {shown}"
        )
    return None


def _owner(st: os.stat_result) -> str:
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{user}:{group}"


def default_broker_user() -> str | None:
    """The user the broker reads the file as, when nobody says: Debian's Mosquitto started as
    root drops to `mosquitto`, so a root writer gives the file that group; anyone else is
    taken to run the broker as themselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(BROKER_USER)
    except KeyError:
        return None
    return BROKER_USER


class PasswordFile:
    """Read-modify-write of a Mosquitto password file; ``reload`` tells the broker afterwards.

    Every rewrite gives the file an explicit owner and mode: the writer as owner, the broker's
    group (``broker_user``'s primary group) and mode 0640, so the hashes are readable by the
    broker and nobody else (0600 when ``broker_user`` is None: the broker runs as the writer;
    not given: :func:`default_broker_user`). When a ``reload`` is given (a broker will read the
    file now), it is checked before the new file replaces the old one that the broker's user
    can reach and read it; after ``reload``, ``verify(username, password)`` (e.g. a login with
    :func:`mqtt_login`) with :data:`VERIFY_ACCOUNT`, whose password is new in every version of
    the file, proves the broker took it. If either fails, the old
    file is put back (and the broker reloaded again) and PasswordFileError says what to fix.
    """

    def __init__(
        self,
        path: Path,
        reload: Callable[[], None] | None = None,
        *,
        verify: Callable[[str, str], None] | None = None,
        broker_user: str | None = "",
    ) -> None:
        self.path = Path(path)
        self._reload = reload
        self._verify = verify
        self.broker_user = default_broker_user() if broker_user == "" else broker_user

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
        check = new_secret() if self._verify else None
        if check is not None:
            entries[VERIFY_ACCOUNT] = hash_password(check)
        old = self.path.read_bytes() if self.path.exists() else None
        self._write(b"".join(f"{u}:{h}\n".encode() for u, h in sorted(entries.items())))
        try:
            if self._reload:
                self._reload()
            if self._verify and check is not None:
                self._verify(VERIFY_ACCOUNT, check)
        except Exception as e:
            self._restore(old)
            raise PasswordFileError(
                f"the broker did not take the new password file ({e}); the old one is back in "
                f"place at {self.path}. Check the broker's log, that it runs as "
                f"{self.broker_user or 'the writing user'} and that the reload reaches it"
            ) from None

    def _restore(self, old: bytes | None) -> None:
        if old is None:
            self.path.unlink(missing_ok=True)
        else:
            self._write(old)
        if self._reload:
            # The original error is what the caller needs to hear.
            with contextlib.suppress(Exception):
                self._reload()

    def _group(self) -> int | None:
        if self.broker_user is None:
            return None
        try:
            return pwd.getpwnam(self.broker_user).pw_gid
        except KeyError:
            return None

    def _write(self, content: bytes) -> None:
        """Write next to the file, give it owner (us), group (the broker's) and mode 0640 (0600
        without a broker group), check the broker can read it there, then rename it over the
        old one. Raises PasswordFileError, old file untouched, if the broker could not read it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".passwd-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            gid = self._group()
            if gid is not None:
                try:
                    os.chown(tmp, -1, gid)
                except PermissionError:
                    raise PasswordFileError(
                        f"cannot give {self.path} the broker's group ({self.broker_user}): "
                        f"run this as root or as a member of that group"
                    ) from None
            os.chmod(tmp, PASSWORD_FILE_MODE if gid is not None else 0o600)
            user = self.broker_user
            problem = _readable_by(Path(tmp), user, self.path) if user and self._reload else None
            if problem:
                raise PasswordFileError(f"{problem}; {self.path} was left as it was")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
