"""`smartbins token create|list|revoke`: the token is printed once, listed without its
secret, and refused once revoked."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartbins import tokens
from smartbins.cli import main
from smartbins.registry import Registry


def test_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "registry.sqlite"
    with Registry(path) as reg:
        reg.add_municipality("0101", "København")
    reg_args = ["--registry", str(path)]
    assert main(["token", "create", *reg_args, "--name", "ops", "--role", "technician",
                 "--municipality", "0101"]) == 0
    text = capsys.readouterr().out.strip()
    with Registry(path) as reg:
        tok = tokens.authenticate(reg, text)
        assert (tok.role, tok.municipalities) == ("technician", ("0101",))
        assert text not in str(reg.db.execute("SELECT * FROM tokens").fetchall())
    assert main(["token", "list", *reg_args]) == 0
    listing = capsys.readouterr().out
    # The secret is everything after "sbt_<id>_"; it may itself hold "_" (token_urlsafe),
    # so splitting on "_" could leave a one-letter tail that appears in any listing.
    secret = text.removeprefix(f"{tokens.PREFIX}{tok.id}_")
    assert len(secret) >= 40 and tok.id in listing and "active" in listing
    assert secret not in listing
    assert main(["token", "revoke", *reg_args, tok.id]) == 0
    with Registry(path) as reg, pytest.raises(tokens.AuthError, match="token revoked"):
        tokens.authenticate(reg, text)
    assert main(["token", "create", *reg_args, "--name", "x", "--role", "admin",
                 "--municipality", "9999"]) == 1
    assert "no municipality '9999'" in capsys.readouterr().err
