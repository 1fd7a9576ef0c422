"""websocket_pubsub: one reader of the socket, one task forwarding Redis messages."""

import asyncio
import contextlib
import signal
from pathlib import Path

import pytest
import redis.asyncio as redis
from aiohttp import WSCloseCode, WSMsgType

from servers import free_port, listeners_opened_while, require_program, running
from websocket_pubsub import client, concurrent_receive
from websocket_pubsub.app import CHANNEL, create_app, first_to_finish

TIMEOUT = 5
OUR_TASKS = ("answer", "forward")


class RestartableRedis:
    """A redis-server on one loopback port that a test can stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._stack = contextlib.ExitStack()

    def start(self) -> None:
        argv = [require_program("redis-server"), "--port", str(self.port)]
        argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.folder)]
        server = running(
            argv, port=self.port, cwd=self.folder, stop_signal=signal.SIGTERM
        )
        self._stack.enter_context(server)

    def stop(self) -> None:
        self._stack.close()


@pytest.fixture
def restartable_redis(tmp_path):
    """A real redis-server the test may stop and restart on the same port."""
    server = RestartableRedis(tmp_path)
    server.start()
    yield server
    server.stop()


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


@pytest.fixture
async def fragile_session(aiohttp_client, restartable_redis):
    """The recipe's app, talking to a redis-server the test will stop."""
    return await aiohttp_client(create_app(restartable_redis.url))


async def subscribers(publisher) -> int:
    [(_, count)] = await publisher.pubsub_numsub(CHANNEL)
    return count


async def wait_for_subscribers(publisher, expected: int) -> None:
    async with asyncio.timeout(TIMEOUT):
        while await subscribers(publisher) != expected:
            await asyncio.sleep(0.02)


def our_tasks() -> list[asyncio.Task]:
    """Tasks the recipe started that are still alive."""
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_coro().__qualname__ in OUR_TASKS and not task.done()
    ]


async def wait_for_no_tasks() -> None:
    async with asyncio.timeout(TIMEOUT):
        while our_tasks():
            await asyncio.sleep(0.02)


async def connect(session):
    """Open /ws and read the greeting the server sends once it has subscribed."""
    ws = await session.ws_connect("/ws")
    async with asyncio.timeout(TIMEOUT):
        assert await ws.receive_str() == f"已订阅 {CHANNEL}"
    return ws


async def assert_closed_try_again_later(ws) -> None:
    """The server sent a close frame with 1013 and finished the close handshake."""
    async with asyncio.timeout(TIMEOUT):
        msg = await ws.receive()
        assert msg.type == WSMsgType.CLOSE, msg
        assert (msg.data, msg.extra) == (1013, "redis unavailable"), msg
        assert (await ws.receive()).type == WSMsgType.CLOSED
    assert ws.close_code == WSCloseCode.TRY_AGAIN_LATER, ws.exception()


async def everyone_gets(publisher, sockets, text: str) -> None:
    """Publish ``text``: Redis counts one receiver per socket, and each one gets it."""
    assert await publisher.publish(CHANNEL, text) == len(sockets)
    async with asyncio.timeout(TIMEOUT):
        for ws in sockets:
            assert await ws.receive_str() == text


async def test_published_message_reaches_every_websocket(client_session, publisher):
    sockets = [await connect(client_session) for _ in range(3)]
    assert await subscribers(publisher) == 3
    await everyone_gets(publisher, sockets, "hello")
    for ws in sockets:
        await ws.close()


async def test_client_messages_are_answered(client_session, publisher):
    async with await connect(client_session) as ws:
        await ws.send_str("ping")
        async with asyncio.timeout(TIMEOUT):
            assert await ws.receive_str() == "收到：ping"


async def test_leaving_unsubscribes_and_ends_the_tasks(client_session, publisher):
    ws = await connect(client_session)
    assert await subscribers(publisher) == 1
    assert len(our_tasks()) == 2, our_tasks()
    await ws.close()
    assert ws.close_code == WSCloseCode.OK
    await wait_for_subscribers(publisher, 0)
    await wait_for_no_tasks()


async def test_binary_messages_are_ignored(client_session, publisher):
    async with await connect(client_session) as ws:
        await ws.send_bytes(b"\x00\x01")
        await ws.send_str("after")
        async with asyncio.timeout(TIMEOUT):
            assert await ws.receive_str() == "收到：after"


async def test_full_pool_turns_new_sockets_away(aiohttp_client, redis_url, publisher):
    session = await aiohttp_client(create_app(redis_url, max_sockets=2))
    sockets = [await connect(session) for _ in range(2)]
    turned_away = await session.ws_connect("/ws")
    await assert_closed_try_again_later(turned_away)
    await everyone_gets(publisher, sockets, "still here")
    for ws in sockets:
        await ws.close()


async def test_redis_stopping_closes_sockets_with_1013(
    fragile_session, restartable_redis
):
    sockets = [await connect(fragile_session) for _ in range(3)]
    await asyncio.to_thread(restartable_redis.stop)
    for ws in sockets:
        await assert_closed_try_again_later(ws)
    await wait_for_no_tasks()


async def test_other_routes_answer_while_redis_is_down(
    fragile_session, restartable_redis
):
    ws = await connect(fragile_session)
    await asyncio.to_thread(restartable_redis.stop)
    await assert_closed_try_again_later(ws)
    resp = await fragile_session.get("/")
    assert (resp.status, await resp.text()) == (200, "ok\n")


async def test_new_socket_while_redis_is_down_is_closed_with_1013(
    fragile_session, restartable_redis
):
    await asyncio.to_thread(restartable_redis.stop)
    ws = await fragile_session.ws_connect("/ws")
    await assert_closed_try_again_later(ws)
    await wait_for_no_tasks()


async def test_new_subscribers_work_when_redis_is_back(
    aiohttp_client, restartable_redis
):
    # A pool of one: the new socket gets a connection only if the old one was returned.
    session = await aiohttp_client(create_app(restartable_redis.url, max_sockets=1))
    old = await connect(session)
    await asyncio.to_thread(restartable_redis.stop)
    await assert_closed_try_again_later(old)
    await asyncio.to_thread(restartable_redis.start)
    publisher = redis.from_url(restartable_redis.url, decode_responses=True)
    async with await connect(session) as ws:
        await everyone_gets(publisher, [ws], "back")
    await publisher.aclose()


async def test_client_script_prints_both_replies(client_session, redis_url, capsys):
    url = str(client_session.make_url("/ws"))
    await client.main(url, redis_url)
    out = capsys.readouterr().out
    assert out == f"已订阅 {CHANNEL}\n来自 Redis 的消息\n收到：你好\n", out


async def test_second_concurrent_receive_raises(capsys):
    """Two copies at once, each on a free loopback port of its own."""
    seen = await listeners_opened_while(
        asyncio.gather(concurrent_receive.main(), concurrent_receive.main()), TIMEOUT
    )
    out = capsys.readouterr().out
    assert out == "RuntimeError: Concurrent call to receive() is not allowed\n" * 2, out
    assert {host for host, _ in seen} == {"127.0.0.1"}, seen


async def test_first_to_finish_cancels_the_rest_and_waits_for_them():
    events = []

    async def quick() -> None:
        events.append("quick")

    async def slow() -> None:
        try:
            await asyncio.sleep(TIMEOUT)
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # cleaning up takes a moment
            events.append("slow cancelled")
            raise

    await first_to_finish(quick(), slow())
    assert events == ["quick", "slow cancelled"]


async def test_first_to_finish_raises_what_the_first_one_raised():
    async def failing() -> None:
        raise redis.ConnectionError("gone")

    with pytest.raises(redis.ConnectionError, match="gone"):
        await first_to_finish(failing(), asyncio.sleep(TIMEOUT))
