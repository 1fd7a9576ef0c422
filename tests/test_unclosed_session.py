"""unclosed_session: where "Unclosed client session" comes from, over real sockets."""

import asyncio
import gc
import logging
import os
import re
import sys
import warnings
from pathlib import Path

import aiohttp
import pytest

import pages
from unclosed_session import fixed, leak
from unclosed_session.app import create_app

TIMEOUT = 10
SHOWN = pages.SNIPPETS / "unclosed_session"
# The page shows this part of `python -X dev leak.py`'s output (a text block).
DEV_OUTPUT = pages.SNIPPETS / "unclosed_session/dev.txt"


@pytest.fixture
async def url(aiohttp_server) -> str:
    """The page's server on 127.0.0.1."""
    server = await aiohttp_server(create_app())
    return str(server.make_url("/"))


class Upstream:
    """A keep-alive HTTP server on 127.0.0.1 that counts its TCP connections."""

    def __init__(self) -> None:
        self.accepted = 0
        self.open = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader, writer) -> None:
        self.accepted += 1
        self.open += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")  # a GET has no body
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            self.open -= 1
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/"

    async def until_all_closed(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            while self.open:
                await asyncio.sleep(0.01)


@pytest.fixture
async def upstream():
    counter = Upstream()
    counter.server = await asyncio.start_server(counter.handle, "127.0.0.1", 0)
    yield counter
    counter.server.close()
    await counter.server.wait_closed()


def messages(caplog) -> list[str]:
    """The first line of each ERROR record of the asyncio logger."""
    return [
        r.getMessage().splitlines()[0]
        for r in caplog.records
        if r.name == "asyncio" and r.levelno == logging.ERROR
    ]


def resource_warnings(caught) -> list[str]:
    return [
        text.split(" <")[0] for category, text in caught if category is ResourceWarning
    ]


@pytest.fixture
def caught():
    """(category, text) of every warning; pytest would turn them into errors.

    Not catch_warnings(record=True): its records keep the warning's ``source``,
    the session itself, alive.
    """
    found: list[tuple[type[Warning], str]] = []

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        found.append((category, str(message)))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield found


@pytest.mark.claim("在 ERROR 级别记下来")
@pytest.mark.claim("消息是 `Unclosed connector`")
@pytest.mark.claim("两条消息在 `服务器回答：你好` 之前打印出来")
@pytest.mark.claim("CPython 随即回收它")
@pytest.mark.claim("发出 `ResourceWarning: Unclosed client session <…>`")
async def test_the_leak_logs_both_messages_when_fetch_text_returns(
    url, caplog, caught, capsys
):
    await leak.fetch_text(url)
    # Reported already: the session went with fetch_text's frame.
    assert messages(caplog) == ["Unclosed client session", "Unclosed connector"]
    assert resource_warnings(caught) == messages(caplog)
    caplog.clear()
    await leak.main(url)
    assert capsys.readouterr().out == "服务器回答：你好\n"
    assert messages(caplog) == ["Unclosed client session", "Unclosed connector"]


@pytest.mark.claim("两条消息都不再出现")
async def test_fixed_reports_nothing(url, caplog, caught, capsys):
    await fixed.main(url)
    gc.collect()
    assert capsys.readouterr().out == "服务器回答：你好\n"
    assert messages(caplog) == []
    assert resource_warnings(caught) == []


# --- the programs as a reader runs them ---------------------------------------------


async def run_python(
    *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run the test's Python; return its exit status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


def reader_copy(tmp_path: Path, name: str, url: str, debug: bool = False) -> Path:
    """snippets/unclosed_session/<name> saved as a reader would, aimed at ``url``."""
    code = (SHOWN / name).read_text("utf-8").replace("http://127.0.0.1:8080/", url)
    if debug:  # asyncio.run(main(...)) -> asyncio.run(main(...), debug=True)
        code = re.sub(
            r"asyncio\.run\((main\(.*\))\)", r"asyncio.run(\1, debug=True)", code
        )
    path = tmp_path / name
    path.write_text(code, "utf-8")
    return path


ADDRESS = re.compile(r" at 0x[0-9a-f]+>")
FRAME = re.compile(r'^  File "([^"]*)", line \d+, in \S+\n(?:    .*\n)?', re.M)


def comparable(output: str) -> str:
    """Addresses out; each run of frames outside leak.py as one "  ..." line."""
    output = ADDRESS.sub(" at 0x…>", output)
    output = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", output)
    output = re.sub(r'File "[^"]*/leak\.py"', 'File "leak.py"', output)

    def frame(m: re.Match) -> str:
        return m.group(0) if m.group(1) == "leak.py" else "  ...\n"

    output = FRAME.sub(frame, output)
    return re.sub(r"(  \.\.\.\n)+", "  ...\n", output)


@pytest.mark.claim("（中间 asyncio 自己的几帧换成了 `...`")
@pytest.mark.claim("最后一帧就是创建会话的那一行")
@pytest.mark.claim("默认隐藏的 `ResourceWarning` 也显示出来")
@pytest.mark.claim(
    "`…/aiohttp/client.py:行号: ResourceWarning: Unclosed client session <…>`"
)
@pytest.mark.claim("结尾多出 aiohttp 内部的几帧")
@pytest.mark.claim("前面几帧和会话的一样")
@pytest.mark.claim("“Enable tracemalloc to get the object allocation traceback”")
async def test_dev_mode_shows_where_the_session_was_created(url, tmp_path):
    program = reader_copy(tmp_path, "leak.py", url)
    status, stdout, output = await run_python("-X", "dev", str(program))
    assert (status, stdout) == (0, "服务器回答：你好\n"), output
    shown = DEV_OUTPUT.read_text("utf-8")
    assert comparable(shown) in comparable(output), output
    warned = re.search(
        r"/aiohttp/client\.py:\d+: ResourceWarning: Unclosed client session <"
        r".*\n(?:.*\n)*?Unclosed client session\nclient_session: ",
        output,
    )
    assert warned, output  # the warning comes before the logged message
    assert "ResourceWarning: Unclosed connector <aiohttp.connector" in output
    hint = "ResourceWarning: Enable tracemalloc to get the object allocation traceback"
    assert hint in output
    # The session's traceback ends at the line that created it; the connector's
    # has the same frames, then aiohttp's own.
    session_frames = source_frames(output, "Unclosed client session")
    connector_frames = source_frames(output, "Unclosed connector")
    lines = program.read_text("utf-8").splitlines()
    created = 1 + next(n for n, t in enumerate(lines) if "aiohttp.ClientSession()" in t)
    assert session_frames[-1] == (str(program), created, "fetch_text"), session_frames
    assert connector_frames[: len(session_frames)] == session_frames, output
    added = connector_frames[len(session_frames) :]
    assert added and all("/aiohttp/" in file for file, _, _ in added), added


def source_frames(output: str, title: str) -> list[tuple[str, int, str]]:
    """(file, line, function) of each frame under ``title``'s source_traceback."""
    block = output.split(f"\n{title}\n", 1)[1]
    block = block.split("source_traceback: Object created at", 1)[1]
    frames = []
    for line in block.splitlines()[1:]:
        found = re.fullmatch(r'  File "(.*)", line (\d+), in (\S+)', line)
        if found:
            frames.append((found[1], int(found[2]), found[3]))
        elif not line.startswith("    "):
            break  # the end of this traceback
    return frames


@pytest.mark.claim("不开调试模式时没有 `source_traceback`")
@pytest.mark.claim("退出码也是 0")
@pytest.mark.claim("Python 默认不显示 `ResourceWarning`")
@pytest.mark.claim("这条日志直接打印到 stderr")
async def test_without_debug_mode(url, tmp_path):
    program = reader_copy(tmp_path, "leak.py", url)
    status, stdout, stderr = await run_python(str(program))
    assert (status, stdout) == (0, "服务器回答：你好\n"), stderr
    assert stderr.startswith("Unclosed client session\nclient_session: <"), stderr
    assert "\nUnclosed connector\nconnections: [" in stderr, stderr
    assert "source_traceback" not in stderr and "ResourceWarning" not in stderr


@pytest.mark.claim("环境变量 `PYTHONASYNCIODEBUG=1`")
@pytest.mark.claim("`asyncio.run(main(), debug=True)`")
async def test_other_ways_to_debug_mode(url, tmp_path):
    program = reader_copy(tmp_path, "leak.py", url)
    (tmp_path / "debug").mkdir()
    debug = reader_copy(tmp_path / "debug", "leak.py", url, debug=True)
    assert "), debug=True)" in debug.read_text("utf-8")
    env = {**os.environ, "PYTHONASYNCIODEBUG": "1"}
    runs = await asyncio.gather(
        run_python(str(program), env=env), run_python(str(debug))
    )
    shown = DEV_OUTPUT.read_text("utf-8")
    for status, stdout, stderr in runs:
        assert (status, stdout) == (0, "服务器回答：你好\n"), stderr
        assert "source_traceback: Object created at (most recent call last):" in stderr
        assert "ResourceWarning" not in stderr, stderr  # only -X dev shows those
    # dev.txt is what PYTHONASYNCIODEBUG=1 prints too
    assert comparable(shown) in comparable(runs[0][2])


GLOBAL = """
import asyncio, sys
import aiohttp

SESSIONS = []

async def main(url):
    session = aiohttp.ClientSession()
    SESSIONS.append(session)
    async with session.get(url) as resp:
        await resp.read()

asyncio.run(main(sys.argv[1]))
print("asyncio.run() 已经返回", file=sys.stderr)
"""


@pytest.mark.claim("常常就是程序退出的时候")
async def test_a_session_kept_elsewhere_is_reported_at_exit(url):
    status, _, stderr = await run_python("-c", GLOBAL, url)
    assert status == 0, stderr
    lines = stderr.splitlines()
    assert lines[0] == "asyncio.run() 已经返回", stderr
    assert "Unclosed client session" in lines[1:], stderr


# --- what happens to the connections -----------------------------------------------


@pytest.mark.claim("连接只是回到会话的连接池")
@pytest.mark.claim("会话本身仍然开着")
@pytest.mark.claim("connector 的 `__del__` 关掉池里所有连接")
async def test_pooled_connections_live_until_the_session_is_collected(
    upstream, caplog, caught
):
    session = aiohttp.ClientSession()
    for _ in range(2):
        async with session.get(upstream.url) as resp:
            assert await resp.text() == "ok"
    assert not session.closed
    assert (upstream.accepted, upstream.open) == (1, 1)  # one connection, reused
    assert messages(caplog) == []

    del session, resp  # the last references: collected now, not closed
    await upstream.until_all_closed()
    assert messages(caplog) == ["Unclosed client session", "Unclosed connector"]
    connections = [
        r.getMessage() for r in caplog.records if "Unclosed connector" in r.getMessage()
    ]
    assert "ResponseHandler" in connections[0], connections


@pytest.mark.claim("如果池里还有开着的连接，也会这样报告一次")
@pytest.mark.claim("池是空的，只有 `Unclosed client session` 一条")
async def test_a_session_without_requests_reports_only_itself(caplog, caught):
    session = aiohttp.ClientSession()
    del session
    assert messages(caplog) == ["Unclosed client session"]
    assert resource_warnings(caught) == ["Unclosed client session"]


@pytest.mark.claim("直到 connector 的 `keepalive_timeout`")
async def test_an_idle_pooled_connection_closes_after_keepalive_timeout(
    upstream, caplog, caught
):
    connector = aiohttp.TCPConnector(keepalive_timeout=0.2)
    session = aiohttp.ClientSession(connector=connector)
    async with session.get(upstream.url) as resp:
        await resp.read()
    assert upstream.open == 1
    await upstream.until_all_closed()  # while the session is still referenced
    assert not session.closed
    await session.close()
    assert messages(caplog) == []


@pytest.mark.claim("离开代码块时 `await session.close()`")
async def test_async_with_closes_the_pool_on_leaving(upstream, caplog, caught):
    async with aiohttp.ClientSession() as session:
        async with session.get(upstream.url) as resp:
            await resp.read()
        assert upstream.open == 1
    assert session.closed
    await upstream.until_all_closed()
    del session, resp
    gc.collect()
    assert messages(caplog) == []


@pytest.mark.claim("只写 `session.close()` 什么也不关")
@pytest.mark.claim("“coroutine 'ClientSession.close' was never awaited”")
async def test_close_without_await_closes_nothing(upstream, caplog, caught):
    session = aiohttp.ClientSession()
    async with session.get(upstream.url) as resp:
        await resp.read()
    session.close()  # the mistake the page shows: not awaited
    gc.collect()
    assert not session.closed
    assert upstream.open == 1
    never_awaited = [text for category, text in caught if category is RuntimeWarning]
    assert never_awaited == ["coroutine 'ClientSession.close' was never awaited"]
    del session, resp
    await upstream.until_all_closed()
    assert messages(caplog) == ["Unclosed client session", "Unclosed connector"]
