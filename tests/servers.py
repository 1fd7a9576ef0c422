"""Start programs as real processes on real loopback sockets, and stop them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def reader_env() -> dict[str, str]:
    """This environment less what pytest and coverage put into it: a reader's."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "COV_")) and k != "PYTHONWARNINGS"
    }


def require_program(name: str) -> str:
    """The path of a system program the tests need; fail loudly if it is missing."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise RuntimeError(f"{name} is not installed: `nox` installs it (as root)")
    return path


# The kernel gives client sockets (and bind to port 0) ports from this range:
# one of them could take a port found free there before our program binds it.
# The tests' servers get ports from below it.
PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
EPHEMERAL_LOW = int(PORT_RANGE.read_text().split()[0]) if PORT_RANGE.exists() else 32768
LOWEST_PORT = 10000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now, from below the
    kernel's range for client sockets (so that none of them takes it meanwhile).
    Chosen by the system's randomness: Hypothesis seeds `random` in its tests."""
    choose = random.SystemRandom().randrange
    for _ in range(200):
        port = choose(LOWEST_PORT, EPHEMERAL_LOW)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # in use, or in TIME_WAIT
                continue
            return port
    raise RuntimeError(f"no free port in {LOWEST_PORT}-{EPHEMERAL_LOW - 1}")


def wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    """Return once ``port`` accepts connections; fail if ``proc`` dies first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args} exited with {proc.returncode} before listening:\n"
                + log.read_text(errors="replace")
            )
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{proc.args} did not listen on {port} in {STARTUP_TIMEOUT}s")


@dataclass
class Running:
    """A program that listens on ``port``; its output goes to ``log``."""

    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    *,
    port: int,
    cwd: Path,
    env: dict[str, str] | None = None,
    stop_signal: int = signal.SIGINT,
    expect_clean_exit: bool = True,
) -> Iterator[Running]:
    """Run ``argv`` until the block ends; it must listen on ``port``.

    It is stopped as a reader stops it (Ctrl+C, i.e. SIGINT, unless told
    otherwise). With ``expect_clean_exit`` the program must then exit with
    status 0 and must not have logged a traceback.
    """
    # The log goes to a temporary folder, never next to the program (snippets/).
    log = Path(tempfile.mkdtemp(prefix="faq-server-")) / f"{Path(argv[-1]).name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Running(proc, port, log)
    try:
        wait_for_port(port, proc, log)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(stop_signal)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if expect_clean_exit:
        assert proc.returncode == 0, (
            f"{argv} exited {proc.returncode}:\n{server.output()}"
        )
        assert "Traceback" not in server.output(), server.output()


@contextlib.contextmanager
def python_program(
    path: Path,
    *,
    env: dict[str, str] | None = None,
    python: str = sys.executable,
    **kwargs,
) -> Iterator[Running]:
    """Run ``python <path>`` as a reader would, serving on a free port."""
    port = free_port()
    with running(
        [python, path.name],
        port=port,
        cwd=path.parent,
        env={"PORT": str(port), **(env or {})},
        **kwargs,
    ) as server:
        yield server


@contextlib.contextmanager
def redis(workdir: Path) -> Iterator[Running]:
    """A real redis-server on a free loopback port that keeps nothing on disk."""
    port = free_port()
    argv = [require_program("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    with running(argv, port=port, cwd=workdir, stop_signal=signal.SIGTERM) as server:
        yield server


def redis_url(server: Running) -> str:
    """The URL a program reads from REDIS_URL to reach ``server``."""
    return f"redis://127.0.0.1:{server.port}/0"


@contextlib.contextmanager
def nginx(server_block: str, *, port: int, workdir: Path) -> Iterator[Running]:
    """Run a real nginx with ``server_block`` inside its ``http {}``, on ``port``.

    Everything nginx writes (pid, temp files, logs) stays in ``workdir``; it runs
    in the foreground without a master process, so it never switches user.
    """
    (workdir / "server.conf").write_text(server_block, "utf-8")
    temp_paths = "".join(
        f"{kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (workdir / "nginx.conf").write_text(
        "events {}\n"
        f"http {{ include /etc/nginx/mime.types; access_log off; {temp_paths}"
        " include server.conf; }\n",
        "utf-8",
    )
    argv = [require_program("nginx"), "-p", str(workdir), "-c", "nginx.conf"]
    argv += [
        "-e",
        "stderr",
        "-g",
        f"daemon off; master_process off; pid {workdir}/pid;",
    ]
    with running(argv, port=port, cwd=workdir, stop_signal=signal.SIGQUIT) as server:
        yield server


def own_listeners() -> set[tuple[str, int]]:
    """(host, port) of each socket this process listens on, found in /proc/self/fd."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                with socket.socket(fileno=os.dup(int(fd))) as sock:
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                        found.add(sock.getsockname()[:2])
    return found


async def listeners_opened_while(
    awaitable: Awaitable[object], timeout: float
) -> set[tuple[str, int]]:
    """Await ``awaitable``; return each (host, port) listened on meanwhile."""
    earlier, seen = own_listeners(), set()
    task = asyncio.ensure_future(awaitable)
    async with asyncio.timeout(timeout):
        while not task.done():
            seen |= own_listeners() - earlier
            await asyncio.sleep(0)
        await task
    return seen
