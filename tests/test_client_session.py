"""client_session: one ClientSession for the server's lifetime, connections reused."""

import asyncio
import contextlib
import dataclasses
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import attrs
import pytest
from aiohttp import web

import pages
from client_session import reuse
from client_session.app import SESSION, UPSTREAM_TIMEOUT, create_app
from servers import free_port, listeners_opened_while, python_program

WAIT = 10  # seconds: an upper bound for any wait in these tests
# Short limits for the tests; the reader's defaults are UPSTREAM_TIMEOUT.
SHORT = aiohttp.ClientTimeout(total=0.6, sock_connect=0.3, sock_read=0.3)
TRICKLE_CHUNKS = 16  # the trickling upstream sends one byte every 0.05 s

COOKIES = web.AppKey("cookies", list)  # the Cookie header of each upstream request


async def upstream_handler(request: web.Request) -> web.Response:
    request.app[reuse.CONNECTIONS].add(request.transport)
    request.app[COOKIES].append(request.headers.get("Cookie"))
    resp = web.Response(text="来自上游")
    resp.set_cookie("sid", "42")
    return resp


@pytest.fixture
async def upstream(aiohttp_server):
    """An upstream server that counts connections and sets a cookie on every answer."""
    app = web.Application()
    app[reuse.CONNECTIONS] = set()
    app[COOKIES] = []
    app.router.add_get("/", upstream_handler)
    return await aiohttp_server(app)


@pytest.fixture
async def client(aiohttp_client, upstream):
    """The recipe's app on 127.0.0.1, calling the test's upstream."""
    return await aiohttp_client(create_app(str(upstream.make_url(""))))


def connections(upstream) -> int:
    return len(upstream.app[reuse.CONNECTIONS])


async def test_handler_answers_with_the_upstream_response(client):
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 200, body
    assert await resp.json() == {"upstream_status": 200, "upstream_text": "来自上游"}


async def test_requests_reuse_one_upstream_connection(client, upstream):
    for _ in range(10):
        resp = await client.get("/")
        assert resp.status == 200, await resp.text()
    assert connections(upstream) == 1, upstream.app[reuse.CONNECTIONS]


async def test_upstream_cookies_are_not_kept(client, upstream):
    for _ in range(3):
        resp = await client.get("/")
        assert resp.status == 200, await resp.text()
    assert upstream.app[COOKIES] == [None, None, None]
    jar = client.app[SESSION].cookie_jar
    assert isinstance(jar, aiohttp.DummyCookieJar), jar
    assert len(jar) == 0


async def test_one_session_for_the_server_lifetime(client):
    session = client.app[SESSION]
    assert not session.closed
    await client.get("/")
    assert client.app[SESSION] is session
    await client.close()  # stops the server: cleanup_ctx closes the session
    assert session.closed


async def test_upstream_down_is_a_502(aiohttp_client):
    """Connection refused: nothing listens on the upstream's port."""
    client = await aiohttp_client(create_app(f"http://127.0.0.1:{free_port()}"))
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 502, body
    assert body == "上游不可用：ClientConnectorError\n", body


@dataclasses.dataclass
class Silent:
    """A real upstream on loopback that reads requests and never answers."""

    url: str
    requests: list[bytes]


@pytest.fixture
async def silent_upstream() -> Silent:
    """A server that accepts, reads the whole request head, then stays silent."""
    release = asyncio.Event()
    handlers: set[asyncio.Task] = set()
    requests: list[bytes] = []

    async def handle(reader, writer) -> None:
        handlers.add(asyncio.current_task())
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        await release.wait()  # never set while the test runs
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield Silent(f"http://127.0.0.1:{port}", requests)
    release.set()
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*handlers)
    server.close()
    await server.wait_closed()


@pytest.fixture
def overloaded_upstream() -> Iterator[str]:
    """A listening socket whose accept queue is full: new connections never complete."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        with contextlib.ExitStack() as stack:
            for _ in range(3):  # fill the queue; later SYNs are dropped
                filler = stack.enter_context(socket.socket())
                filler.setblocking(False)
                filler.connect_ex(address)
            yield f"http://127.0.0.1:{address[1]}"


async def trickle(request: web.Request) -> web.StreamResponse:
    """Answer at once, then send the body one byte every 0.05 s."""
    resp = web.StreamResponse()
    await resp.prepare(request)
    for _ in range(TRICKLE_CHUNKS):
        await asyncio.sleep(0.05)
        if request.transport is None or request.transport.is_closing():
            break  # the client gave up
        await resp.write(b".")
    return resp


@pytest.fixture
async def trickling_upstream(aiohttp_server) -> str:
    """A real upstream that never pauses long, but takes 0.8 s in total."""
    app = web.Application()
    app.router.add_get("/", trickle)
    server = await aiohttp_server(app)
    return str(server.make_url("/"))


async def get_through_app(aiohttp_client, upstream: str) -> tuple[int, str]:
    client = await aiohttp_client(create_app(upstream, timeout=SHORT))
    async with asyncio.timeout(WAIT):
        resp = await client.get("/")
        return resp.status, await resp.text()


async def test_silent_upstream_is_a_504(aiohttp_client, silent_upstream):
    """sock_read: the upstream has the request but sends nothing back."""
    status, body = await get_through_app(aiohttp_client, silent_upstream.url)
    assert (status, body) == (504, "上游超时：SocketTimeoutError\n"), body
    assert silent_upstream.requests[0].startswith(b"GET / HTTP/1.1\r\n")


async def test_trickling_upstream_is_a_504(aiohttp_client, trickling_upstream):
    """total: data keeps coming, so only the limit on the whole request stops it."""
    started = time.monotonic()
    status, body = await get_through_app(aiohttp_client, trickling_upstream)
    assert (status, body) == (504, "上游超时：TimeoutError\n"), body
    assert time.monotonic() - started >= SHORT.total


async def test_overloaded_upstream_is_a_504(aiohttp_client, overloaded_upstream):
    """sock_connect: the TCP handshake itself never completes."""
    status, body = await get_through_app(aiohttp_client, overloaded_upstream)
    assert (status, body) == (504, "上游超时：ConnectionTimeoutError\n"), body


def test_client_timeout_is_not_a_dataclass():
    """So dataclasses.replace() cannot copy it with one field changed."""
    with pytest.raises(TypeError, match="dataclass instances"):
        dataclasses.replace(SHORT, sock_read=1)


async def test_session_default_timeout_is_five_minutes():
    async with aiohttp.ClientSession() as session:
        assert session.timeout == aiohttp.ClientTimeout(total=300, sock_connect=30)


def test_reader_defaults_are_explicit():
    assert UPSTREAM_TIMEOUT == aiohttp.ClientTimeout(
        total=10, sock_connect=3, sock_read=5
    )


async def test_timeout_of_a_request_replaces_the_sessions(trickling_upstream):
    """A per-request ClientTimeout drops the session's total; attrs.evolve keeps it."""
    async with aiohttp.ClientSession(timeout=SHORT) as session:
        only_read = aiohttp.ClientTimeout(sock_read=SHORT.sock_read)
        async with asyncio.timeout(WAIT):
            async with session.get(trickling_upstream, timeout=only_read) as resp:
                assert await resp.text() == "." * TRICKLE_CHUNKS  # > SHORT.total
            kept = attrs.evolve(session.timeout, sock_read=SHORT.sock_read)
            with pytest.raises(asyncio.TimeoutError) as raised:
                async with session.get(trickling_upstream, timeout=kept) as resp:
                    await resp.text()
    assert type(raised.value) is asyncio.TimeoutError, raised.value


def replay(transcript: str, folder: Path, env: dict[str, str]) -> str:
    """Run the transcript's $ commands against app.py as a process; return all."""
    app = Path(shutil.copy(pages.SNIPPETS / "client_session/app.py", folder))
    lines = []
    with python_program(app, env=env) as server:
        for line in transcript.splitlines():
            if line.startswith("$ "):
                command = pages.to_test_port(line[2:], server.port)
                result = subprocess.run(
                    ["bash", "-c", command],
                    capture_output=True,
                    text=True,
                    timeout=WAIT * 3,
                )
                lines += [line, result.stdout + result.stderr]
    return "\n".join(lines)


async def test_page_transcript_of_a_silent_upstream(silent_upstream, tmp_path):
    """silent.txt: app.py with its reader defaults, the upstream never answers."""
    shown = (pages.SNIPPETS / "client_session/silent.txt").read_text("utf-8")
    env = {"UPSTREAM": silent_upstream.url}
    printed = await asyncio.to_thread(replay, shown, tmp_path, env)
    assert pages.normalize(printed) == pages.normalize(shown), printed
    assert len(silent_upstream.requests) == 1, silent_upstream.requests


@pytest.mark.parametrize(
    ("way", "expected"),
    [
        (reuse.shared_session, 1),
        (reuse.session_per_request, reuse.N),
        (reuse.shared_connector, 1),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
async def test_connections_per_way(upstream, way, expected):
    await way(str(upstream.make_url("/")))
    assert connections(upstream) == expected, upstream.app[reuse.CONNECTIONS]
    assert len(upstream.app[COOKIES]) == reuse.N


async def test_reuse_script_prints_the_page_output(capsys):
    await reuse.main()
    out = capsys.readouterr().out
    assert out == (pages.SNIPPETS / "client_session/reuse.txt").read_text("utf-8"), out


async def test_reuse_script_listens_on_a_free_loopback_port(capsys):
    """Two copies at once, each on a free loopback port of its own."""
    seen = await listeners_opened_while(
        asyncio.gather(reuse.main(), reuse.main()), WAIT
    )
    out = capsys.readouterr().out
    shown = (pages.SNIPPETS / "client_session/reuse.txt").read_text("utf-8")
    assert sorted(out.splitlines()) == sorted(shown.splitlines() * 2), out
    assert {host for host, _ in seen} == {"127.0.0.1"}, seen


@pytest.mark.parametrize(
    ("jar", "host", "sent_back"),
    [
        (aiohttp.DummyCookieJar, "localhost", None),
        (lambda: None, "localhost", "sid=42"),  # None: the session's default jar
        (lambda: None, "127.0.0.1", None),  # the default jar refuses IP hosts
        (lambda: aiohttp.CookieJar(unsafe=True), "127.0.0.1", "sid=42"),
    ],
    ids=["dummy", "default", "default-ip-host", "unsafe-ip-host"],
)
async def test_cookie_jar_decides_what_is_sent_back(upstream, jar, host, sent_back):
    url = f"http://{host}:{upstream.port}/"
    connector = aiohttp.TCPConnector(family=socket.AF_INET)  # localhost is 127.0.0.1
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar()) as session:
        for _ in range(2):
            async with session.get(url) as resp:
                assert resp.cookies["sid"].value == "42", resp.headers
        assert len(session.cookie_jar) == (sent_back is not None)
    assert upstream.app[COOKIES] == [None, sent_back]


async def test_session_without_ownership_leaves_the_connector_open(upstream):
    url = str(upstream.make_url("/"))
    connector = aiohttp.TCPConnector()
    for _ in range(2):
        async with aiohttp.ClientSession(
            connector=connector, connector_owner=False
        ) as session:
            async with session.get(url) as resp:
                assert resp.status == 200, await resp.text()
        assert session.closed
        assert not connector.closed
    assert connections(upstream) == 1, upstream.app[reuse.CONNECTIONS]
    await connector.close()  # the code that made the connector closes it
    await assert_unusable(connector, url)


async def test_owning_session_closes_the_shared_connector(upstream):
    url = str(upstream.make_url("/"))
    connector = aiohttp.TCPConnector()
    async with aiohttp.ClientSession(connector=connector) as first:
        async with first.get(url) as resp:
            assert resp.status == 200, await resp.text()
    assert connector.closed
    await assert_unusable(connector, url)


async def assert_unusable(connector: aiohttp.TCPConnector, url: str) -> None:
    """A session on a closed connector is closed from the start."""
    session = aiohttp.ClientSession(connector=connector, connector_owner=False)
    assert session.closed
    with pytest.raises(RuntimeError, match="Session is closed"):
        await session.get(url)


def test_there_is_no_own_connector_argument():
    with pytest.raises(TypeError, match="own_connector"):
        aiohttp.ClientSession(own_connector=False)
