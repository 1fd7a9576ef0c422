"""Every fenced block on the site runs, and the output a page shows is reproduced.

One test per block, named ``<page>#<n>-<language>``:

- ``python`` ending in ``web.run_app``: started as ``python <file>`` on a free
  loopback port, it must answer HTTP and stop cleanly on Ctrl+C (SIGINT).
- other ``python``: run as ``python <file>``; if it talks to the reader's
  ``127.0.0.1:8080``, the page's last server runs meanwhile; the block after
  ``<!--pytest-codeblocks:expected-output-->`` must equal what it printed.
- ``console``: each ``$ command`` is run with bash against the page's server
  and what it prints must equal the lines the page shows under it.
- anything else (configuration files): must be a file of snippets/ that the
  page's own test module uses.
- a block marked ``<!--pytest.mark.not_runnable(reason=..., raises=...)-->``
  must fail, and its output must contain ``raises``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pages
from pages import Block, normalize, to_test_port
from servers import Running, python_program

BLOCKS = pages.all_blocks()
RUN_TIMEOUT = 60


def save_folder(block: Block, tmp_path: Path, port: int | None) -> Path:
    """Save the page's programs up to ``block`` as a reader would; return its file."""
    for earlier in [*block.folder, block]:
        code = earlier.code if port is None else to_test_port(earlier.code, port)
        (tmp_path / earlier.filename).write_text(code, "utf-8")
    return tmp_path / block.filename


def program_env(block: Block, request: pytest.FixtureRequest) -> dict[str, str]:
    return {
        var: request.getfixturevalue(fixture)
        for var, fixture in pages.ENV_FIXTURES.items()
        if fixture in block.env_fixtures
    }


@contextlib.contextmanager
def page_server(block: Block, tmp_path: Path, env: dict[str, str]):
    """Run the page's last server before ``block``, from its own folder."""
    assert block.server is not None, f"{block.id} needs a server block before it"
    folder = tmp_path / "server"
    folder.mkdir()
    with python_program(save_folder(block.server, folder, None), env=env) as server:
        yield server


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **env},
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


def check_server(block: Block, tmp_path: Path, env: dict[str, str]) -> None:
    with python_program(save_folder(block, tmp_path, None), env=env) as server:
        status = http_status(server)
    assert 100 <= status < 600


def talks_to_reader_port(code: str) -> bool:
    return any(f"{h}:{pages.READER_PORT}" in code for h in pages.READER_HOSTS)


def check_script(block: Block, tmp_path: Path, env: dict[str, str]) -> None:
    with contextlib.ExitStack() as stack:
        port = None
        if talks_to_reader_port(block.code):
            port = stack.enter_context(page_server(block, tmp_path, env)).port
        path = save_folder(block, tmp_path, port)
        result = run([sys.executable, path.name], tmp_path, env)
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


def check_console(block: Block, tmp_path: Path, env: dict[str, str]) -> None:
    steps = transcript(block.code)
    assert steps, f"{block.id} has no $ command"
    with page_server(block, tmp_path, env) as server:
        for command, shown in steps:
            result = run(
                ["bash", "-c", to_test_port(command, server.port)], tmp_path, env
            )
            assert normalize(result.stdout) == normalize(shown), (
                f"$ {command}\nprinted:\n{result.stdout}\npage shows:\n{shown}"
            )


def check_consumed(block: Block) -> None:
    """A configuration block is a snippet file that the page's test module uses."""
    matches = [
        path.relative_to(pages.SNIPPETS).as_posix()
        for path in pages.SNIPPETS.rglob("*")
        if path.is_file() and block.code.strip() in path.read_text("utf-8", "replace")
    ]
    assert matches, f"{block.id} is not the text of any file in snippets/"
    module = pages.ROOT / "tests" / f"test_{Path(block.page).stem}.py"
    used = module.read_text("utf-8") if module.exists() else ""
    assert any(m in used for m in matches), f"{module.name} never uses {matches}"


def check_not_runnable(block: Block, tmp_path: Path, env: dict[str, str]) -> None:
    reason, raises = block.not_runnable["reason"], block.not_runnable["raises"]
    assert reason.strip(), f"{block.id}: a not_runnable block must say why"
    path = save_folder(block, tmp_path, None)
    result = run([sys.executable, path.name], tmp_path, env)
    assert result.returncode != 0, f"{block.id} ran although marked: {reason}"
    assert raises in result.stdout, result.stdout


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.id)
def test_block(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env = program_env(block, request)
    if block.not_runnable:
        check_not_runnable(block, tmp_path, env)
    elif block.is_server:
        check_server(block, tmp_path, env)
    elif block.lang == "python":
        check_script(block, tmp_path, env)
    elif block.lang == "console":
        check_console(block, tmp_path, env)
    else:
        check_consumed(block)
    request.node.user_properties.append(
        ("page_block", {"page": block.page, "not_runnable": bool(block.not_runnable)})
    )
