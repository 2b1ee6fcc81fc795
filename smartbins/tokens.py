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

from smartbins.registry import NotFoundError, Registry, RegistryError, now_ms

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
) -> tuple[Token, str]:
    """A new token; returns its row and the token text (shown once, stored only hashed).
    ``municipalities`` ``["*"]``: every municipality, now and later."""
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
            "INSERT INTO tokens (id, hash, name, role, all_municipalities, created_ms, expires_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (id, _hash(text), name, role, int(everyone), t, expires_ms),
        )
        if not everyone:
            reg.db.executemany(
                "INSERT INTO token_municipalities VALUES (?, ?)",
                [(id, m) for m in dict.fromkeys(municipalities)],
            )
    return get(reg, id), text


def get(reg: Registry, id: str) -> Token:
    row = reg.db.execute(
        "SELECT id, name, role, all_municipalities, created_ms, expires_ms, revoked_ms"
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
    return Token(row[0], row[1], row[2], scope, row[4], row[5], row[6])


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
