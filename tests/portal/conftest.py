"""A real browser for the portal tests: Playwright for Python driving Debian's Chromium (``executable_path``).

A missing browser fails these tests (it never skips them): `make setup` installs Debian's ``chromium`` when it can
(as root), and the failure says how to install it otherwise. Screenshots go to ``artifacts/portal/`` (ignored by
git). Every page's console is watched: an error there fails the test unless the test expected it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.up import Stack, start_stack

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "portal"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
IDP_TOKEN_LIFETIME = 8  # seconds: long enough to sign in, short enough to watch a refresh


def chromium_path() -> str:
    configured = os.environ.get("PORTAL_CHROMIUM")
    for candidate in ([configured] if configured else []) + list(CHROMIUM_CANDIDATES):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    pytest.fail("Chromium is not installed, and the portal's browser tests need it: run `make setup` as root "
                "(it runs `apt-get install -y chromium`), or `sudo apt-get install -y chromium`, or point "
                "PORTAL_CHROMIUM at a Chromium binary.", pytrace=False)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # root: no user namespaces
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def apikey_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Every /sts call is a fresh AssumeRole (no reuse), so a test that expires sessions gets new ones.
    stack = start_stack(data_dir=tmp_path_factory.mktemp("portal"), auth="apikey", port=0, oss_port=0, sts_port=0,
                        timers=False, echo_logs=False, instances=1, env={"token": {"STS_CACHE_SECONDS": "0"}})
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def oidc_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """JWT callers signed in by the demo identity provider, whose tokens live a few seconds (no leeway)."""
    no_leeway = {"JWT_LEEWAY": "0"}
    stack = start_stack(data_dir=tmp_path_factory.mktemp("portal-oidc"), auth="jwt", port=0, oss_port=0,
                        sts_port=0, timers=False, echo_logs=False, instances=1, idp=True,
                        idp_token_lifetime=IDP_TOKEN_LIFETIME,
                        env={"token": no_leeway, "sign": no_leeway, "download": no_leeway})
    yield stack
    stack.stop()


class Console:
    """Console errors and uncaught exceptions of a page; ``expect(pattern)`` admits the ones a test provokes."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.expected: list[re.Pattern[str]] = []

    def expect(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]


@pytest.fixture
def console() -> Console:
    return Console()


def open_page(browser: Any, console: Console, *, locale: str = "en-US", viewport: dict[str, int] | None = None,
              origin: str | None = None) -> Any:
    context = browser.new_context(accept_downloads=True, locale=locale,
                                  viewport=viewport or {"width": 1280, "height": 860})
    if origin:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    page = context.new_page()
    page.on("console", lambda message: console.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    return page


@pytest.fixture
def page(browser: Any, console: Console, apikey_stack: Stack) -> Iterator[Any]:
    opened = open_page(browser, console, origin=apikey_stack.gateway.url)
    yield opened
    opened.context.close()
    assert console.unexpected() == [], "console errors"


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
