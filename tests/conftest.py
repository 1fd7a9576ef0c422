"""Fixtures shared by every test: real servers on loopback, started and stopped here."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

import pages
from servers import Running, free_port, require_program, running


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--site",
        metavar="DIR",
        help="a site built by `mkdocs build`: run tests/built_site against it",
    )
    parser.addoption(
        "--screenshots",
        metavar="DIR",
        help="where tests/built_site writes its screenshots (default: screenshots/)",
    )


def pytest_ignore_collect(collection_path, config) -> bool | None:
    """tests/built_site checks a built site; without --site they are not collected."""
    site_tests = pages.ROOT / "tests" / "built_site"
    if config.getoption("--site") is None and site_tests in collection_path.parents:
        return True
    if config.getoption("--site") is None and collection_path == site_tests:
        return True
    return None


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


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count passed page blocks (reports reach the controller under xdist too)."""
    if report.when == "call" and report.passed:
        for name, value in report.user_properties:
            if name == "page_block":
                PAGE_BLOCKS.append(value)


PAGE_BLOCKS: list[dict] = []


def pytest_terminal_summary(terminalreporter, config) -> None:
    """Say how many page blocks ran, and how many are kept as failing on purpose."""
    if PAGE_BLOCKS:
        broken = [block for block in PAGE_BLOCKS if block["not_runnable"]]
        on_pages = {block["page"] for block in PAGE_BLOCKS}
        terminalreporter.write_line(
            f"page blocks executed: {len(PAGE_BLOCKS)} on {len(on_pages)} pages; "
            f"{len(broken)} marked not runnable (checked to fail as the page says)"
        )
