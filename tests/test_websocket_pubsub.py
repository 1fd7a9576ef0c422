"""websocket_pubsub: one reader of the socket, one task forwarding Redis messages."""

import asyncio

import pytest
import redis.asyncio as redis

from websocket_pubsub import client, concurrent_receive
from websocket_pubsub.app import CHANNEL, create_app

TIMEOUT = 5


@pytest.fixture
async def publisher(redis_url):
    """A Redis client of the test's own, to publish and to ask PUBSUB NUMSUB."""
    conn = redis.from_url(redis_url, decode_responses=True)
    yield conn
    await conn.aclose()


@pytest.fixture
async def client_session(aiohttp_client, redis_url):
    """The recipe's app on 127.0.0.1, talking to the test's redis-server."""
    return await aiohttp_client(create_app(redis_url))


async def subscribers(publisher) -> int:
    [(_, count)] = await publisher.pubsub_numsub(CHANNEL)
    return count


async def wait_for_subscribers(publisher, expected: int) -> None:
    async with asyncio.timeout(TIMEOUT):
        while await subscribers(publisher) != expected:
            await asyncio.sleep(0.02)


async def connect(client_session):
    """Open /ws and read the greeting the server sends once it has subscribed."""
    ws = await client_session.ws_connect("/ws")
    async with asyncio.timeout(TIMEOUT):
        assert await ws.receive_str() == f"已订阅 {CHANNEL}"
    return ws


async def test_published_message_reaches_every_websocket(client_session, publisher):
    sockets = [await connect(client_session) for _ in range(3)]
    assert await subscribers(publisher) == 3
    assert await publisher.publish(CHANNEL, "hello") == 3
    async with asyncio.timeout(TIMEOUT):
        for ws in sockets:
            assert await ws.receive_str() == "hello"
    for ws in sockets:
        await ws.close()


async def test_client_messages_are_answered(client_session, publisher):
    async with await connect(client_session) as ws:
        await ws.send_str("ping")
        async with asyncio.timeout(TIMEOUT):
            assert await ws.receive_str() == "收到: ping"


async def test_leaving_unsubscribes(client_session, publisher):
    ws = await connect(client_session)
    assert await subscribers(publisher) == 1
    await ws.close()
    await wait_for_subscribers(publisher, 0)
    forwarders = [t for t in asyncio.all_tasks() if "forward" in repr(t.get_coro())]
    assert forwarders == [], forwarders


async def test_binary_messages_are_ignored(client_session, publisher):
    async with await connect(client_session) as ws:
        await ws.send_bytes(b"\x00\x01")
        await ws.send_str("after")
        async with asyncio.timeout(TIMEOUT):
            assert await ws.receive_str() == "收到: after"


async def test_client_script_prints_both_replies(client_session, redis_url, capsys):
    url = str(client_session.make_url("/ws"))
    await client.main(url, redis_url)
    out = capsys.readouterr().out
    assert out == f"已订阅 {CHANNEL}\n来自 Redis 的消息\n收到: 你好\n", out


async def test_second_concurrent_receive_raises(capsys):
    await concurrent_receive.main()
    out = capsys.readouterr().out
    assert out == "RuntimeError: Concurrent call to receive() is not allowed\n", out
