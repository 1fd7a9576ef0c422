"""websocket_pubsub: one reader of the socket, one task forwarding Redis messages."""

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import struct
import time
from pathlib import Path

import pytest
import redis.asyncio as redis
from aiohttp import WSCloseCode, WSMsgType, web
from redis import exceptions as redis_exceptions

import websocket_pubsub.app as recipe
from servers import free_port, listeners_opened_while, require_program, running
from websocket_pubsub import client, concurrent_receive
from websocket_pubsub.app import CHANNEL, create_app, first_to_finish
from websocket_pubsub.app import forward as recipe_forward

TIMEOUT = 5
OUR_TASKS = ("answer", "forward", "forward_that_closes")
# How long a client stays silent after the server's close frame, to see whether
# the server waits for its answer (it would drop the connection in milliseconds).
SILENCE = 0.2


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


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory):
    """One real redis-server for the tests of this module that leave it running."""
    server = RestartableRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_url(shared_redis):
    """The shared redis-server's URL; after the test, no subscription is left.

    (Overrides the conftest fixture of the same name, which starts a server per
    test.) Each test then starts from a channel nobody listens on.
    """
    yield shared_redis.url
    conn = redis.from_url(shared_redis.url, decode_responses=True)
    try:
        await wait_for_subscribers(conn, 0)
        await conn.flushall()
    finally:
        await conn.aclose()


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


@contextlib.asynccontextmanager
async def connected(session):
    """connect() for `async with`: closes the socket on the way out."""
    ws = await connect(session)
    try:
        yield ws
    finally:
        await ws.close()


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


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, payload) of one short unmasked frame sent by the server."""
    head = await reader.readexactly(2)
    assert head[1] < 126, head  # short, unmasked: the length is in the 2nd byte
    return head[0] & 0x0F, await reader.readexactly(head[1])


def masked_close_frame(code: int) -> bytes:
    """A client's close frame: clients must mask what they send."""
    mask = os.urandom(4)
    payload = struct.pack("!H", code)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x88, 0x80 | len(payload)]) + mask + masked


async def raw_websocket(port: int):
    """/ws opened on a bare TCP socket, greeting read: (reader, writer).

    Nothing reads or answers on it unless the test does.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    async with asyncio.timeout(TIMEOUT):
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert await read_frame(reader) == (0x1, f"已订阅 {CHANNEL}".encode())
    return reader, writer


CLOSE_1013 = (0x8, struct.pack("!H", 1013) + b"redis unavailable")


async def forward_that_closes(pubsub, ws) -> None:
    """forward() closing the socket itself, while answer() is still reading."""
    try:
        await recipe_forward(pubsub, ws)
    except redis.ConnectionError:
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"redis unavailable")


@pytest.fixture
def closing_in_forward(monkeypatch) -> None:
    """The recipe's handler calls forward_that_closes() in place of forward()."""
    monkeypatch.setattr(recipe, "forward", forward_that_closes)


async def until_connection_lost(ws) -> None:
    """Wait, without reading, until the client's TCP connection is gone."""
    async with asyncio.timeout(TIMEOUT):
        while ws.get_extra_info("peername") is not None:
            await asyncio.sleep(0.01)


async def test_published_message_reaches_every_websocket(client_session, publisher):
    sockets = [await connect(client_session) for _ in range(3)]
    assert await subscribers(publisher) == 3
    await everyone_gets(publisher, sockets, "hello")
    for ws in sockets:
        await ws.close()


async def test_client_messages_are_answered(client_session, publisher):
    async with connected(client_session) as ws:
        await ws.send_str("ping")
        async with asyncio.timeout(TIMEOUT):
            assert await ws.receive_str() == "收到：ping"


@pytest.mark.claim("频道的订阅数回到 0")
@pytest.mark.claim("不会留下孤儿任务")
async def test_leaving_unsubscribes_and_ends_the_tasks(client_session, publisher):
    ws = await connect(client_session)
    assert await subscribers(publisher) == 1
    assert len(our_tasks()) == 2, our_tasks()
    await ws.close()
    assert ws.close_code == WSCloseCode.OK
    await wait_for_subscribers(publisher, 0)
    await wait_for_no_tasks()


async def test_binary_messages_are_ignored(client_session, publisher):
    async with connected(client_session) as ws:
        await ws.send_bytes(b"\x00\x01")
        await ws.send_str("after")
        async with asyncio.timeout(TIMEOUT):
            assert await ws.receive_str() == "收到：after"


@pytest.mark.claim("于是被 1013 关闭")
async def test_full_pool_turns_new_sockets_away(aiohttp_client, redis_url, publisher):
    session = await aiohttp_client(create_app(redis_url, max_sockets=2))
    sockets = [await connect(session) for _ in range(2)]
    turned_away = await session.ws_connect("/ws")
    await assert_closed_try_again_later(turned_away)
    await everyone_gets(publisher, sockets, "still here")
    for ws in sockets:
        await ws.close()


@pytest.mark.claim("Redis 进程退出后，`pubsub.listen()` 抛出 `redis.ConnectionError`")
@pytest.mark.claim("处理器用关闭码 **1013 Try Again Later** 关闭 WebSocket")
@pytest.mark.claim(
    "已连接的 WebSocket 收到关闭码 1013、原因 `redis unavailable` 的关闭帧"
)
@pytest.mark.claim("每个连接的两个任务都结束")
async def test_redis_stopping_closes_sockets_with_1013(
    fragile_session, restartable_redis
):
    sockets = [await connect(fragile_session) for _ in range(3)]
    await asyncio.to_thread(restartable_redis.stop)
    for ws in sockets:
        await assert_closed_try_again_later(ws)
    await wait_for_no_tasks()


@pytest.mark.claim("其他路由照常应答：`GET /` 仍然返回 `ok`")
@pytest.mark.claim("用来确认 Redis 出问题时其他路由照常工作")
async def test_other_routes_answer_while_redis_is_down(
    fragile_session, restartable_redis
):
    ws = await connect(fragile_session)
    await asyncio.to_thread(restartable_redis.stop)
    await assert_closed_try_again_later(ws)
    resp = await fragile_session.get("/")
    assert (resp.status, await resp.text()) == (200, "ok\n")


@pytest.mark.claim("升级成功后订阅失败，立刻被 1013 关闭")
async def test_new_socket_while_redis_is_down_is_closed_with_1013(
    fragile_session, restartable_redis
):
    await asyncio.to_thread(restartable_redis.stop)
    ws = await fragile_session.ws_connect("/ws")
    await assert_closed_try_again_later(ws)
    await wait_for_no_tasks()


@pytest.mark.claim("连接池里的连接也还回去了")
@pytest.mark.claim("新的 WebSocket 正常订阅、正常收消息，服务器不用重启")
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
    async with connected(session) as ws:
        await everyone_gets(publisher, [ws], "back")
    await publisher.aclose()


async def many_senders(request: web.Request) -> web.WebSocketResponse:
    """Four tasks send 50 large messages each on one socket, at the same time."""
    compress = int(request.query["compress"])
    ws = web.WebSocketResponse(compress=compress)
    await ws.prepare(request)

    async def send(task: int) -> None:
        for n in range(50):
            await ws.send_str(f"{task}:{n}:" + str(task) * 65536)

    await asyncio.gather(*(send(task) for task in range(4)))
    await ws.close()
    return ws


@pytest.mark.claim("发送可以来自多个任务：每次发送都把一整帧写进连接，压缩帧另有锁保护")
@pytest.mark.claim("别的任务可以对同一个 `ws` 调用 `await ws.send_str(...)`")
@pytest.mark.parametrize("compress", [0, 15], ids=["plain", "compressed"])
async def test_several_tasks_send_on_one_socket(aiohttp_client, compress):
    app = web.Application()
    app.router.add_get("/ws", many_senders)
    client = await aiohttp_client(app)
    got: dict[int, list[int]] = {task: [] for task in range(4)}
    async with client.ws_connect(f"/ws?compress={compress}") as ws:
        async with asyncio.timeout(TIMEOUT):
            async for msg in ws:
                task, n, body = msg.data.split(":")
                assert body == task * 65536, (task, n, len(body))  # whole, unmixed
                got[int(task)].append(int(n))
    assert got == {task: list(range(50)) for task in range(4)}, got


async def test_client_script_prints_both_replies(client_session, redis_url, capsys):
    url = str(client_session.make_url("/ws"))
    await client.main(url, redis_url)
    out = capsys.readouterr().out
    assert out == f"已订阅 {CHANNEL}\n来自 Redis 的消息\n收到：你好\n", out


@pytest.mark.claim("第二个读的任务会得到 `RuntimeError`")
async def test_second_concurrent_receive_raises(capsys):
    """Two copies at once, each on a free loopback port of its own."""
    seen = await listeners_opened_while(
        asyncio.gather(concurrent_receive.main(), concurrent_receive.main()), TIMEOUT
    )
    out = capsys.readouterr().out
    assert out == "RuntimeError: Concurrent call to receive() is not allowed\n" * 2, out
    assert {host for host, _ in seen} == {"127.0.0.1"}, seen


@pytest.mark.claim("等两个任务都真正结束才返回")
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


@pytest.mark.claim("在订阅生效之前发布的消息，这个连接收不到")
@pytest.mark.claim("在服务器为新连接重新订阅之前发布的消息，这个连接收不到")
async def test_messages_published_before_subscribing_are_lost(
    client_session, publisher
):
    assert await publisher.publish(CHANNEL, "too early") == 0  # nobody subscribed
    async with connected(client_session) as ws:
        await everyone_gets(publisher, [ws], "after the greeting")


@pytest.mark.claim("它的 `timeout` 默认是 0，没有消息时立即返回 `None`")
@pytest.mark.claim("要传 `timeout=None`")
async def test_get_message_returns_at_once_unless_timeout_is_none(publisher):
    default = inspect.signature(redis.client.PubSub.get_message).parameters["timeout"]
    assert default.default == 0, default
    async with publisher.pubsub() as pubsub:
        await pubsub.subscribe(CHANNEL)
        async with asyncio.timeout(TIMEOUT):
            confirmation = await pubsub.get_message(timeout=None)
        assert confirmation["type"] == "subscribe", confirmation

        started = time.monotonic()
        assert await pubsub.get_message() is None
        assert time.monotonic() - started < SILENCE

        waiting = asyncio.create_task(pubsub.get_message(timeout=None))
        await asyncio.sleep(0)
        assert not waiting.done()
        await publisher.publish(CHANNEL, "now")
        async with asyncio.timeout(TIMEOUT):
            assert (await waiting)["data"] == "now"


@pytest.mark.claim("关闭握手正常完成")
@pytest.mark.claim("等到客户端回的关闭帧才断开 TCP 连接")
async def test_the_handler_waits_for_the_clients_close_frame(
    fragile_session, restartable_redis
):
    reader, writer = await raw_websocket(fragile_session.port)
    await asyncio.to_thread(restartable_redis.stop)
    async with asyncio.timeout(TIMEOUT):
        assert await read_frame(reader) == CLOSE_1013
    # The server keeps the connection open for our answer ...
    with pytest.raises(asyncio.TimeoutError):  # TimeoutError's alias from 3.11 on
        async with asyncio.timeout(SILENCE):
            await reader.read(1)
    # ... and closes it once the answer is in.
    writer.write(masked_close_frame(1013))
    async with asyncio.timeout(TIMEOUT):
        assert await reader.read() == b""
    writer.close()
    await wait_for_no_tasks()


@pytest.mark.claim("随即断开 TCP 连接，不等客户端回应")
async def test_closing_in_forward_does_not_wait_for_the_client(
    closing_in_forward, fragile_session, restartable_redis
):
    reader, writer = await raw_websocket(fragile_session.port)
    await asyncio.to_thread(restartable_redis.stop)
    async with asyncio.timeout(TIMEOUT):
        assert await read_frame(reader) == CLOSE_1013
        assert await reader.read() == b""  # dropped, though we never answered
    writer.close()
    await wait_for_no_tasks()


async def late_and_reading_clients(session, restartable_redis):
    """Two sockets: one reads all along, the other only after the close frame."""
    reading, late = await connect(session), await connect(session)
    reader = asyncio.create_task(reading.receive())
    await asyncio.to_thread(restartable_redis.stop)
    async with asyncio.timeout(TIMEOUT):
        msg = await reader
    assert (msg.type, msg.data, msg.extra) == (
        WSMsgType.CLOSE,
        1013,
        "redis unavailable",
    ), msg
    assert reading.close_code == WSCloseCode.TRY_AGAIN_LATER, reading.exception()
    return late


@pytest.mark.claim("两种写法下，正在读的客户端都读到 1013")
@pytest.mark.claim("回应后 `close_code` 是 1013")
async def test_a_client_reading_late_still_gets_1013(
    fragile_session, restartable_redis
):
    late = await late_and_reading_clients(fragile_session, restartable_redis)
    await asyncio.sleep(SILENCE)  # the late client reads only now
    assert late.get_extra_info("peername") is not None  # the server still waits
    await assert_closed_try_again_later(late)


@pytest.mark.claim("两种写法下，正在读的客户端都读到 1013")
@pytest.mark.claim("它的回应写不出去，`close_code` 是 1006")
async def test_closing_in_forward_leaves_a_late_reader_with_1006(
    closing_in_forward, fragile_session, restartable_redis
):
    late = await late_and_reading_clients(fragile_session, restartable_redis)
    await until_connection_lost(late)  # dropped before it read anything
    msg = await late.receive()
    assert (msg.type, msg.data, msg.extra) == (
        WSMsgType.CLOSE,
        1013,
        "redis unavailable",
    ), msg
    assert late.close_code == WSCloseCode.ABNORMAL_CLOSURE, late.exception()
    await wait_for_no_tasks()


@pytest.mark.claim("redis-py 的连接池默认最多 100 条连接")
@pytest.mark.claim("第 101 个 WebSocket 订阅时得到 `MaxConnectionsError`")
@pytest.mark.claim("就是 `redis.exceptions.ConnectionError`")
async def test_a_default_pool_refuses_the_101st_subscription(redis_url):
    """What create_app() would meet without max_connections=."""
    conn = redis.from_url(redis_url, decode_responses=True)
    assert conn.connection_pool.max_connections == 100
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(100):
            pubsub = await stack.enter_async_context(conn.pubsub())
            await pubsub.subscribe(CHANNEL)
        extra = await stack.enter_async_context(conn.pubsub())
        with pytest.raises(redis.ConnectionError) as refused:
            await extra.subscribe(CHANNEL)
    assert type(refused.value) is redis_exceptions.MaxConnectionsError
    assert redis.ConnectionError is redis_exceptions.ConnectionError
    await conn.aclose()


def sockets_of_this_process() -> list[tuple[tuple, tuple]]:
    """(local, peer) address of every connected TCP socket this process holds."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                with socket.socket(fileno=os.dup(int(fd))) as sock:
                    if sock.family in (socket.AF_INET, socket.AF_INET6):
                        found.append((sock.getsockname(), sock.getpeername()))
    return found


@pytest.mark.claim("每个连接在服务器进程里占两个描述符（WebSocket 一个，Redis 一个）")
@pytest.mark.claim("Redis 那边再占一个")
async def test_each_websocket_costs_two_descriptors_and_a_redis_client(
    client_session, publisher, shared_redis
):
    def count() -> tuple[int, int]:
        sockets = sockets_of_this_process()
        accepted = sum(1 for local, _ in sockets if local[1] == client_session.port)
        to_redis = sum(1 for _, peer in sockets if peer[1] == shared_redis.port)
        return accepted, to_redis

    async def redis_clients() -> int:
        return (await publisher.info("clients"))["connected_clients"]

    clients_before = await redis_clients()  # also opens the publisher's connection
    before = count()
    sockets = [await connect(client_session) for _ in range(5)]
    after = count()
    clients_after = await redis_clients()
    assert (after[0] - before[0], after[1] - before[1]) == (5, 5), (before, after)
    assert clients_after - clients_before == 5
    for ws in sockets:
        await ws.close()


@pytest.mark.claim("aiohttp 3.14.5 里读取它会发出 `DeprecationWarning`")
def test_app_loop_is_deprecated():
    with pytest.warns(DeprecationWarning, match="loop property is deprecated"):
        web.Application().loop  # noqa: B018


FORWARDERS = web.AppKey("forwarders", list[asyncio.Task])


async def old_style_handler(request: web.Request) -> web.WebSocketResponse:
    """The old FAQ's shape: a forwarding task, only cancelled in ``finally``."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    pubsub = request.app[recipe.REDIS].pubsub()
    await pubsub.subscribe(CHANNEL)
    await ws.send_str(f"已订阅 {CHANNEL}")
    task = asyncio.create_task(recipe_forward(pubsub, ws))
    request.app[FORWARDERS].append(task)
    try:
        await recipe.answer(ws)
    finally:
        task.cancel()
        await pubsub.aclose()
    return ws


@pytest.mark.claim("转发任务因异常结束后，处理器还在读，WebSocket 一直开着")
@pytest.mark.claim("也收不到该重连的关闭码")
async def test_the_old_shape_keeps_a_socket_open_that_gets_nothing(
    aiohttp_client, restartable_redis
):
    app = create_app(restartable_redis.url)
    app[FORWARDERS] = []
    app.router.add_get("/old", old_style_handler)
    session = await aiohttp_client(app)
    ws = await session.ws_connect("/old")
    async with asyncio.timeout(TIMEOUT):
        assert await ws.receive_str() == f"已订阅 {CHANNEL}"
        await asyncio.to_thread(restartable_redis.stop)
        [forwarder] = app[FORWARDERS]
        with pytest.raises(redis.ConnectionError):
            await forwarder  # the forwarding task has died ...
        await ws.send_str("还在吗")
        assert await ws.receive_str() == "收到：还在吗"  # ... the handler still reads
    assert not ws.closed and ws.close_code is None
    await ws.close()
