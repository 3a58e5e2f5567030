"""Fixtures of the UI tests: one real ``hopmem ui`` process per test module, and gradio_client sessions on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.ui_helpers import LiveUI, start_ui


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chromium: end-to-end UI tests in headless Chromium (Playwright; part of the default suite)"
    )


@pytest.fixture(scope="module")
def ui_app(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Iterator[LiveUI]:
    """The app over a seeded store, uploads limited to 1 MB (so that an oversize upload is quick to make)."""
    app = start_ui(tmp_path_factory.mktemp("ui"), sample_dir, max_file_bytes=1_000_000)
    yield app
    app.stop()


@pytest.fixture()
def client(ui_app: LiveUI) -> Callable[..., Any]:
    """A new gradio_client session on the app per call (each has its own session state: thread, last answer)."""
    from gradio_client import Client

    def make(auth: tuple[str, str] | None = None) -> Any:
        return Client(ui_app.url, auth=auth, verbose=False, download_files=False, analytics_enabled=False)

    return make
