"""API tokens: random, stored only as a hash, shown once, with a role, an expiry, a revocation
and the municipalities they may see.

A token reads ``sbt_<id>_<secret>``: the id finds the row, the secret (32 random bytes) is
checked against its SHA-256 in constant time. A slow password hash is not needed: the secret is
random and long, so the hash cannot be reversed by guessing. Used by the backend's
authentication and by `smartbins token create|list|revoke` (one implementation).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from smartbins.registry import ConflictError, NotFoundError, Registry, RegistryError, now_ms

#: Roles from least to most: each may do what the ones before it may.
ROLES = ("viewer", "technician", "planner", "admin")
PREFIX = "sbt_"
_TOKEN_RE = re.compile(r"sbt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


def role_rank(role: str) -> int:
    return ROLES.index(role)


@dataclass(frozen=True)
class Token:
    """A token's row: never the secret."""

    id: str
    name: str
    role: str
    #: The municipalities it may see; ``("*",)`` means every one (an installation admin).
    municipalities: tuple[str, ...]
    created_ms: int
    expires_ms: int | None
    revoked_ms: int | None
    #: The user it was issued to, if any.
    user_id: str | None = None

    @property
    def all_municipalities(self) -> bool:
        return self.municipalities == ("*",)

    def may_see(self, municipality_id: str) -> bool:
        return self.all_municipalities or municipality_id in self.municipalities

    def active(self, at_ms: int) -> bool:
        return self.revoked_ms is None and (self.expires_ms is None or at_ms < self.expires_ms)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    reg: Registry,
    name: str,
    role: str,
    municipalities: Sequence[str],
    *,
    expires_ms: int | None = None,
    at_ms: int | None = None,
    user_id: str | None = None,
) -> tuple[Token, str]:
    """A new token; returns its row and the token text (shown once, stored only hashed).
    ``municipalities`` ``["*"]``: every municipality, now and later. Issued to ``user_id``,
    it is scoped to that user's municipality and its role is at most the user's."""
    t = at_ms if at_ms is not None else now_ms()
    if role not in ROLES:
        raise RegistryError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise RegistryError("name: 1-100 characters, who or what holds the token")
    if not municipalities:
        raise RegistryError("municipalities: name at least one (or * for all)")
    if expires_ms is not None and expires_ms <= t:
        raise RegistryError(f"expires_ms {expires_ms} is not in the future")
    everyone = list(municipalities) == ["*"]
    if user_id is not None:
        u = user(reg, user_id)
        if u.disabled_ms is not None:
            raise RegistryError(f"user_id: user {user_id!r} is disabled")
        if list(municipalities) != [u.municipality_id]:
            raise RegistryError(
                f"municipalities: a token of user {user_id!r} is for {u.municipality_id} only"
            )
        if role_rank(role) > role_rank(u.role):
            raise RegistryError(f"role: {role!r} is above user {user_id!r}'s role {u.role!r}")
    id = secrets.token_hex(6)
    text = f"{PREFIX}{id}_{secrets.token_urlsafe(32)}"
    with reg.transaction():
        if not everyone:
            for m in municipalities:
                if (
                    reg.db.execute("SELECT 1 FROM municipalities WHERE id = ?", (m,)).fetchone()
                    is None
                ):
                    raise RegistryError(f"municipalities: no municipality {m!r}")
        reg.db.execute(
            "INSERT INTO tokens (id, hash, name, role, all_municipalities, created_ms,"
            " expires_ms, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (id, _hash(text), name, role, int(everyone), t, expires_ms, user_id),
        )
        if not everyone:
            reg.db.executemany(
                "INSERT INTO token_municipalities VALUES (?, ?)",
                [(id, m) for m in dict.fromkeys(municipalities)],
            )
    return get(reg, id), text


def get(reg: Registry, id: str) -> Token:
    row = reg.db.execute(
        "SELECT id, name, role, all_municipalities, created_ms, expires_ms, revoked_ms, user_id"
        " FROM tokens WHERE id = ?",
        (id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no token {id!r}")
    if row[3]:
        scope: tuple[str, ...] = ("*",)
    else:
        scope = tuple(
            r[0]
            for r in reg.db.execute(
                "SELECT municipality_id FROM token_municipalities WHERE token_id = ?"
                " ORDER BY municipality_id",
                (id,),
            )
        )
    return Token(row[0], row[1], row[2], scope, row[4], row[5], row[6], row[7])


def tokens(reg: Registry, municipality_id: str | None = None) -> list[Token]:
    """Every token, or those scoped to ``municipality_id`` (installation-wide ones excluded)."""
    if municipality_id is None:
        rows = reg.db.execute("SELECT id FROM tokens ORDER BY created_ms, id")
    else:
        rows = reg.db.execute(
            "SELECT token_id FROM token_municipalities WHERE municipality_id = ? ORDER BY token_id",
            (municipality_id,),
        )
    return [get(reg, r[0]) for r in rows.fetchall()]


def revoke(reg: Registry, id: str, at_ms: int | None = None) -> Token:
    get(reg, id)
    reg.db.execute(
        "UPDATE tokens SET revoked_ms = coalesce(revoked_ms, ?) WHERE id = ?",
        (at_ms if at_ms is not None else now_ms(), id),
    )
    return get(reg, id)


# ----------------------------------------------------------------------------- users


@dataclass(frozen=True)
class User:
    """A person or system of one municipality; its role bounds its tokens' roles."""

    id: str
    municipality_id: str
    name: str
    role: str
    created_ms: int
    disabled_ms: int | None


_USER = "SELECT id, municipality_id, name, role, created_ms, disabled_ms FROM users"
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def user(reg: Registry, id: str) -> User:
    row = reg.db.execute(f"{_USER} WHERE id = ?", (id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no user {id!r}")
    return User(*row)


def users(reg: Registry, municipality_id: str) -> list[User]:
    rows = reg.db.execute(f"{_USER} WHERE municipality_id = ? ORDER BY id", (municipality_id,))
    return [User(*r) for r in rows]


def add_user(
    reg: Registry, municipality_id: str, id: str, name: str, role: str, at_ms: int | None = None
) -> User:
    if not _USER_ID.fullmatch(id):
        raise RegistryError(
            f"id {id!r}: 1-64 of A-Z a-z 0-9 _ . @ -, starting with a letter or digit"
        )
    if role not in ROLES:
        raise RegistryError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise RegistryError("name: 1-100 characters")
    with reg.transaction():
        if reg.db.execute("SELECT 1 FROM municipalities WHERE id = ?", (municipality_id,)
                          ).fetchone() is None:
            raise NotFoundError(f"no municipality {municipality_id!r}")
        if reg.db.execute("SELECT 1 FROM users WHERE id = ?", (id,)).fetchone():
            raise ConflictError(f"user {id!r} exists already")
        reg.db.execute(
            "INSERT INTO users (id, municipality_id, name, role, created_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            (id, municipality_id, name, role, at_ms if at_ms is not None else now_ms()),
        )
    return user(reg, id)


def update_user(reg: Registry, id: str, *, name: str | None = None, role: str | None = None,
                at_ms: int | None = None) -> User:
    """Rename, or change the role; lowering the role revokes the user's tokens above it."""
    u = user(reg, id)
    if role is not None and role not in ROLES:
        raise RegistryError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if name is not None and (not name.strip() or len(name) > 100):
        raise RegistryError("name: 1-100 characters")
    t = at_ms if at_ms is not None else now_ms()
    with reg.transaction():
        reg.db.execute("UPDATE users SET name = ?, role = ? WHERE id = ?",
                       (name or u.name, role or u.role, id))
        if role is not None:
            above = [r for r in ROLES if role_rank(r) > role_rank(role)]
            reg.db.execute(
                f"UPDATE tokens SET revoked_ms = ? WHERE user_id = ? AND revoked_ms IS NULL"
                f" AND role IN ({', '.join('?' * len(above))})",
                (t, id, *above),
            )
    return user(reg, id)


def disable_user(reg: Registry, id: str, at_ms: int | None = None) -> User:
    """Disable the user and revoke every token issued to them."""
    user(reg, id)
    t = at_ms if at_ms is not None else now_ms()
    with reg.transaction():
        reg.db.execute("UPDATE users SET disabled_ms = coalesce(disabled_ms, ?) WHERE id = ?",
                       (t, id))
        reg.db.execute(
            "UPDATE tokens SET revoked_ms = ? WHERE user_id = ? AND revoked_ms IS NULL", (t, id)
        )
    return user(reg, id)


class AuthError(Exception):
    """Why a presented token is refused (the message never repeats the token)."""


def authenticate(reg: Registry, text: str, at_ms: int | None = None) -> Token:
    """The token's row if ``text`` is a valid, unexpired, unrevoked token; AuthError if not."""
    m = _TOKEN_RE.fullmatch(text)
    if m is None:
        raise AuthError("not a smartbins token")
    row = reg.db.execute("SELECT hash FROM tokens WHERE id = ?", (m.group(1),)).fetchone()
    if row is None or not hmac.compare_digest(row[0], _hash(text)):
        raise AuthError("unknown token")
    token = get(reg, m.group(1))
    t = at_ms if at_ms is not None else now_ms()
    if token.revoked_ms is not None:
        raise AuthError("token revoked")
    if token.expires_ms is not None and t >= token.expires_ms:
        raise AuthError("token expired")
    return token
