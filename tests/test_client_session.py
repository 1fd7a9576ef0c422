"""client_session: one ClientSession for the server's lifetime, connections reused."""

import socket

import aiohttp
import pytest
from aiohttp import web

import pages
from client_session import reuse
from client_session.app import SESSION, create_app
from servers import free_port

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
    client = await aiohttp_client(create_app(f"http://127.0.0.1:{free_port()}"))
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 502, body
    assert body == "上游不可用：ClientConnectorError", body


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
