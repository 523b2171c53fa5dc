"""A real browser for the page tests: the system's Chromium, driven by Playwright.

Why Playwright (Python package `playwright`, a test extra): it reports console messages,
uncaught errors and every request the page makes, sets the viewport, clicks, and takes
screenshots, with no protocol code of ours. It does not need its own browser download: it
drives Debian's ``/usr/bin/chromium`` (``$LTR_CHROMIUM`` overrides the path).

Where no browser can start, the tests skip with the reason; with ``LTR_REQUIRE_SERVICES=1``
(set by .ci/run) they fail instead, so CI never skips them silently.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: The flags this machine's closed network needs (no background connections), plus headless.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("LTR_REQUIRE_SERVICES") == "1":
        pytest.fail(f"LTR_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    configured = os.environ.get("LTR_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextlib.contextmanager
def launch() -> Iterator[Any]:
    """A headless Chromium for the duration of the block (or skip/fail with the reason)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        _unavailable("no Chromium found (apt-get install chromium, or set LTR_CHROMIUM)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=path, headless=True, args=CHROMIUM_ARGS
            )
        except Error as error:
            _unavailable(f"Chromium at {path} did not start: {str(error).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Visit:
    """One page opened in its own browser context, with what it did while loading."""

    page: Any
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind in ("error", "warning")]

    def screenshot_is_drawn(self, width: int) -> bool:
        """A screenshot of the viewport is `width` wide and not blank (many colours, ink)."""
        from PIL import Image

        png = self.page.screenshot(full_page=False)
        image = Image.open(io.BytesIO(png)).convert("RGB")
        colours = image.getcolors(maxcolors=1 << 20) or []
        dark = sum(count for count, rgb in colours if sum(rgb) < 200)
        return image.width == width and len(colours) > 20 and dark > 500


@contextlib.contextmanager
def visit(browser: Any, path: Path, width: int, height: int = 900) -> Iterator[Visit]:
    """Open `path` (a file on disk) at a viewport `width` px wide; requests to anything else than
    local files are recorded and refused, so a page that needs the network shows it."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    seen = Visit(page)
    page.on("console", lambda message: seen.console.append((message.type, message.text)))
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.on("request", lambda request: seen.requests.append(request.url))

    def local_only(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", local_only)
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        yield seen
    finally:
        context.close()
