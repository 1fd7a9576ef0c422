"""tests/matrix.py's check of a page's programs against the oldest Python its
install line installs on, shown on planted input."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

import matrix

# A few of aiohttp's releases and their Requires-Python, as PyPI lists them.
AIOHTTP = {"3.9.0": ">=3.8", "3.10.11": ">=3.8", "3.13.5": ">=3.9", "3.14.5": ">=3.10"}


@pytest.mark.parametrize(
    ("requirement", "oldest"),
    [
        ("aiohttp>=3.9", "3.8"),
        ("aiohttp>=3.13", "3.9"),
        ("aiohttp>=3.14", "3.10"),
        ("aiohttp>=3.9,!=3.9.0", "3.8"),
    ],
)
def test_the_oldest_python_a_range_installs_on(requirement: str, oldest: str) -> None:
    assert matrix.oldest_python(Requirement(requirement), AIOHTTP) == oldest


def test_a_program_newer_than_that_python_is_found(tmp_path: Path) -> None:
    """asyncio.to_thread came with Python 3.9: a program using it fails on 3.8."""
    planted = tmp_path / "app.py"
    planted.write_text("import asyncio\n\nasyncio.run(asyncio.to_thread(print))\n")
    assert "asyncio.to_thread" in matrix.newer_python_than("3.8", [planted])
    assert matrix.newer_python_than("3.9", [planted]) == ""


def test_a_builtin_timeout_handler_is_found() -> None:
    """Before 3.11 `except TimeoutError` misses asyncio.TimeoutError."""
    planted = "try:\n    pass\nexcept (OSError, TimeoutError):\n    pass\n"
    assert matrix.builtin_timeout_handlers(planted) == [3]
    assert matrix.builtin_timeout_handlers(planted.replace(" TimeoutError", "")) == []


@pytest.mark.parametrize(
    ("future", "found"), [("", True), ("from __future__ import annotations\n", False)]
)
def test_an_annotation_counts_where_python_evaluates_it(tmp_path, future, found):
    """`AsyncIterator[None]` in a signature fails on 3.8 unless annotations wait."""
    planted = tmp_path / "app.py"
    planted.write_text(
        f"{future}from collections.abc import AsyncIterator\n\n\n"
        "async def ticks() -> AsyncIterator[None]:\n    yield\n"
    )
    report = matrix.newer_python_than("3.8", [planted])
    assert ("AsyncIterator" in report) is found, report
