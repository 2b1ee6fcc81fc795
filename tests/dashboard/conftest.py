"""Browser fixtures: Debian's chromium driven headless by Playwright against a real backend
serving a simulated city (dash_city.py). Every page's requests are intercepted: one to any
host but the backend's own fails the test; so does a JavaScript error.

Screenshots go to ``test-artifacts/dashboard/`` (git-ignored; SMARTBINS_ARTIFACTS moves it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import dash_city
import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = dash_city.ARTIFACTS


def launch(playwright: object) -> object:
    """Debian's chromium (never a downloaded browser); --no-sandbox as root."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make system` (as root it installs Debian's chromium), "
            "or `sudo apt-get install -y chromium`"
        )
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def city() -> Iterator[dash_city.City]:
    c = dash_city.build(n_bins=60, days=4.0, seed=3)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Per module: Playwright's sync API keeps an asyncio loop running in this thread while it
    is open, and tests after the dashboard's (asyncio.run in the simulator's) need it gone."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass
class Watch:
    """What a page asked for that it should not have, and the errors it raised."""

    origin: str
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def page_as(
    browser: object, city: dash_city.City
) -> Iterator[Callable[..., tuple[object, Watch]]]:
    """``page_as(role, lang="en", viewport=...)``: a fresh browser context logged in with that
    role's token (None: logged out), and what it requested."""
    contexts: list[object] = []
    watches: list[Watch] = []
    origin = urlsplit(city.base_url).netloc

    def make(
        role: str | None,
        lang: str = "en",
        viewport: dict[str, int] | None = None,
        **context_kw: object,
    ) -> tuple[object, Watch]:
        ctx = browser.new_context(  # type: ignore[attr-defined]
            viewport=viewport or {"width": 1280, "height": 860}, locale="en-GB", **context_kw
        )
        contexts.append(ctx)
        watch = Watch(origin)
        watches.append(watch)

        def route(r: object) -> None:
            url = r.request.url  # type: ignore[attr-defined]
            watch.requests.append(url)
            if urlsplit(url).netloc != origin:
                watch.foreign.append(url)
                r.abort()  # type: ignore[attr-defined]
            else:
                r.continue_()  # type: ignore[attr-defined]

        ctx.route("**/*", route)
        if role is not None:
            token = city.tokens[role]
            # set once, as a user who logged in earlier would have them (each page load runs it)
            ctx.add_init_script(
                "if (!sessionStorage.getItem('seeded')) {"
                f"localStorage.setItem('smartbins.token', {token!r});"
                f"localStorage.setItem('smartbins.language.test {role}', {lang!r});"
                "sessionStorage.setItem('seeded', '1'); }"
            )
        page = ctx.new_page()
        page.on("pageerror", lambda e: watch.errors.append(str(e)))
        return page, watch

    yield make
    for ctx in contexts:
        ctx.close()  # type: ignore[attr-defined]
    for w in watches:
        assert not w.foreign, f"the page asked other hosts than its own: {w.foreign}"
        assert not w.errors, f"JavaScript errors: {w.errors}"
