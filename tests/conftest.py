"""Fixtures shared by every test: real servers on loopback, started and stopped here."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator

import pytest

if sys.version_info < (3, 11):  # pragma: no cover  (`nox -s matrix` runs 3.10 too)
    # The tests use asyncio.timeout (3.11+); on 3.10 aiohttp itself depends on
    # async-timeout, whose timeout() is the same context manager.
    import async_timeout

    asyncio.timeout = async_timeout.timeout

import claims
import pages
import servers
from servers import Running

# A reader's terminal is not a CI service's: with CI or BUILD_NUMBER set, pytest
# prints its summary lines untruncated (_pytest.compat.running_on_ci), so the
# readers' pytest runs the pages show would print differently under CI.
for _name in ("CI", "BUILD_NUMBER"):
    os.environ.pop(_name, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--site",
        metavar="DIR",
        help="a site built by `mkdocs build`: run tests/built_site against it",
    )
    parser.addoption(
        "--other-site",
        metavar="DIR",
        help="a second build of the site (Zensical's), compared with --site",
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
    with servers.redis(tmp_path) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: Running) -> str:
    """The URL of the test's redis-server, as a recipe reads it from REDIS_URL."""
    return servers.redis_url(redis_server)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Carry each test's claims in its report, to be counted when it passes."""
    for item in items:
        for mark in item.iter_markers("claim"):
            page = claims.page_of(item.path, mark)
            item.user_properties.append(("claim", (page, mark.args[0])))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count passed page blocks and claims (xdist sends reports to the controller)."""
    if report.when == "call" and report.passed:
        for name, value in report.user_properties:
            if name == "page_block":
                PAGE_BLOCKS.append(value)
            elif name == "claim":
                CLAIMS.add(tuple(value))


PAGE_BLOCKS: list[dict] = []
CLAIMS: set[tuple[str, str]] = set()


def pytest_terminal_summary(terminalreporter, config) -> None:
    """Say how many page blocks ran, and how many are kept as failing on purpose."""
    if PAGE_BLOCKS:
        broken = [block for block in PAGE_BLOCKS if block["not_runnable"]]
        on_pages = {block["page"] for block in PAGE_BLOCKS}
        terminalreporter.write_line(
            f"page blocks executed: {len(PAGE_BLOCKS)} on {len(on_pages)} pages; "
            f"{len(broken)} marked not runnable (checked to fail as the page says)"
        )
    if CLAIMS:
        on_pages = {page for page, _ in CLAIMS}
        terminalreporter.write_line(
            f"claims proven: {len(CLAIMS)} on {len(on_pages)} pages"
        )
