"""concurrency_limit: the connector's limits against asyncio.Semaphore, counted by
a real aiohttp server, and "Too many open files" from a lowered RLIMIT_NOFILE.

The server is the page's ``create_app()`` on 127.0.0.1, with a short delay here
(the page's blocks run the reader's 0.5 s). Programs that lower RLIMIT_NOFILE run
as their own processes, so this process keeps its limit.
"""

import asyncio
import errno
import os
import re
import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import pages
import servers
from concurrency_limit import compare, emfile, timeouts
from concurrency_limit.app import DELAY as READER_DELAY
from concurrency_limit.app import create_app

FOLDER = pages.SNIPPETS / "concurrency_limit"
DELAY = 0.05  # how long the server takes per request here
TIMEOUT = 20


def shown(name: str, url: str) -> str:
    """snippets/concurrency_limit/<name>, with the reader's address replaced."""
    text = (FOLDER / name).read_text("utf-8")
    host = url.removeprefix("http://").removesuffix("/work")
    return text.replace("127.0.0.1:8080", host)


@dataclass
class Served:
    """The page's server on 127.0.0.1, and the requests that reached a handler."""

    url: str
    seen: list[str] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # loop.time() of each


async def serve(aiohttp_server, delay: float) -> Served:
    app = create_app(delay=delay)
    served = Served("")

    @web.middleware
    async def count(request: web.Request, handler) -> web.StreamResponse:
        served.seen.append(request.path)
        served.arrived.append(asyncio.get_running_loop().time())
        return await handler(request)

    app.middlewares.append(count)
    server = await aiohttp_server(app)
    served.url = str(server.make_url("/work"))
    return served


@pytest.fixture
async def fast(aiohttp_server) -> Served:
    """The page's server, 0.05 s per request."""
    return await serve(aiohttp_server, DELAY)


@pytest.fixture
async def reader_speed(aiohttp_server) -> Served:
    """The page's server with the reader's 0.5 s per request."""
    return await serve(aiohttp_server, READER_DELAY)


@pytest.fixture
async def sites():
    """The page's app on six ports of 127.0.0.1: six addresses, one counter."""
    runner = web.AppRunner(create_app(delay=DELAY))
    await runner.setup()
    for _ in range(6):
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner
    await runner.cleanup()


def urls(runner: web.AppRunner) -> list[str]:
    return [f"http://127.0.0.1:{port}/work" for _, port in runner.addresses]


def peak(answers: list[dict]) -> tuple[int, int]:
    """(most requests the server handled at once, connections the client used)"""
    return max(a["running"] for a in answers), len({a["port"] for a in answers})


# --- the limits ---------------------------------------------------------------------


@pytest.mark.claim("8 个请求同时到达服务器，各用一个连接")
@pytest.mark.claim("8 个请求只用了 4 个连接，后 4 个请求复用了前 4 个还回来的连接")
@pytest.mark.claim("所有请求都发给同一个地址，最多 3 个")
@pytest.mark.claim("所以也只有 5 个连接")
@pytest.mark.claim("还回来的连接留在连接池里，下一个请求直接复用")
async def test_compare_prints_what_the_page_shows(fast, capsys):
    await compare.main(fast.url)
    assert capsys.readouterr().out == shown("compare.txt", fast.url)


@pytest.mark.claim("限额用完时，新的请求在连接器里排队，等别的请求把连接还回来")
@pytest.mark.claim("传 `0` 表示不限制")
@pytest.mark.parametrize(
    ("how", "n", "expected"),
    [
        ("limit", 2, 2),
        ("limit", 3, 3),
        ("limit", 0, compare.REQUESTS),
        ("limit_per_host", 2, 2),
        ("semaphore", 3, 3),
    ],
)
async def test_the_most_at_once_is_the_limit(fast, how, n, expected):
    if how == "semaphore":
        answers = await compare.with_semaphore(fast.url, n)
    else:
        answers = await compare.with_connector(fast.url, **{how: n})
    assert len(answers) == len(fast.seen) == compare.REQUESTS  # none was lost
    assert peak(answers) == (expected, expected), answers


@pytest.mark.claim("默认 100")
@pytest.mark.claim("默认 `0`，即不单独限制")
async def test_the_defaults():
    connector = aiohttp.TCPConnector()
    assert (connector.limit, connector.limit_per_host) == (100, 0)
    await connector.close()


@pytest.mark.claim("连到别的地址（换一个端口也算）的请求另有 3 个名额")
@pytest.mark.parametrize(
    ("limits", "most"), [({"limit_per_host": 2}, 4), ({"limit": 3}, 3)]
)
async def test_each_address_has_its_own_per_host_limit(sites, limits, most):
    first, second = urls(sites)[:2]
    connector = aiohttp.TCPConnector(**limits)
    async with aiohttp.ClientSession(connector=connector) as session:
        answers = await asyncio.gather(
            *(compare.fetch(session, url) for url in 6 * [first, second])
        )
    assert max(a["running"] for a in answers) == most, answers


@pytest.mark.claim("两个可以一起用，哪个小，哪个起作用")
@pytest.mark.parametrize(("semaphore", "limit"), [(3, 2), (2, 3)])
async def test_a_semaphore_and_a_limit_together(fast, semaphore, limit):
    gate = asyncio.Semaphore(semaphore)

    async def limited(session):
        async with gate:
            return await compare.fetch(session, fast.url)

    connector = aiohttp.TCPConnector(limit=limit)
    async with aiohttp.ClientSession(connector=connector) as session:
        answers = await asyncio.gather(*(limited(session) for _ in range(8)))
    assert peak(answers) == (2, 2), answers


# --- how long a request holds its connection -----------------------------------------


async def big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * 2_000_000)


async def small(request: web.Request) -> web.Response:
    return web.Response(text="ok")


@pytest.fixture
async def body_server(aiohttp_server) -> str:
    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/small", small)
    server = await aiohttp_server(app)
    return str(server.make_url("/"))


async def fetch_with(session, url: str, timeout: aiohttp.ClientTimeout) -> None:
    async with session.get(url, timeout=timeout) as resp:
        await resp.read()


async def connects(session: aiohttp.ClientSession, url: str) -> bool:
    """Whether a request gets a connection within 0.3 s."""
    try:
        timeout = aiohttp.ClientTimeout(connect=0.3)
        async with session.get(url, timeout=timeout) as resp:
            await resp.read()
    except aiohttp.ConnectionTimeoutError:
        return False
    return True


@pytest.mark.claim("一个请求从发出开始占着连接")
@pytest.mark.claim("直到 aiohttp 收完整个响应体，或者响应被释放")
@pytest.mark.claim("响应体不大时，它和响应头一起到达，不读也会马上还回去")
@pytest.mark.claim("响应体很大、还没读完时，连接一直被占着")
@pytest.mark.claim("调用 `resp.release()`")
async def test_a_response_holds_its_connection_until_its_body_is_in(body_server):
    big_url, small_url = body_server + "big", body_server + "small"
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1)
    ) as session:
        resp = await session.get(small_url)  # not read
        assert await connects(session, small_url)
        resp.release()

        resp = await session.get(big_url)  # not read: most of it still on the way
        assert not await connects(session, small_url)
        assert len(await resp.read()) == 2_000_000
        assert await connects(session, small_url)

        resp = await session.get(big_url)
        resp.release()
        assert await connects(session, small_url)

        async with session.get(big_url):
            pass  # left without reading
        assert await connects(session, small_url)


# --- timeouts -----------------------------------------------------------------------


@pytest.mark.claim(
    "后两个请求先排队 0.5 秒，拿到连接时只剩 0.25 秒，服务器还没处理完就超时了"
)
@pytest.mark.claim("抛出 `asyncio.TimeoutError`")
@pytest.mark.claim("超时从这时算起，4 个请求都成功")
async def test_timeouts_prints_what_the_page_shows(reader_speed, capsys):
    started = asyncio.get_running_loop().time()
    await timeouts.main(reader_speed.url)
    assert capsys.readouterr().out == shown("timeouts.txt", reader_speed.url)
    # requests 3 and 4 were sent once they had a connection
    assert len(reader_speed.seen) == 2 * timeouts.REQUESTS
    # limit=2: two at once; the other two queued 0.5 s, with 0.25 s of 0.75 left
    waited = [round(t - started, 2) for t in reader_speed.arrived[:4]]
    assert all(t < 0.25 for t in waited[:2]), waited
    assert all(0.5 <= t < 0.75 for t in waited[2:]), waited


@pytest.mark.claim("在连接器里排队等连接的时间也算在内")
@pytest.mark.claim("一个请求从发出开始占着连接")  # the first, unanswered, holds it
@pytest.mark.claim("`ClientTimeout(connect=...)` 同样包括排队的时间")
@pytest.mark.claim("超时抛出 `aiohttp.ConnectionTimeoutError`")
@pytest.mark.claim("`sock_connect` 只管建立 TCP 连接本身，不包括排队")
@pytest.mark.parametrize(
    ("timeout", "raises"),
    [
        (aiohttp.ClientTimeout(total=0.1), asyncio.TimeoutError),
        (aiohttp.ClientTimeout(connect=0.1), aiohttp.ConnectionTimeoutError),
        (aiohttp.ClientTimeout(sock_connect=0.1), None),
    ],
)
async def test_time_in_the_queue_counts(reader_speed, timeout, raises):
    """The second request waits 0.5 s for the only connection."""
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        first = asyncio.ensure_future(compare.fetch(session, reader_speed.url))
        await asyncio.sleep(0)  # the first request takes the connection
        if raises is None:
            await fetch_with(session, reader_speed.url, timeout)
            assert len(reader_speed.seen) == 2
        else:
            with pytest.raises(raises):
                await fetch_with(session, reader_speed.url, timeout)
            assert reader_speed.seen == ["/work"]  # never sent
        await first


# --- what the limits do not cover -----------------------------------------------------


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


async def until_no_connections(runner: web.AppRunner) -> None:
    async with asyncio.timeout(TIMEOUT):
        while runner.server.connections:
            await asyncio.sleep(0.01)


@pytest.mark.claim("每个 TCP 连接在进程里占一个文件描述符")
@pytest.mark.claim("`limit` 只数正在用的连接。池里空闲的连接不算在内")
@pytest.mark.claim("不会为了腾出名额被关掉")
@pytest.mark.claim("打开的 socket 会比 `limit` 多")
async def test_idle_pooled_connections_are_not_counted(sites):
    before = open_files()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=2)
    ) as session:
        for url in urls(sites):
            await compare.fetch(session, url)
        assert len(sites.server.connections) == 6
        # one descriptor for each end of each connection: both ends are here
        assert open_files() - before == 2 * 6
    await until_no_connections(sites)


@pytest.mark.claim("要等连接器的 `keepalive_timeout`")
@pytest.mark.claim("可以把 `keepalive_timeout` 调小")
@pytest.mark.claim("`TCPConnector(force_close=True)` 让每个响应之后就关闭连接")
@pytest.mark.parametrize(
    "settings", [{"keepalive_timeout": 0.1}, {"force_close": True}]
)
async def test_idle_connections_closed_sooner(sites, settings):
    connector = aiohttp.TCPConnector(limit=2, **settings)
    async with aiohttp.ClientSession(connector=connector) as session:
        for url in urls(sites):
            await compare.fetch(session, url)
        await until_no_connections(sites)  # while the session is still open
        assert not session.closed


@pytest.mark.claim("每个会话默认创建自己的连接器，限额也是每个连接器各算各的")
@pytest.mark.claim("每个请求就都有自己的 100 个名额，等于没有限制")
@pytest.mark.claim("整个程序共用一个会话，限额才管得住所有请求")
async def test_each_session_has_its_own_limit(fast):
    made = []  # the connector of each default session

    async def own_session(limit: int | None) -> dict:
        connector = None if limit is None else aiohttp.TCPConnector(limit=limit)
        async with aiohttp.ClientSession(connector=connector) as session:
            assert session.connector.limit == (100 if limit is None else limit)
            if limit is None:
                made.append(session.connector)
            return await compare.fetch(session, fast.url)

    for limit in (None, 2):
        answers = await asyncio.gather(*(own_session(limit) for _ in range(8)))
        assert peak(answers)[0] == 8, answers
    assert len({id(c) for c in made}) == 8 and all(c.closed for c in made), made
    shared = aiohttp.TCPConnector(limit=2)
    async with aiohttp.ClientSession(connector=shared) as session:
        answers = await asyncio.gather(
            *(compare.fetch(session, fast.url) for _ in range(8))
        )
    assert peak(answers)[0] == 2, answers


# --- Too many open files ----------------------------------------------------------


async def run_python(*args: str, cwd: Path = FOLDER) -> tuple[int, str, str]:
    """Run the test's Python in ``cwd``; return its exit status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.claim("到了上限，再创建 socket 就失败")
@pytest.mark.claim("错误码是 `EMFILE`（24），消息是 “Too many open files”")
@pytest.mark.claim("`ClientConnectorError` 也是 `OSError`，`errno` 就是 24")
@pytest.mark.claim("200 个请求全部成功")
@pytest.mark.claim("`exc.errno == errno.EMFILE`")
async def test_emfile_prints_what_the_page_shows(fast, tmp_path):
    code = (FOLDER / "emfile.py").read_text("utf-8")
    program = tmp_path / "emfile.py"
    program.write_text(code.replace("http://127.0.0.1:8080/work", fast.url), "utf-8")
    status, out, err = await run_python(program.name, cwd=tmp_path)
    assert (status, err) == (0, "")
    assert out == shown("emfile.txt", fast.url)


UNCAUGHT = """
import asyncio, sys
import aiohttp
from emfile import lower_open_files_limit

async def main(url):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def fetch():
            async with s.get(url) as resp:
                await resp.read()
        await asyncio.gather(*(fetch() for _ in range(200)))

lower_open_files_limit(64)
asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.claim("超出上限的那些在创建 socket 时就失败了")
@pytest.mark.claim("回溯里先是 `OSError: [Errno 24] Too many open files`")
@pytest.mark.claim(
    "“The above exception was the direct cause of the following exception:”"
)
@pytest.mark.claim("最后一行是 `ClientConnectorError` 那一行")
@pytest.mark.claim(
    "`Cannot connect to host 主机:端口 ssl:default [Too many open files]`"
)
async def test_the_traceback_a_reader_sees(fast):
    status, _, err = await run_python("-c", UNCAUGHT, fast.url)
    assert status == 1, err
    host = fast.url.removeprefix("http://").removesuffix("/work")
    assert re.search(
        r'socket\.py", line \d+, in __init__\n(?:    .*\n)+'
        r"OSError: \[Errno 24\] Too many open files\n\n"
        r"The above exception was the direct cause of the following exception:\n",
        err,
    ), err
    last = err.rstrip("\n").splitlines()[-1]
    assert last == (
        "aiohttp.client_exceptions.ClientConnectorError: "
        f"Cannot connect to host {host} ssl:default [Too many open files]"
    ), err


RAISED_LIMIT = """
import asyncio, sys
import emfile

emfile.lower_open_files_limit(int(sys.argv[2]))
asyncio.run(emfile.main(sys.argv[1], limits=(0,), requests=int(sys.argv[3])))
"""


@pytest.mark.claim(
    "提高软限制（`ulimit -n`，或者在程序里调用 `resource.setrlimit()`）也能让错误消失"
)
@pytest.mark.claim("请求再多一些又会撞上")
@pytest.mark.claim("传 `0` 表示不限制")  # 200 at once pass 128 descriptors: not 100
async def test_a_higher_soft_limit_only_moves_the_edge(fast):
    """A soft limit of 128 holds 100 connections, not 200."""
    runs = await asyncio.gather(
        *(
            run_python("-c", RAISED_LIMIT, fast.url, "128", str(requests))
            for requests in (100, 200)
        )
    )
    for (status, out, err), fails in zip(runs, (False, True), strict=True):
        assert (status, err) == (0, "")
        assert ("[Too many open files]" in out) is fails, out
        assert ("全部成功" in out) is not fails, out


@pytest.mark.claim("上限是 `RLIMIT_NOFILE` 的软限制，也就是 `ulimit -n` 显示的数")
async def test_ulimit_n_shows_the_soft_limit():
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        "ulimit -Sn 64; ulimit -n; "
        f"{sys.executable} -c 'import resource; "
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])'",
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, _ = await proc.communicate()
    assert out.decode().split() == ["64", "64"]


@pytest.fixture
def restored_limit():
    """This process's RLIMIT_NOFILE, put back after the test."""
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_lower_open_files_limit_keeps_the_hard_limit(restored_limit):
    soft, hard = restored_limit
    emfile.lower_open_files_limit(soft - 1)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft - 1, hard)


async def test_emfile_in_process(fast, capsys):
    """The same program with this process's limit: nothing fails."""
    await emfile.main(fast.url, requests=50)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert capsys.readouterr().out.splitlines() == [
        f"RLIMIT_NOFILE 的软限制：{soft}",
        "TCPConnector(limit=0)，同时发出 50 个请求：",
        "  全部成功",
        "TCPConnector(limit=50)，同时发出 50 个请求：",
        "  全部成功",
    ]


@pytest.mark.claim("`ClientConnectorError` 也是 `OSError`")
async def test_any_connection_error_is_reported_with_its_cause(capsys):
    url = f"http://127.0.0.1:{servers.free_port()}/work"
    await emfile.run(url, limit=0, requests=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("  ConnectionRefusedError: [Errno 111] "), lines
    assert lines[3].startswith(
        "  aiohttp.client_exceptions.ClientConnectorError: Cannot connect to host"
    ), lines
    assert lines[4] == "  exc.errno：111（errno.ECONNREFUSED）", lines
    # and in code: the same test the page suggests for EMFILE
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError) as raised:
            await session.get(url)
    assert isinstance(raised.value, OSError)
    assert raised.value.errno == errno.ECONNREFUSED
