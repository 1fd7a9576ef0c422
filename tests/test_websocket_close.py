"""websocket_close: /logout closes one user's sockets, shutdown closes the rest."""

import asyncio
import gc
import hmac
import struct
import time
import warnings

import aiohttp
import pytest
from aiohttp import web

from websocket_close import client as client_script
from websocket_close.app import LOGGED_OUT, WEBSOCKETS, create_app

TIMEOUT = 5
# close() waiting for the client's close frame would take WebSocketResponse's
# timeout, 10 s; not waiting takes milliseconds.
PROMPTLY = 1.0
TOKENS = {"alice": "test-token-a", "bob": "test-token-b", "carol": "test-token-c"}
SOCKETS_PER_USER = {"alice": 3, "bob": 2, "carol": 1}


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


@pytest.fixture
async def client(aiohttp_client):
    """The recipe's app with three test users, served on 127.0.0.1."""
    return await aiohttp_client(create_app(TOKENS))


async def until_closed(ws) -> int | None:
    """Read until the server closes the socket; return the close code seen."""
    async for _ in ws:
        pass
    return ws.close_code


async def open_sockets(client) -> dict[str, list]:
    """Open SOCKETS_PER_USER[user] echo sockets for every user."""
    sockets = {}
    for user, count in SOCKETS_PER_USER.items():
        sockets[user] = [
            await client.ws_connect("/echo", headers=bearer(user)) for _ in range(count)
        ]
    return sockets


def close_frame(code: int, reason: bytes) -> bytes:
    """A close frame as a server sends it (unmasked, one fragment)."""
    payload = struct.pack("!H", code) + reason
    return bytes([0x88, len(payload)]) + payload


async def raw_websocket(port: int, headers: dict[str, str]):
    """A WebSocket handshake on a bare TCP socket: (status line, reader, writer).

    Nothing reads or answers on it unless the test does: a client that never reads.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [
        "GET /echo HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    async with asyncio.timeout(TIMEOUT):
        head = await reader.readuntil(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], reader, writer


async def until_connection_lost(ws) -> None:
    """Wait, without reading, until the client's TCP connection is gone."""
    async with asyncio.timeout(TIMEOUT):
        while ws.get_extra_info("peername") is not None:
            await asyncio.sleep(0.01)


async def echoes(ws, text: str) -> str:
    await ws.send_str(text)
    async with asyncio.timeout(TIMEOUT):
        return await ws.receive_str()


@pytest.mark.claim("就把这个键删掉")
@pytest.mark.claim("其他用户的连接照常回显")
@pytest.mark.claim("正在读的客户端读到关闭帧，`close_code` 是 4000")
@pytest.mark.parametrize("user", sorted(SOCKETS_PER_USER))
async def test_logout_closes_only_that_users_sockets(client, user):
    sockets = await open_sockets(client)
    readers = [asyncio.create_task(until_closed(ws)) for ws in sockets[user]]

    resp = await client.post("/logout", headers=bearer(user))
    body = await resp.text()
    assert resp.status == 200, body
    assert await resp.json() == {"user": user, "closed": SOCKETS_PER_USER[user]}, body
    # The handlers have finished before /logout answered.
    assert user not in client.server.app[WEBSOCKETS]
    async with asyncio.timeout(TIMEOUT):
        results = await asyncio.gather(*readers)
    assert results == [LOGGED_OUT] * len(readers), results
    assert user not in client.server.app[WEBSOCKETS]

    for other, others in sockets.items():
        if other != user:
            for number, ws in enumerate(others):
                text = f"{other} #{number}"
                assert await echoes(ws, text) == text
                assert not ws.closed
    assert sorted(client.server.app[WEBSOCKETS]) == sorted(
        u for u in SOCKETS_PER_USER if u != user
    )


async def test_logout_without_sockets_closes_nothing(client):
    resp = await client.post("/logout", headers=bearer("bob"))
    assert await resp.json() == {"user": "bob", "closed": 0}, await resp.text()


async def test_logging_out_twice_only_closes_new_sockets(client):
    first = await client.ws_connect("/echo", headers=bearer("alice"))
    reader = asyncio.create_task(until_closed(first))
    resp = await client.post("/logout", headers=bearer("alice"))
    assert (await resp.json())["closed"] == 1, await resp.text()
    async with asyncio.timeout(TIMEOUT):
        assert await reader == LOGGED_OUT

    second = await client.ws_connect("/echo", headers=bearer("alice"))
    assert await echoes(second, "again") == "again"
    reader = asyncio.create_task(until_closed(second))
    resp = await client.post("/logout", headers=bearer("alice"))
    assert (await resp.json())["closed"] == 1, await resp.text()
    async with asyncio.timeout(TIMEOUT):
        assert await reader == LOGGED_OUT


async def test_closing_a_socket_unregisters_it(client):
    ws = await client.ws_connect("/echo", headers=bearer("carol"))
    assert await echoes(ws, "hi") == "hi"
    assert len(client.server.app[WEBSOCKETS]["carol"]) == 1
    await ws.close()
    async with asyncio.timeout(TIMEOUT):
        while "carol" in client.server.app[WEBSOCKETS]:
            await asyncio.sleep(0.01)


async def test_binary_messages_are_not_echoed(client):
    ws = await client.ws_connect("/echo", headers=bearer("bob"))
    await ws.send_bytes(b"\x00")
    assert await echoes(ws, "text") == "text"
    await ws.close()


BAD_AUTHORIZATION = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {TOKENS['alice']}x"},
    {"Authorization": f"Basic {TOKENS['alice']}"},
    {"Authorization": TOKENS["alice"]},
    {"Authorization": "Bearer tökén"},
]


@pytest.mark.claim("客户端收到的只是一个普通的 401 响应")
@pytest.mark.claim("登记表里也没有新条目")
@pytest.mark.parametrize("headers", BAD_AUTHORIZATION, ids=repr)
async def test_unauthenticated_websocket_is_refused(client, headers):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/echo", headers=headers)
    assert refused.value.status == 401, refused.value
    assert client.server.app[WEBSOCKETS] == {}


@pytest.mark.parametrize("headers", BAD_AUTHORIZATION, ids=repr)
async def test_unauthenticated_logout_is_refused(client, headers):
    ws = await client.ws_connect("/echo", headers=bearer("alice"))
    resp = await client.post("/logout", headers=headers)
    body = await resp.text()
    assert resp.status == 401, body
    assert resp.headers["WWW-Authenticate"] == "Bearer", body
    assert await echoes(ws, "still here") == "still here"
    await ws.close()


async def raw_header(request: web.Request) -> web.Response:
    """The X-Raw header encoded back as the recipe encodes the token."""
    return web.Response(
        body=request.headers["X-Raw"].encode("utf-8", "surrogateescape")
    )


@pytest.mark.claim("能把客户端发来的任何字节原样还原")
async def test_surrogateescape_gives_back_the_bytes_sent(aiohttp_client):
    app = web.Application()
    app.router.add_get("/", raw_header)
    client = await aiohttp_client(app)
    sent = bytes(range(0x21, 0x7F)) + b"\xff\xfe\xc3\x28" + "令牌".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Raw: ")
    writer.write(sent + b"\r\n\r\n")
    async with asyncio.timeout(TIMEOUT):
        answer = await reader.read()
    writer.close()
    assert answer.split(b"\r\n\r\n", 1)[1] == sent, answer


async def test_a_token_that_is_not_ascii_works(aiohttp_client):
    """The token's own UTF-8 bytes, sent raw, open the socket."""
    client = await aiohttp_client(create_app({"dave": "令牌-tökén"}))
    headers = {"Authorization": "Bearer 令牌-tökén"}  # raw_websocket sends UTF-8
    status, _, writer = await raw_websocket(client.port, headers)
    writer.close()
    assert status == b"HTTP/1.1 101 Switching Protocols", status


async def test_bytes_that_are_not_utf8_get_401(client):
    """A raw handshake whose token is not UTF-8 is refused, not answered 101/500."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(
        b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Authorization: Bearer \xff\xfe\r\n\r\n"
    )
    async with asyncio.timeout(TIMEOUT):
        status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.startswith(b"HTTP/1.1 401 "), status_line


@pytest.mark.claim("仍然开着的连接都会收到 1001")
@pytest.mark.claim("关闭连接的方式和 `/logout` 一样")
async def test_shutdown_closes_remaining_sockets_with_1001(client):
    sockets = await open_sockets(client)
    _, silent, silent_writer = await raw_websocket(client.port, bearer("bob"))
    resp = await client.post("/logout", headers=bearer("carol"))
    assert (await resp.json())["closed"] == 1, await resp.text()
    remaining = sockets["alice"] + sockets["bob"]
    readers = asyncio.gather(*map(until_closed, remaining))

    # TestServer.close() is runner.cleanup(), which run_app calls on Ctrl+C.
    started = time.monotonic()
    await client.server.close()
    took = time.monotonic() - started

    async with asyncio.timeout(TIMEOUT):
        results = await readers
        silent_got = await silent.read()  # until the server closes TCP
    silent_writer.close()
    assert results == [1001] * len(remaining), results
    assert silent_got == close_frame(1001, b"server shutdown"), silent_got
    assert took < PROMPTLY, took  # the silent client was not waited for
    assert client.server.app[WEBSOCKETS] == {}


async def test_client_script_sees_only_alice_closed(aiohttp_client, capsys):
    demo = await aiohttp_client(create_app())
    await client_script.main(str(demo.make_url("")))
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "POST /logout -> 200 {'user': 'alice', 'closed': 2}",
        f"alice 的连接已关闭，关闭码 {LOGGED_OUT}",
        f"alice 的连接已关闭，关闭码 {LOGGED_OUT}",
        "bob 收到回声：bob 还在吗？",
    ], out


@pytest.mark.claim("回 `101 Switching Protocols`，这条 HTTP 连接从此成为 WebSocket")
async def test_prepare_answers_101(client):
    status, _, writer = await raw_websocket(client.port, bearer("alice"))
    writer.close()
    assert status == b"HTTP/1.1 101 Switching Protocols", status


@pytest.mark.claim("aiohttp 不看 `Origin`，来源是别的网站的握手照样得到 101")
async def test_aiohttp_accepts_any_origin(client):
    headers = {**bearer("alice"), "Origin": "https://another-site.example"}
    status, _, writer = await raw_websocket(client.port, headers)
    writer.close()
    assert status == b"HTTP/1.1 101 Switching Protocols", status


@pytest.mark.claim("直接断开 TCP 连接，**不等客户端回应关闭帧**")
@pytest.mark.claim("`/logout` 都立刻返回")
async def test_logout_does_not_wait_for_a_client_that_never_answers(client):
    """A bare socket that never reads and never sends its own close frame."""
    status, silent, writer = await raw_websocket(client.port, bearer("alice"))
    assert status == b"HTTP/1.1 101 Switching Protocols", status

    started = time.monotonic()
    resp = await client.post("/logout", headers=bearer("alice"))
    took = time.monotonic() - started
    assert await resp.json() == {"user": "alice", "closed": 1}, await resp.text()
    assert took < PROMPTLY, took

    # All the server ever sends: its close frame, then the end of the TCP stream
    # (read() returns at EOF; a server waiting for our reply would hold it open).
    async with asyncio.timeout(TIMEOUT):
        received = await silent.read()
    writer.close()
    assert received == close_frame(LOGGED_OUT, b"logged out"), received


@pytest.mark.claim("仍会读到 4000 和 `logged out`")
@pytest.mark.claim("`close_code` 因此是 1006")
async def test_a_client_reading_late_sees_4000_then_ends_with_1006(client):
    reading = await client.ws_connect("/echo", headers=bearer("alice"))
    late = await client.ws_connect("/echo", headers=bearer("alice"))
    reader = asyncio.create_task(until_closed(reading))

    started = time.monotonic()
    resp = await client.post("/logout", headers=bearer("alice"))
    took = time.monotonic() - started
    assert await resp.json() == {"user": "alice", "closed": 2}, await resp.text()
    assert took < PROMPTLY, took
    async with asyncio.timeout(TIMEOUT):
        assert await reader == LOGGED_OUT

    await until_connection_lost(late)  # the server has dropped it; now read
    msg = await late.receive()
    assert (msg.type, msg.data, msg.extra) == (
        aiohttp.WSMsgType.CLOSE,
        LOGGED_OUT,
        "logged out",
    ), msg
    assert late.close_code == 1006, late.exception()
    # aiohttp.ClientConnectionResetError from 3.10.6 on, a subclass of this
    assert isinstance(late.exception(), ConnectionResetError), late.exception()


@pytest.mark.claim("会抛 `TypeError`")
def test_compare_digest_refuses_non_ascii_str():
    with pytest.raises(TypeError):
        hmac.compare_digest("tökén", "token")
    assert hmac.compare_digest("tökén".encode(), "tökén".encode())


async def unawaited_echo(request: web.Request) -> web.WebSocketResponse:
    """The old FAQ's echo: send_str() without await, then a marker that is awaited."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    msg = await ws.receive()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ws.send_str(msg.data)  # the old FAQ's line
        gc.collect()
    await ws.send_str("marker")
    # gc.collect() may also find garbage an earlier test left (an unclosed
    # transport's ResourceWarning): report only what the unawaited call caused.
    caught = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    await ws.send_str(" | ".join(f"{w.category.__name__}: {w.message}" for w in caught))
    await ws.close()
    return ws


@pytest.mark.claim("不 `await` 就什么也不发送")
@pytest.mark.claim("的例子今天什么也不会发送", page="websocket_pubsub")
async def test_send_str_without_await_sends_nothing_and_warns(aiohttp_client):
    app = web.Application()
    app.router.add_get("/", unawaited_echo)
    client = await aiohttp_client(app)
    async with client.ws_connect("/") as ws:
        await ws.send_str("echo me")
        async with asyncio.timeout(TIMEOUT):
            first, warned = await ws.receive_str(), await ws.receive_str()
    assert first == "marker"  # the echo was never sent
    assert warned.startswith("RuntimeWarning: coroutine "), warned
    assert warned.endswith("was never awaited"), warned


@pytest.mark.claim("传入它会得到 `DeprecationWarning`")
async def test_application_loop_argument_is_deprecated():
    with pytest.warns(DeprecationWarning, match="loop argument is deprecated"):
        web.Application(loop=asyncio.get_running_loop())


@pytest.mark.claim("对这样的赋值发出 `NotAppKeyWarning`")
@pytest.mark.claim("对这样的赋值发出 `NotAppKeyWarning`", page="websocket_pubsub")
def test_string_keys_warn():
    app = web.Application()
    with pytest.warns(web.NotAppKeyWarning):
        app["websockets"] = {}
