"""websocket_close: /logout closes one user's sockets, shutdown closes the rest."""

import asyncio

import aiohttp
import pytest

from websocket_close import client as client_script
from websocket_close.app import LOGGED_OUT, WEBSOCKETS, create_app

TIMEOUT = 5
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


async def echoes(ws, text: str) -> str:
    await ws.send_str(text)
    async with asyncio.timeout(TIMEOUT):
        return await ws.receive_str()


@pytest.mark.parametrize("user", sorted(SOCKETS_PER_USER))
async def test_logout_closes_only_that_users_sockets(client, user):
    sockets = await open_sockets(client)
    readers = [asyncio.create_task(until_closed(ws)) for ws in sockets[user]]

    resp = await client.post("/logout", headers=bearer(user))
    body = await resp.text()
    assert resp.status == 200, body
    assert await resp.json() == {"user": user, "closed": SOCKETS_PER_USER[user]}, body
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


async def test_shutdown_closes_remaining_sockets_with_1001(client):
    sockets = await open_sockets(client)
    resp = await client.post("/logout", headers=bearer("carol"))
    assert (await resp.json())["closed"] == 1, await resp.text()
    remaining = sockets["alice"] + sockets["bob"]
    readers = asyncio.gather(*map(until_closed, remaining))

    await client.server.close()  # runs on_shutdown, as Ctrl+C does for run_app

    async with asyncio.timeout(TIMEOUT):
        results = await readers
    assert results == [1001] * len(remaining), results
    assert client.server.app[WEBSOCKETS] == {}


async def test_client_script_sees_only_alice_closed(aiohttp_client, capsys):
    demo = await aiohttp_client(create_app())
    await client_script.main(str(demo.make_url("")))
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "POST /logout -> 200 {'user': 'alice', 'closed': 2}",
        f"alice 的连接已关闭，close code = {LOGGED_OUT}",
        f"alice 的连接已关闭，close code = {LOGGED_OUT}",
        "bob 收到回声：bob 还在吗？",
    ], out
