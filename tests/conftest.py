"""Fixtures shared by every test: real servers on loopback, started and stopped here."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator

import pytest

import pages
from servers import Running, free_port, running


def require_program(name: str) -> str:
    """The path of a system program the tests need; fail loudly if it is missing."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{name} is not installed: run `nox -s tests`, which installs it")
    return path


@pytest.fixture
def redis_server(tmp_path) -> Iterator[Running]:
    """A real redis-server on a free loopback port, stopped after the test."""
    port = free_port()
    argv = [require_program("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    with running(argv, port=port, cwd=tmp_path, stop_signal=signal.SIGTERM) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: Running) -> str:
    """The URL of the test's redis-server, as a recipe reads it from REDIS_URL."""
    return f"redis://127.0.0.1:{redis_server.port}/0"


def pytest_terminal_summary(terminalreporter, config) -> None:
    """Say how many page blocks ran, and how many are kept as failing on purpose."""
    ran = config.stash.get(pages.EXECUTED, [])
    if ran:
        broken = [block for block in ran if block.not_runnable]
        terminalreporter.write_line(
            f"page blocks executed: {len(ran)} on {len({b.page for b in ran})} pages; "
            f"{len(broken)} marked not runnable (checked to fail as the page says)"
        )
