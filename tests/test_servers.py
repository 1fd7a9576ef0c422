"""The tests' own machinery: the ports servers.free_port() hands out, and the
plugin that fails a parallel run whose xdist groups were split."""

import subprocess
import sys

import pytest

import pages
import servers


def test_free_ports_come_from_below_the_client_socket_range():
    """A client socket of any process could take a port from that range before
    the server that was to listen on it binds it."""
    ports = [servers.free_port() for _ in range(50)]
    low, high = servers.LOWEST_PORT, servers.EPHEMERAL_LOW
    assert all(low <= port < high for port in ports), ports
    # Drawn from the system's randomness: workers seeded alike still differ.
    assert len(set(ports)) > 45, ports


GROUPED = """
import pytest

@pytest.mark.xdist_group("one")
@pytest.mark.parametrize("n", range(8))
def test_grouped(n):
    pass
"""


@pytest.mark.parametrize(
    ("dist", "status"), [("loadgroup", 0), ("load", 1)], ids=["grouped", "split"]
)
def test_a_split_group_fails_the_run(tmp_path, dist, status):
    """`--dist load` spreads the group over the workers, as a broken loadgroup does."""
    (tmp_path / "test_grouped.py").write_text(GROUPED, "utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", "utf-8")
    argv = [sys.executable, "-m", "pytest", "-n", "2", "--dist", dist, "-q"]
    argv += ["-p", "tests.xdist_groups", "-p", "no:cacheprovider", str(tmp_path)]
    env = servers.reader_env() | {"PYTHONPATH": str(pages.ROOT)}
    result = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == status, result.stdout + result.stderr
    assert ("did not group them" in result.stdout) is bool(status), result.stdout
