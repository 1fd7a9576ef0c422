"""after_response: the client has the whole response before the follow-up work ends,
and shutting the server down neither loses nor leaks that work.

The recipes' own one-second send_notification() runs once, for the three recipes
at the same time (test_the_notification_comes_a_second_after_the_response); every
other test passes its own notify() to ``create_app()`` and releases it with an
event, and short grace periods and shutdown timeouts through the factories.
"""

import asyncio
import contextlib
import gc
import logging
import os
import time
import warnings
import weakref

import aiohttp
import aiojobs
import aiojobs.aiohttp
import pytest
from aiohttp import web

from after_response import app, background, with_aiojobs
from servers import require_program

TIMEOUT = 5
ALL = [app, background, with_aiojobs]
BACKGROUND = [background, with_aiojobs]
ACCEPTED = {"order": "42", "status": "accepted"}


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


async def failing_notify(order_id: str) -> None:
    raise RuntimeError(f"通知失败：订单 {order_id}")


@pytest.fixture
def notify():
    """A notify() the test releases by hand."""
    return SlowNotify()


@pytest.fixture
async def serve():
    """Serve an app on 127.0.0.1 as web.run_app does; clean up what is left."""
    runners: list[web.AppRunner] = []

    async def start(application: web.Application, **kwargs) -> web.AppRunner:
        kwargs.setdefault("shutdown_timeout", TIMEOUT)  # a failed test ends sooner
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


async def raw_post(
    runner: web.AppRunner, order_id: str, connection: str = "close"
) -> bytes:
    """POST on a connection of its own; everything the server sends until it closes."""
    host, port = runner.addresses[0][:2]
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"POST /orders/{order_id} HTTP/1.1\r\nHost: x\r\n".encode()
        + f"Content-Length: 0\r\nConnection: {connection}\r\n\r\n".encode()
    )
    async with asyncio.timeout(TIMEOUT):
        answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def until(condition, what: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await asyncio.sleep(0.01)


def client_left(runner: web.AppRunner) -> bool:
    """The server has seen each client close its connection (its handler may run)."""
    return all(conn.transport is None for conn in runner.server.connections)


@pytest.mark.claim("此后处理器还可以接着执行")
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


NOTIFIED = "已发送通知：订单 42\n"


@pytest.fixture
def pipe():
    """A pipe: a text file for the server's stdout, and the fd to read it from."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    with open(write_fd, "w", encoding="utf-8") as out:
        yield out, read_fd
    os.close(read_fd)


def read_available(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


@pytest.mark.claim(
    "`curl` 立刻就打印出结果；大约一秒后，服务器的终端里才出现“已发送通知”"
)
async def test_the_notification_comes_a_second_after_the_response(serve, pipe):
    """Each recipe with its own one-second send_notification(), all at once.

    stdout is a pipe here, not a terminal: print() must flush the line itself.
    """
    out, read_fd = pipe
    runners = [await serve(module.create_app()) for module in ALL]
    with contextlib.redirect_stdout(out):
        sent = time.monotonic()
        async with aiohttp.ClientSession() as client:
            answers = await asyncio.gather(
                *(post_order(client, url(runner, "42")) for runner in runners)
            )
            answered = time.monotonic() - sent
            assert answers == [ACCEPTED] * len(ALL), answers
            assert answered < 0.5, answered  # at once, not after the 1 s of work
            printed = read_available(read_fd)
            assert printed == b"", printed  # the responses came first
            async with asyncio.timeout(TIMEOUT):
                while printed.count(b"\n") < len(ALL):
                    await asyncio.sleep(0.01)
                    printed += read_available(read_fd)
        waited = time.monotonic() - sent
    assert printed.decode() == NOTIFIED * len(ALL), printed
    assert 1.0 <= waited < 3.0, waited


@pytest.mark.claim("aiohttp 不会再发第二遍")
async def test_the_response_is_sent_once(serve, notify):
    notify.go.set()
    runner = await serve(app.create_app(notify))
    answer = await raw_post(runner, "42")
    assert answer.count(b"HTTP/1.1") == 1, answer
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(b'\r\n\r\n{"order": "42", "status": "accepted"}'), answer
    assert notify.events == ["start 42", "done 42"], notify.events


@pytest.mark.claim("`Missing return statement on request handler` 错误")
async def test_without_return_the_client_still_gets_the_response(serve, caplog):
    async def without_return(request: web.Request) -> None:
        resp = web.json_response(ACCEPTED)
        await resp.prepare(request)
        await resp.write_eof()

    application = web.Application()
    application.router.add_post("/orders/{order_id}", without_return)
    runner = await serve(application)
    answer = await raw_post(runner, "42")
    assert answer.count(b"HTTP/1.1") == 1, answer
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(b'\r\n\r\n{"order": "42", "status": "accepted"}'), answer
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["Missing return statement on request handler"], errors


@pytest.mark.claim("下一个响应要等上一个处理器真正返回才开始")
async def test_write_eof_keeps_the_connection_busy(serve, notify):
    """The next request on the same keep-alive connection waits for the work."""
    runner = await serve(app.create_app(notify))
    sent, reused = asyncio.Event(), asyncio.Event()

    async def on_sent(*_) -> None:
        sent.set()

    async def on_reuse(*_) -> None:
        reused.set()

    tracing = aiohttp.TraceConfig()
    tracing.on_request_headers_sent.append(on_sent)
    tracing.on_connection_reuseconn.append(on_reuse)
    async with aiohttp.ClientSession(trace_configs=[tracing]) as client:
        await post_order(client, url(runner, "1"))
        await notify.wait_for("start 1")
        sent.clear()
        second = asyncio.create_task(post_order(client, url(runner, "2")))
        async with asyncio.timeout(TIMEOUT):
            await sent.wait()  # the second request is on the wire
        assert reused.is_set(), "the second request went out on a new connection"
        done, _ = await asyncio.wait({second}, timeout=0.1)
        assert not done, "the second request was answered while the first handler ran"
        assert notify.events == ["start 1"], notify.events
        notify.go.set()
        assert await second == {"order": "2", "status": "accepted"}
    assert notify.events[:3] == ["start 1", "done 1", "start 2"], notify.events


@pytest.mark.claim("访问日志要等处理器返回才写")
@pytest.mark.claim("也把后续工作算了进去")
async def test_the_access_log_waits_for_the_work(serve, session, notify, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    runner = await serve(app.create_app(notify), access_log_format="%Tf %D")
    sent = time.monotonic()
    await post_order(session, url(runner, "11"))
    await notify.wait_for("start 11")
    await asyncio.sleep(0.1)  # the follow-up work takes this long
    assert [r for r in caplog.records if r.name == "aiohttp.access"] == []
    notify.go.set()
    await until(lambda: any(r.name == "aiohttp.access" for r in caplog.records), "")
    [record] = [r for r in caplog.records if r.name == "aiohttp.access"]
    seconds, microseconds = record.getMessage().split()
    assert 0.1 <= float(seconds) <= time.monotonic() - sent, record.getMessage()
    assert int(microseconds) >= 100_000, record.getMessage()


@pytest.mark.claim("记成 `Error handling request`")
@pytest.mark.claim("并关闭这条连接")
async def test_error_after_write_eof_is_logged_and_closes_the_connection(serve, caplog):
    runner = await serve(app.create_app(failing_notify))
    # keep-alive asked for: the server closes the connection all the same
    answer = (await raw_post(runner, "6", connection="keep-alive")).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK"), answer
    assert body == '{"order": "6", "status": "accepted"}', answer
    errors = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.getMessage() for r in errors] == ["Error handling request from 127.0.0.1"]
    assert "通知失败：订单 6" in str(errors[0].exc_info[1])


@pytest.mark.claim("两种后台做法都不受客户端断开")
@pytest.mark.claim("客户端断开并不会打断它")
@pytest.mark.parametrize("module", ALL, ids=name)
async def test_work_goes_on_when_the_client_leaves(serve, notify, module):
    runner = await serve(module.create_app(notify))
    async with aiohttp.ClientSession() as leaving:
        await post_order(leaving, url(runner, "8"))
    await notify.wait_for("start 8")
    await until(lambda: client_left(runner), "the server sees it leave")
    notify.go.set()
    await notify.wait_for("done 8")
    assert notify.events == ["start 8", "done 8"], notify.events


@pytest.mark.claim("会在客户端断开时取消处理器任务")
@pytest.mark.claim("也不受 `handler_cancellation` 影响")
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
        await until(lambda: client_left(runner), "the server sees it leave")
        notify.go.set()
        await notify.wait_for(outcome)
    assert notify.events == ["start 9", outcome], notify.events


@pytest.mark.claim("而 curl 收完响应就会断开")
async def test_curl_leaves_once_it_has_the_response(serve, notify):
    runner = await serve(app.create_app(notify), handler_cancellation=True)
    proc = await asyncio.create_subprocess_exec(
        *[require_program("curl"), "-s", "-X", "POST", url(runner, "12")],
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, _ = await proc.communicate()
    assert out == b'{"order": "12", "status": "accepted"}', out
    await notify.wait_for("cancelled 12")
    assert notify.events == ["start 12", "cancelled 12"], notify.events


@pytest.mark.claim("测试服务器也是以 `handler_cancellation=True` 运行的")
async def test_aiohttp_client_cancels_the_handler_when_it_leaves(
    aiohttp_client, notify
):
    client = await aiohttp_client(app.create_app(notify))
    resp = await client.post("/orders/13")
    assert await resp.json() == {"order": "13", "status": "accepted"}
    await client.close()
    await notify.wait_for("cancelled 13")


@pytest.mark.claim(
    "`yield` 之后的代码在应用关闭时执行，此时 aiohttp 已经关掉了监听 socket、"
)
@pytest.mark.claim("等完了（或取消了）正在执行的处理器")
async def test_the_code_after_yield_runs_after_the_handlers(serve, session, notify):
    """background's app, a handler still running when shutdown begins, and a
    cleanup_ctx that notes when its code after `yield` runs."""
    events, go = [], asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        events.append("handler started")
        await go.wait()
        events.append("handler done")
        return web.Response(text="好")

    async def note(app: web.Application):
        yield
        events.append(f"after yield, sites: {len(runner.sites)}")

    application = background.create_app(notify)
    application.router.add_get("/slow", slow)
    application.cleanup_ctx.append(note)
    runner = await serve(application)
    host, port = runner.addresses[0][:2]
    request = asyncio.create_task(session.get(f"http://{host}:{port}/slow"))
    await until(lambda: events == ["handler started"], "the handler runs")
    closing = asyncio.create_task(runner.cleanup())
    await asyncio.sleep(0.1)  # shutdown waits for the handler meanwhile
    assert events == ["handler started"], events
    go.set()
    async with asyncio.timeout(TIMEOUT):
        await closing
        (await request).release()
    assert events == ["handler started", "handler done", "after yield, sites: 0"]


@pytest.mark.claim("等完了（或取消了）正在执行的处理器")
@pytest.mark.parametrize("module", ALL, ids=name)
async def test_shutdown_waits_for_unfinished_work(serve, session, notify, module):
    runner = await serve(module.create_app(notify))
    await post_order(session, url(runner, "3"))
    await notify.wait_for("start 3")
    closing = asyncio.create_task(runner.cleanup())
    await until(lambda: not runner.sites, "the listening socket is closed")
    done, _ = await asyncio.wait({closing}, timeout=0.05)
    assert not done, "the server closed without waiting for the work"
    notify.go.set()
    async with asyncio.timeout(TIMEOUT):
        await closing
    assert notify.events == ["start 3", "done 3"], notify.events
    assert notify.pending() == []


@pytest.mark.claim("剩下没做完的逐个 `cancel()`")
@pytest.mark.claim("关闭时先等任务最多 `wait_timeout` 秒，再取消剩下的")
@pytest.mark.parametrize("module", BACKGROUND, ids=name)
async def test_shutdown_cancels_tasks_after_the_grace_period(
    serve, session, notify, module
):
    grace = 0.1
    runner = await serve(module.create_app(notify, grace=grace))
    await post_order(session, url(runner, "4"))
    await notify.wait_for("start 4")
    began = time.monotonic()
    async with asyncio.timeout(TIMEOUT):
        await runner.cleanup()
    assert time.monotonic() - began >= grace
    assert notify.events == ["start 4", "cancelled 4"], notify.events
    assert all(t.cancelled() for t in notify.tasks), notify.tasks
    assert notify.pending() == []


@pytest.mark.claim("要到大约两倍的 `shutdown_timeout` 之后才被取消")
async def test_shutdown_cancels_the_handler_after_twice_shutdown_timeout(
    serve, session, notify
):
    shutdown_timeout = 0.5  # long enough that 3 waits (1.5 s) are told from 2
    runner = await serve(app.create_app(notify), shutdown_timeout=shutdown_timeout)
    await post_order(session, url(runner, "5"))
    await notify.wait_for("start 5")
    began = time.monotonic()
    async with asyncio.timeout(TIMEOUT):
        await runner.cleanup()
    await notify.wait_for("cancelled 5")
    waited = time.monotonic() - began
    assert 2 * shutdown_timeout - 0.02 <= waited < 3 * shutdown_timeout, waited
    assert notify.events == ["start 5", "cancelled 5"], notify.events
    assert notify.pending() == []


@pytest.mark.claim("让做完的任务自己离开集合")
async def test_finished_tasks_are_forgotten(serve, session, notify):
    runner = await serve(background.create_app(notify))
    await post_order(session, url(runner, "10"))
    tasks = runner.app[background.TASKS]
    assert len(tasks) == 1, tasks
    gc.collect()  # the set keeps the task: it is not collected half way
    assert notify.events == ["start 10"], notify.events
    notify.go.set()
    await notify.wait_for("done 10")
    await until(lambda: not tasks, "the task leaves the set")


@pytest.mark.claim("没有别的引用时，任务可能在执行到一半时被垃圾回收")
@pytest.mark.claim("只留下一句 `Task was destroyed but it is pending!`")
async def test_a_task_nobody_keeps_is_collected_half_way(caplog):
    started = []

    async def waits_forever() -> None:
        started.append(True)
        await asyncio.get_running_loop().create_future()

    ref = weakref.ref(asyncio.create_task(waits_forever()))
    await until(lambda: started, "the task starts")
    gc.collect()
    assert ref() is None
    messages = [r.getMessage().splitlines()[0] for r in caplog.records]
    assert messages == ["Task was destroyed but it is pending!"], messages


@pytest.mark.claim("只会在任务被回收时打一条 `Task exception was never retrieved`")
async def test_an_exception_nobody_awaits_is_logged_when_collected(serve, caplog):
    failed: list[asyncio.Task] = []

    async def fails(order_id: str) -> None:
        failed.append(asyncio.current_task())
        await failing_notify(order_id)

    runner = await serve(background.create_app(fails))
    async with aiohttp.ClientSession() as client:
        await post_order(client, url(runner, "14"))
    await until(lambda: failed and failed[0].done(), "the task fails")
    await until(lambda: not runner.app[background.TASKS], "it leaves the set")
    gc.collect()
    assert [r for r in caplog.records if r.name == "asyncio"] == []  # still kept
    failed.clear()
    gc.collect()
    messages = [
        r.getMessage().splitlines()[0] for r in caplog.records if r.name == "asyncio"
    ]
    assert messages == ["Task exception was never retrieved"], messages


@pytest.mark.claim("`cleanup_ctx` 按注册的相反顺序退出")
async def test_cleanup_contexts_exit_in_reverse_order(serve):
    order: list[str] = []

    def context(label: str):
        async def run(application: web.Application):
            yield
            order.append(label)

        return run

    application = web.Application()
    application.cleanup_ctx.extend([context("数据库"), context("后台任务")])
    runner = await serve(application)
    await runner.cleanup()
    assert order == ["后台任务", "数据库"]


@pytest.mark.claim("往应用的 `cleanup_ctx` 里加一个调度器")
@pytest.mark.claim("调度器默认最多同时运行 100 个任务，多出来的排队等待")
async def test_the_scheduler_runs_100_jobs_and_queues_the_rest(serve, notify):
    application = with_aiojobs.create_app(notify)
    assert len(application.cleanup_ctx) == 1
    assert aiojobs.aiohttp.get_scheduler_from_app(application) is None
    await serve(application)
    scheduler = aiojobs.aiohttp.get_scheduler_from_app(application)
    assert isinstance(scheduler, aiojobs.Scheduler)
    for number in range(101):
        await scheduler.spawn(notify(str(number)))
    await notify.wait_for("start 99")
    assert (scheduler.active_count, scheduler.pending_count) == (100, 1)
    assert "start 100" not in notify.events
    notify.go.set()
    await notify.wait_for("done 100")


@pytest.mark.claim("失败的任务会通过事件循环的异常处理器记进日志")
async def test_a_failed_job_is_logged(serve, caplog):
    runner = await serve(with_aiojobs.create_app(failing_notify))
    async with aiohttp.ClientSession() as client:
        await post_order(client, url(runner, "15"))
    await until(lambda: any(r.name == "asyncio" for r in caplog.records), "a log")
    [record] = [r for r in caplog.records if r.name == "asyncio"]
    assert record.getMessage().startswith("Job processing failed"), record
    assert "通知失败：订单 15" in str(record.exc_info[1])


@pytest.mark.claim("不会产生 `NotAppKeyWarning`")
async def test_aiojobs_stores_its_scheduler_under_an_app_key(serve, notify):
    assert isinstance(aiojobs.aiohttp.AIOJOBS_SCHEDULER, web.AppKey)
    notify.go.set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runner = await serve(with_aiojobs.create_app(notify))
        async with aiohttp.ClientSession() as client:
            await post_order(client, url(runner, "16"))
        await notify.wait_for("done 16")
        await runner.cleanup()
    assert [w for w in caught if w.category is web.NotAppKeyWarning] == []
