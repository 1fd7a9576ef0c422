"""Fail a parallel run whose xdist groups were split over several workers.

`nox -s tests` loads this plugin (``python -m pytest -p tests.xdist_groups``).
A page's blocks share the servers the page starts, and a few modules share one
costly fixture: each such set carries an ``xdist_group`` mark so that
``--dist loadgroup`` runs it in one worker. When pytest-xdist stops honouring
the mark, nothing fails: the tests pass in several workers, each starting the
same servers again (this happened with pytest 9.2 and pytest-xdist 3.8,
pytest-dev/pytest-xdist#1386). This plugin makes it fail; tests/test_servers.py
shows it does.
"""

from __future__ import annotations

import collections

import pytest

# group -> the workers that ran a test of it (collected in the controller)
WORKERS: dict[str, set[str]] = collections.defaultdict(set)


def group_of(item: pytest.Item) -> str | None:
    """The group xdist would give the item: its xdist_group names, joined."""
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    return "_".join(sorted(names)) or None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Carry each test's group in its report (xdist sends reports to the controller)."""
    for item in items:
        group = group_of(item)
        if group is not None:
            item.user_properties.append(("xdist_group", group))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    node = getattr(report, "node", None)  # set by xdist on reports from a worker
    if report.when == "setup" and node is not None:
        for name, value in report.user_properties:
            if name == "xdist_group":
                WORKERS[value].add(node.gateway.id)


def split_groups() -> dict[str, list[str]]:
    return {g: sorted(w) for g, w in sorted(WORKERS.items()) if len(w) > 1}


def pytest_terminal_summary(terminalreporter) -> None:
    split = split_groups()
    if split:
        terminalreporter.write_line(
            f"xdist groups run in more than one worker ({len(split)}): {split}; "
            "--dist loadgroup did not group them",
            red=True,
        )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if split_groups() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
