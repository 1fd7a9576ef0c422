"""Every fenced block on the site runs, and the output a page shows is reproduced.

One test per block, named ``<page>#<n>-<language>``:

- ``python`` ending in ``web.run_app`` (or marked ``<!--pytest.mark.server-->``:
  an ``AppRunner`` of its own): started as ``python <file>`` on a free
  loopback port, it must answer HTTP: the blocks after it that talk to it show
  that, or else a ``GET /``. It keeps running, as the reader's does, while they
  run; after the last of them it is stopped with Ctrl+C (SIGINT) and must exit
  cleanly.
- other ``python``: run as ``python <file>``; if it talks to the reader's
  ``127.0.0.1:8080``, it talks to the page's last server; the block after
  ``<!--pytest-codeblocks:expected-output-->`` must equal what it printed.
- ``console``: each ``$ command`` is run with bash against the page's last
  server and what it prints must equal the lines the page shows under it.
- anything else (configuration files): must be a file of snippets/ that the
  page's own test module uses.
- a block marked ``<!--pytest.mark.not_runnable(reason=..., raises=...)-->``
  must fail, and its output must contain ``raises``.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import pages
import servers
from pages import Block, normalize, to_test_port
from servers import Running, python_program


def talks_to_reader_port(block: Block) -> bool:
    return any(f"{h}:{pages.READER_PORT}" in block.code for h in pages.READER_HOSTS)


# The reader's Python: `nox -s matrix` points it at an environment holding only
# what the page says to install; by default, the one running the tests.
READER_PYTHON = os.environ.get("FAQ_READER_PYTHON", sys.executable)
# `nox -s matrix` runs one page at a time (names, comma-separated).
ONLY = os.environ.get("FAQ_PAGES")
BLOCKS = [
    block
    for page in pages.pages()
    if not ONLY or page.stem in ONLY.split(",")
    for block in pages.page_blocks(page)
]
RUN_TIMEOUT = 60


@contextlib.contextmanager
def redis_env(workdir: Path) -> Iterator[str]:
    with servers.redis(workdir) as server:
        yield servers.redis_url(server)


# A real value for each variable of pages.ENV_VARS, from a real server.
ENV_RESOURCES = {"REDIS_URL": redis_env}
assert set(ENV_RESOURCES) == set(pages.ENV_VARS)


def uses_server(block: Block) -> bool:
    """Does ``block`` need the page's server running (the reader's 8080)?"""
    if block.not_runnable or block.server is None:
        return False
    return block.lang == "console" or (
        block.lang == "python" and not block.is_server and talks_to_reader_port(block)
    )


def server_of(block: Block) -> Block | None:
    """The server block whose process ``block`` runs (itself) or talks to."""
    if block.is_server and not block.not_runnable:
        return block
    return block.server if uses_server(block) else None


# The last block of its page that needs each server: after it, the server stops.
LAST_USER = {server_of(b).id: b.id for b in BLOCKS if server_of(b) is not None}


def save_folder(block: Block, tmp_path: Path, port: int | None) -> Path:
    """Save the page's programs up to ``block`` as a reader would; return its file."""
    for earlier in [*block.folder, block]:
        code = earlier.code if port is None else to_test_port(earlier.code, port)
        (tmp_path / earlier.filename).write_text(code, "utf-8")
    return tmp_path / block.filename


def start_env(block: Block, stack: contextlib.ExitStack, workdir: Path) -> dict:
    """Start what the variables ``block``'s programs read point to; return them."""
    env = {}
    for var in block.env_vars:
        folder = workdir / var.lower()
        folder.mkdir()
        env[var] = stack.enter_context(ENV_RESOURCES[var](folder))
    return env


@dataclass
class PageServer:
    running: Running
    env: dict[str, str]
    stack: contextlib.ExitStack


class PageServers:
    """Each page's servers, started once and used by the blocks that follow.

    A reader starts ``python app.py`` once and then tries every command the page
    shows against it: the tests do the same. A server is stopped (Ctrl+C, and
    it must exit cleanly) after the last block of its page that uses it.
    """

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp = tmp_path_factory
        self.started: dict[str, PageServer] = {}
        self.count = 0

    def get(self, server: Block) -> PageServer:
        if server.id not in self.started:
            workdir = self.tmp.mktemp(server.page)
            stack = contextlib.ExitStack()
            with contextlib.ExitStack() as starting:
                starting.push(stack)  # closed if the start fails
                env = start_env(server, stack, workdir)
                path = save_folder(server, workdir, None)
                running = stack.enter_context(
                    python_program(path, env=env, python=READER_PYTHON)
                )
                starting.pop_all()
            self.started[server.id] = PageServer(running, env, stack)
            self.count += 1
        return self.started[server.id]

    def done(self, block: Block) -> None:
        """Stop the server ``block`` used if no later block of the page needs it."""
        server = server_of(block)
        if server is not None and LAST_USER[server.id] == block.id:
            self.stop(server.id)

    def stop(self, server_id: str) -> None:
        self.started.pop(server_id).stack.close()

    def stop_all(self) -> None:
        for server_id in list(self.started):
            self.stop(server_id)


@pytest.fixture(scope="session")
def page_servers(tmp_path_factory) -> Iterator[PageServers]:
    """The pages' servers; any left running (a partial run) stop at the end."""
    registry = PageServers(tmp_path_factory)
    yield registry
    registry.stop_all()


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    # `python` in a transcript is the reader's Python.
    path = f"{Path(READER_PYTHON).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, "PATH": path, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def http_status(server: Running) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    finally:
        conn.close()


def check_server(block: Block, page_servers: PageServers) -> None:
    server = page_servers.get(block)
    if LAST_USER[block.id] == block.id:  # else the blocks after it talk to it
        status = http_status(server.running)
        assert 100 <= status < 600


def check_script(block: Block, tmp_path: Path, page_servers: PageServers) -> None:
    with contextlib.ExitStack() as stack:
        port = None
        if uses_server(block):
            server = page_servers.get(block.server)
            port, env = server.running.port, server.env
        else:
            env = start_env(block, stack, tmp_path)
        path = save_folder(block, tmp_path, port)
        result = run([READER_PYTHON, path.name], tmp_path, env)
    assert result.returncode == 0, result.stdout
    if block.expected_output is not None:
        assert normalize(result.stdout) == normalize(block.expected_output), (
            f"{block.id} printed:\n{result.stdout}"
        )


def transcript(code: str) -> list[tuple[str, str]]:
    """Split a console block into (command, what the page shows it printed)."""
    steps: list[tuple[str, list[str]]] = []
    for line in code.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before the first command: {line!r}"
            steps[-1][1].append(line)
    return [(command, "\n".join(shown)) for command, shown in steps]


def check_console(block: Block, tmp_path: Path, page_servers: PageServers) -> None:
    steps = transcript(block.code)
    assert steps, f"{block.id} has no $ command"
    assert block.server is not None, f"{block.id} needs a server block before it"
    server = page_servers.get(block.server)
    for command, shown in steps:
        argv = ["bash", "-c", to_test_port(command, server.running.port)]
        result = run(argv, tmp_path, server.env)
        assert normalize(result.stdout) == normalize(shown), (
            f"$ {command}\nprinted:\n{result.stdout}\npage shows:\n{shown}"
        )


@functools.cache
def snippet_texts() -> dict[str, str]:
    """Every file of snippets/, by its path there (read once per worker)."""
    return {
        path.relative_to(pages.SNIPPETS).as_posix(): path.read_text("utf-8", "replace")
        for path in pages.SNIPPETS.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def check_consumed(block: Block) -> None:
    """A configuration block is a snippet file that the page's test module uses."""
    matches = [
        name for name, text in snippet_texts().items() if block.code.strip() in text
    ]
    assert matches, f"{block.id} is not the text of any file in snippets/"
    module = pages.ROOT / "tests" / f"test_{Path(block.page).stem}.py"
    used = module.read_text("utf-8") if module.exists() else ""
    assert any(m in used for m in matches), f"{module.name} never uses {matches}"


def check_not_runnable(block: Block, tmp_path: Path) -> None:
    reason, raises = block.not_runnable["reason"], block.not_runnable["raises"]
    assert reason.strip(), f"{block.id}: a not_runnable block must say why"
    with contextlib.ExitStack() as stack:
        env = start_env(block, stack, tmp_path)
        path = save_folder(block, tmp_path, None)
        result = run([READER_PYTHON, path.name], tmp_path, env)
    assert result.returncode != 0, f"{block.id} ran although marked: {reason}"
    assert raises in result.stdout, result.stdout


# A page's blocks run in one worker, in order, as a reader tries them.
@pytest.mark.parametrize(
    "block",
    [pytest.param(b, marks=pytest.mark.xdist_group(b.page), id=b.id) for b in BLOCKS],
)
def test_block(
    block: Block,
    tmp_path: Path,
    page_servers: PageServers,
    request: pytest.FixtureRequest,
) -> None:
    try:
        if block.not_runnable:
            check_not_runnable(block, tmp_path)
        elif block.is_server:
            check_server(block, page_servers)
        elif block.lang == "python":
            check_script(block, tmp_path, page_servers)
        elif block.lang == "console":
            check_console(block, tmp_path, page_servers)
        else:
            check_consumed(block)
    finally:
        page_servers.done(block)
    request.node.user_properties.append(
        ("page_block", {"page": block.page, "not_runnable": bool(block.not_runnable)})
    )
