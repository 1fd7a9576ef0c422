"""Fixtures for checking the built site: its files, a real HTTP server, Chromium."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import Running, free_port, require_program, running


@pytest.fixture(scope="session")
def site_dir(pytestconfig: pytest.Config) -> Path:
    """The folder `mkdocs build` wrote."""
    path = Path(pytestconfig.getoption("--site")).resolve()
    assert (path / "index.html").exists(), f"no built site in {path}"
    return path


@pytest.fixture(scope="session")
def site_server(site_dir: Path, tmp_path_factory) -> Iterator[Running]:
    """The built site served over HTTP on 127.0.0.1 by a real process."""
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    argv += ["--directory", str(site_dir)]
    with running(argv, port=port, cwd=tmp_path_factory.mktemp("http")) as server:
        yield server


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; nothing downloads a browser."""
    return require_program("chromium")
