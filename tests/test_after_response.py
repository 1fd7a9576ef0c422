"""after_response: the client has the whole response before the follow-up work ends,
and shutting the server down neither loses nor leaks that work."""

import asyncio
import contextlib
import os

import aiohttp
import pytest
from aiohttp import web

from after_response import app, background, with_aiojobs

TIMEOUT = 5
ALL = [app, background, with_aiojobs]
BACKGROUND = [background, with_aiojobs]


def name(module) -> str:
    return module.__name__.rpartition(".")[2]


class SlowNotify:
    """A notify() that waits for the test's go-ahead and records what happened."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.events: list[str] = []

    async def __call__(self, order_id: str) -> None:
        self.tasks.append(asyncio.current_task())
        self.events.append(f"start {order_id}")
        try:
            await self.go.wait()
        except asyncio.CancelledError:
            self.events.append(f"cancelled {order_id}")
            raise
        self.events.append(f"done {order_id}")

    async def wait_for(self, event: str) -> None:
        async with asyncio.timeout(TIMEOUT):
            while event not in self.events:
                await asyncio.sleep(0.01)

    def pending(self) -> list[asyncio.Task]:
        """Its tasks that the event loop still runs."""
        return [t for t in asyncio.all_tasks() if t in self.tasks and not t.done()]


@pytest.fixture
def notify():
    """A notify() the test releases by hand."""
    return SlowNotify()


@pytest.fixture
async def serve():
    """Serve an app on 127.0.0.1 as web.run_app does; clean up what is left."""
    runners: list[web.AppRunner] = []

    async def start(application: web.Application, **kwargs) -> web.AppRunner:
        runner = web.AppRunner(application, **kwargs)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        if runner.server is not None:
            await runner.cleanup()


@pytest.fixture
async def session():
    """A client session of the test's own."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def url(runner: web.AppRunner, order_id: str) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}/orders/{order_id}"


async def post_order(session: aiohttp.ClientSession, target: str) -> dict:
    async with asyncio.timeout(TIMEOUT), session.post(target) as resp:
        body = await resp.json()
    assert resp.status == 200, body
    return body


@pytest.mark.parametrize("module", ALL, ids=name)
async def test_client_has_the_response_before_the_work_ends(
    serve, session, notify, module
):
    runner = await serve(module.create_app(notify))
    body = await post_order(session, url(runner, "7"))
    assert body == {"order": "7", "status": "accepted"}, body
    await notify.wait_for("start 7")
    assert notify.events == ["start 7"], notify.events
    notify.go.set()
    await notify.wait_for("done 7")


async def test_write_eof_keeps_the_connection_busy(serve, session, notify):
    """The next request on the same keep-alive connection waits for the work."""
    runner = await serve(app.create_app(notify))
    await post_order(session, url(runner, "1"))
    second = asyncio.create_task(post_order(session, url(runner, "2")))
    done, _ = await asyncio.wait({second}, timeout=0.3)
    assert not done, "the second request was answered while the first handler ran"
    assert notify.events == ["start 1"], notify.events
    notify.go.set()
    assert await second == {"order": "2", "status": "accepted"}
    assert notify.events[:3] == ["start 1", "done 1", "start 2"], notify.events


@pytest.mark.parametrize("module", ALL, ids=name)
async def test_work_goes_on_when_the_client_leaves(serve, notify, module):
    runner = await serve(module.create_app(notify))
    async with aiohttp.ClientSession() as leaving:
        await post_order(leaving, url(runner, "8"))
    await notify.wait_for("start 8")
    await asyncio.sleep(0.1)
    notify.go.set()
    await notify.wait_for("done 8")


@pytest.mark.parametrize(
    ("module", "outcome"),
    [(app, "cancelled 9"), (background, "done 9"), (with_aiojobs, "done 9")],
    ids=lambda v: name(v) if hasattr(v, "__name__") else v,
)
async def test_handler_cancellation_stops_only_work_in_the_handler(
    serve, notify, module, outcome
):
    runner = await serve(module.create_app(notify), handler_cancellation=True)
    async with aiohttp.ClientSession() as leaving:
        await post_order(leaving, url(runner, "9"))
    if outcome == "cancelled 9":  # the client left: its handler is cancelled
        await notify.wait_for(outcome)
    else:  # the server has seen the client leave; the task goes on
        async with asyncio.timeout(TIMEOUT):
            while runner.server.connections:
                await asyncio.sleep(0.01)
        notify.go.set()
        await notify.wait_for(outcome)
    assert notify.events == ["start 9", outcome], notify.events


@pytest.mark.parametrize("module", ALL, ids=name)
async def test_shutdown_waits_for_unfinished_work(serve, session, notify, module):
    runner = await serve(module.create_app(notify))
    await post_order(session, url(runner, "3"))
    await notify.wait_for("start 3")
    closing = asyncio.create_task(runner.cleanup())
    done, _ = await asyncio.wait({closing}, timeout=0.3)
    assert not done, "the server closed without waiting for the work"
    notify.go.set()
    async with asyncio.timeout(TIMEOUT):
        await closing
    assert notify.events == ["start 3", "done 3"], notify.events
    assert notify.pending() == []


@pytest.mark.parametrize("module", BACKGROUND, ids=name)
async def test_shutdown_cancels_tasks_after_the_grace_period(
    serve, session, notify, module
):
    runner = await serve(module.create_app(notify, grace=0.2))
    await post_order(session, url(runner, "4"))
    await notify.wait_for("start 4")
    async with asyncio.timeout(TIMEOUT):
        await runner.cleanup()
    assert notify.events == ["start 4", "cancelled 4"], notify.events
    assert all(t.cancelled() for t in notify.tasks), notify.tasks
    assert notify.pending() == []


async def test_shutdown_cancels_the_handler_after_shutdown_timeout(
    serve, session, notify
):
    runner = await serve(app.create_app(notify), shutdown_timeout=0.2)
    await post_order(session, url(runner, "5"))
    await notify.wait_for("start 5")
    async with asyncio.timeout(TIMEOUT):
        await runner.cleanup()
    await notify.wait_for("cancelled 5")
    assert notify.events == ["start 5", "cancelled 5"], notify.events
    assert notify.pending() == []


@pytest.mark.parametrize("module", ALL, ids=name)
async def test_default_notification_is_sent(aiohttp_client, capsys, module):
    client = await aiohttp_client(module.create_app())
    resp = await client.post("/orders/42")
    assert resp.status == 200, await resp.text()
    async with asyncio.timeout(TIMEOUT):
        while "已发送通知" not in (out := capsys.readouterr().out):
            await asyncio.sleep(0.05)
    assert out == "已发送通知：订单 42\n", out


@pytest.fixture
def pipe():
    """A pipe's two ends: a text file as a service manager's stdout, and a reader."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    with open(read_fd, "rb") as reader, open(write_fd, "w", encoding="utf-8") as out:
        yield out, reader


@pytest.mark.parametrize("module", ALL, ids=name)
async def test_notification_reaches_a_piped_stdout_at_once(pipe, module):
    """Written to a pipe, print()'s text stays in a buffer unless flushed."""
    out, reader = pipe
    with contextlib.redirect_stdout(out):
        await module.send_notification("42")
    sent = reader.read()
    assert sent == "已发送通知：订单 42\n".encode(), sent


async def test_finished_tasks_are_forgotten(serve, session, notify):
    runner = await serve(background.create_app(notify))
    await post_order(session, url(runner, "10"))
    tasks = runner.app[background.TASKS]
    assert len(tasks) == 1, tasks
    notify.go.set()
    await notify.wait_for("done 10")
    async with asyncio.timeout(TIMEOUT):
        while tasks:
            await asyncio.sleep(0.01)


async def test_error_after_write_eof_is_logged_and_closes_the_connection(serve, caplog):
    async def failing_notify(order_id: str) -> None:
        raise RuntimeError(f"通知失败：订单 {order_id}")

    runner = await serve(app.create_app(failing_notify))
    host, port = runner.addresses[0][:2]
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /orders/6 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    async with asyncio.timeout(TIMEOUT):
        response = (await reader.read()).decode()  # until the server closes
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK"), response
    assert body == '{"order": "6", "status": "accepted"}', response
    errors = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.getMessage() for r in errors] == ["Error handling request from 127.0.0.1"]
    assert "通知失败：订单 6" in str(errors[0].exc_info[1])
