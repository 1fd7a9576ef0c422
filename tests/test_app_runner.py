"""app_runner: AppRunner in the reader's asyncio.run(main()), several sites, a task.

The page's blocks run the reader's ``python app.py`` (ticks every second) and
``python try_it.py`` once. The processes started here run the same ``main()``
and ``create_app()`` from a copy of app.py through a small launcher that passes
a short interval; the periodic loop itself is timed in-process.
"""

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import pages
from app_runner import try_it
from app_runner.app import TICKS, create_app, main, run_every
from servers import free_port, running

FOLDER = pages.SNIPPETS / "app_runner"
APP = FOLDER / "app.py"
TIMEOUT = 15
INTERVAL = 0.05  # the tests' periodic task: 20 beats a second
SIGNALS = [signal.SIGINT, signal.SIGTERM]
STOP_LINES = ["收到停止信号，正在关闭……", "周期任务已停止", "已退出"]
LAUNCHER = """\
\"\"\"app.py's main() with the test's interval, on the ports in PORT.\"\"\"

import asyncio
import os

from app import create_app, main

ports = [int(port) for port in os.environ["PORT"].split(",")]
asyncio.run(main(create_app({interval}), ports, "app.sock"))
print("已退出")
"""
# The same, with main()'s two loop.add_signal_handler() calls doing nothing.
WITHOUT_HANDLERS = """\
import asyncio

asyncio.SelectorEventLoop.add_signal_handler = lambda self, sig, callback: None
"""
RUN_APP_INSIDE_MAIN = """\
import asyncio

from aiohttp import web

from app import create_app


async def main():
    web.run_app(create_app(), host="127.0.0.1", port={port})


asyncio.run(main())
"""


def two_free_ports() -> tuple[int, int]:
    while True:
        first, second = free_port(), free_port()
        if first != second:
            return first, second


@pytest.fixture
def folder(tmp_path) -> Path:
    """The reader's folder: a copy of app_runner's programs."""
    for name in ("app.py", "run_app.py", "try_it.py"):
        shutil.copy(FOLDER / name, tmp_path / name)
    return tmp_path


def launcher(folder: Path, interval: float, *, handlers: bool = True) -> Path:
    """``folder/quick.py``: app.py's main() with a short interval."""
    path = folder / "quick.py"
    code = LAUNCHER.format(interval=interval)
    path.write_text(code if handlers else WITHOUT_HANDLERS + code, "utf-8")
    return path


@pytest.fixture
def ports() -> tuple[int, int]:
    """Two free ports for a process the test starts."""
    return two_free_ports()


def port_env(ports: tuple[int, int]) -> dict[str, str]:
    return {"PORT": f"{ports[0]},{ports[1]}"}


async def get(url: str, unix: str | None = None) -> tuple[int, str]:
    connector = aiohttp.UnixConnector(path=unix) if unix else None
    async with asyncio.timeout(TIMEOUT):
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(url) as resp:
                return resp.status, await resp.text()


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


async def wait_for_line(server, line: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while line not in server.output().splitlines():
            await asyncio.sleep(0.01)


async def wait_for_exit(server) -> int:
    async with asyncio.timeout(TIMEOUT):
        while server.proc.poll() is None:
            await asyncio.sleep(0.01)
    return server.proc.returncode


def run_every_tasks() -> list[asyncio.Task]:
    return [
        t
        for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__name__", "") == "run_every"
    ]


# --- main(): one app on every address, until a signal -----------------------------


@pytest.mark.claim("它们服务的都是同一个 `app`")
@pytest.mark.claim("本地地址就是 socket 文件的路径")
async def test_main_serves_one_app_on_every_address_until_sigint(
    tmp_path, ports, capsys
):
    app = create_app(3600)  # no beat during this test: the count stays put
    app[TICKS].count = 41
    unix_path = str(tmp_path / "app.sock")
    serving = asyncio.create_task(main(app, ports, unix_path))
    out = ""
    async with asyncio.timeout(TIMEOUT):
        while "在这些地址上提供服务" not in out:  # the signal handlers are in place
            await asyncio.sleep(0.01)
            out += capsys.readouterr().out
    for port in ports:
        status, text = await get(f"http://127.0.0.1:{port}/")
        assert (status, text) == (200, f"127.0.0.1:{port}：周期任务已运行 41 次\n")
    # The host name in the URL is only a name: the connection is the socket file.
    status, text = await get("http://anything.invalid/", unix=unix_path)
    assert (status, text) == (200, f"{unix_path}：周期任务已运行 41 次\n")

    os.kill(os.getpid(), signal.SIGINT)  # main()'s handler catches it
    async with asyncio.timeout(TIMEOUT):
        await serving
    out += capsys.readouterr().out
    names = [f"http://127.0.0.1:{p}" for p in ports] + [f"http://unix:{unix_path}:"]
    assert out.splitlines() == [
        "在这些地址上提供服务：" + ", ".join(names),
        *STOP_LINES[:2],  # "已退出" is app.py's, after asyncio.run()
    ]
    for port in ports:
        assert await refused(port)
    assert run_every_tasks() == []


@pytest.mark.claim("周期任务在这一步就开始了，这时还没有监听任何地址")
@pytest.mark.claim("`site.start()` 调用之后才开始监听")
@pytest.mark.claim("停机要等任务真正结束才继续")
async def test_the_task_starts_at_setup_and_has_ended_when_cleanup_returns(capsys):
    app = create_app(0.01)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        async with asyncio.timeout(TIMEOUT):
            while app[TICKS].count < 2:
                await asyncio.sleep(0.005)
        assert await refused(port)  # ticking, and nothing listens yet
        await site.start()
        status, text = await get(f"http://127.0.0.1:{port}/")
        assert status == 200, text
    finally:
        await runner.cleanup()
    assert run_every_tasks() == []  # not cancelling: finished
    ticks = app[TICKS].count
    await asyncio.sleep(0.05)  # five beats' time
    assert app[TICKS].count == ticks
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "周期任务已停止", lines
    assert lines[:-1] == [f"周期任务：第 {n} 次" for n in range(1, ticks + 1)]


# --- the periodic loop ----------------------------------------------------------


async def beats(interval: float, job_seconds: float, count: int, loop_fn) -> list:
    """(start, end) of the first ``count`` runs of a job taking ``job_seconds``."""
    loop = asyncio.get_running_loop()
    runs = []
    enough = asyncio.Event()

    async def job() -> None:
        start = loop.time()
        await asyncio.sleep(job_seconds)
        runs.append((start, loop.time()))
        if len(runs) == count:
            enough.set()

    started = loop.time()
    task = asyncio.create_task(loop_fn(interval, job))
    try:
        async with asyncio.timeout(TIMEOUT):
            await enough.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return [(start - started, end - started) for start, end in runs[:count]]


async def sleep_then_run(interval, job) -> None:
    """The simple loop the page compares with."""
    while True:
        await asyncio.sleep(interval)
        await job()


@pytest.mark.claim("每一拍都比上一拍多晚 job 花掉的时间")
@pytest.mark.claim("job 花的时间不会让节拍越来越晚")
async def test_beats_do_not_drift_by_the_jobs_time():
    job_seconds = 0.03
    kept, simple = await asyncio.gather(
        beats(INTERVAL, job_seconds, 10, run_every),
        beats(INTERVAL, job_seconds, 10, sleep_then_run),
    )
    for n, (start, _) in enumerate(kept, start=1):
        assert n * INTERVAL - 0.005 <= start, kept  # never early
    # Ten beats at 0.05 s: the 10th run starts at 0.5 s (plus the machine's delay).
    assert kept[-1][0] < 10 * INTERVAL + 0.1, kept
    # The simple loop's 10th run cannot start before 10 sleeps and 9 jobs: 0.77 s.
    assert simple[-1][0] >= 10 * INTERVAL + 9 * job_seconds - 0.005, simple


@pytest.mark.claim("错过的节拍就跳过，不会接连补跑")
async def test_a_run_longer_than_the_interval_skips_the_missed_beats():
    # A coarser grid than the other tests': a busy machine (the matrix runs four
    # pages on two cores) starts a run up to 0.03 s late.
    interval, job_seconds = 2 * INTERVAL, 0.24
    runs = await beats(interval, job_seconds, 4, run_every)
    for (_, end), (next_start, _) in itertools.pairwise(runs):
        # Catching up would start the next run as this one ends (about 0 s later);
        # the next beat on the 0.1 s grid is 0.06 s after a 0.24 s run.
        assert next_start - end > 0.02, runs
        assert next_start - end <= interval + 0.06, runs
    assert [round(start / interval) for start, _ in runs] == [1, 4, 7, 10], runs


async def failing_once(loop_fn, interval: float) -> tuple[asyncio.Task, list[int]]:
    """Run ``loop_fn`` with a job that raises on its first run; return the task
    and the runs, once a second run happened or five beats' time went by."""
    calls: list[int] = []
    second_call = asyncio.Event()

    async def job() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise ValueError("坏数据")
        second_call.set()

    task = asyncio.create_task(loop_fn(interval, job))
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(second_call.wait(), 5 * interval)
    return task, calls


@pytest.mark.claim("用 `log.exception()` 记下回溯，下一拍照常运行")
async def test_a_failing_job_is_logged_and_the_next_beat_runs(caplog):
    task, calls = await failing_once(run_every, INTERVAL)
    try:
        assert not task.done()
        assert calls[:2] == [0, 1]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    [record] = caplog.records
    assert (record.levelname, record.getMessage()) == ("ERROR", "周期任务出错")
    assert isinstance(record.exc_info[1], ValueError)


@pytest.mark.claim("第一次异常就结束了整个任务，之后它再也不运行")
async def test_without_the_try_the_first_error_ends_the_loop(caplog):
    task, calls = await failing_once(sleep_then_run, INTERVAL)
    assert task.done() and isinstance(task.exception(), ValueError)
    assert calls == [0]
    assert caplog.records == []


# --- signals, as the reader's process gets them ------------------------------------


@pytest.mark.claim("进程的退出码是 0。两种信号的效果一样")
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
async def test_a_signal_stops_the_server_and_the_task_cleanly(folder, ports, sig):
    quick = launcher(folder, INTERVAL)
    with running(
        [sys.executable, quick.name], port=ports[0], cwd=folder, env=port_env(ports)
    ) as server:
        await wait_for_line(server, "周期任务：第 3 次")
        status, text = await get("http://localhost/", unix=str(folder / "app.sock"))
        assert status == 200, text
        server.proc.send_signal(sig)
        assert await wait_for_exit(server) == 0, server.output()
    # running() has also checked: exit status 0 and no traceback in the output
    lines = server.output().splitlines()
    assert lines[-3:] == STOP_LINES, lines
    ticks = lines[1:-3]
    assert ticks == [f"周期任务：第 {n} 次" for n in range(1, len(ticks) + 1)], lines


@pytest.mark.claim("`finally` 里的清理仍会运行，但 `asyncio.run()` 之后的代码不再执行")
@pytest.mark.claim("进程带着 `KeyboardInterrupt` 的回溯结束，退出码不是 0")
@pytest.mark.claim("收到 SIGTERM，进程被直接终止，`finally` 里的清理一行也不运行")
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
async def test_without_the_handlers(folder, ports, sig):
    quick = launcher(folder, INTERVAL, handlers=False)
    argv = [sys.executable, quick.name]
    env = port_env(ports)
    with running(
        argv, port=ports[0], cwd=folder, env=env, expect_clean_exit=False
    ) as server:
        await wait_for_line(server, "周期任务：第 2 次")
        server.proc.send_signal(sig)
        code = await wait_for_exit(server)
    lines = server.output().splitlines()
    assert "已退出" not in lines, lines
    if sig == signal.SIGINT:
        assert code == -signal.SIGINT, server.output()
        assert "周期任务已停止" in lines, lines
        assert lines[-1] == "KeyboardInterrupt", lines
    else:
        assert code == -signal.SIGTERM, server.output()
        assert "周期任务已停止" not in lines, lines
        assert "Traceback (most recent call last):" not in lines, lines


@pytest.mark.claim("端口被占用时它抛出 `OSError`（`address already in use`）")
@pytest.mark.claim("照样运行并停掉周期任务，然后程序带着回溯退出，退出码是 1")
async def test_a_port_in_use_stops_the_program_after_cleanup(folder, ports):
    quick = launcher(folder, 3600)  # no beat before the failure
    with socket.create_server(("127.0.0.1", ports[1])) as taken:
        assert taken.getsockname()[1] == ports[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            quick.name,
            cwd=folder,
            env={**os.environ, **port_env(ports)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(TIMEOUT):
            out, _ = await proc.communicate()
    lines = out.decode().splitlines()
    assert proc.returncode == 1, lines
    assert lines[0] == "周期任务已停止", lines
    assert lines[1] == "Traceback (most recent call last):", lines
    assert lines[-1].startswith("OSError: [Errno"), lines
    # Python 3.13 adds "[errno 98]" before the last words
    assert f"('127.0.0.1', {ports[1]}): " in lines[-1], lines
    assert lines[-1].endswith("address already in use"), lines
    assert "已退出" not in lines


# --- try_it.py, as the page runs it ----------------------------------------------


@pytest.fixture
def quick_folder(folder, monkeypatch) -> Path:
    """The reader's folder, where app.py ticks every 0.3 s (time to ask it three
    times between two beats)."""
    launcher(folder, 0.3)
    monkeypatch.chdir(folder)
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    return folder


async def test_try_it_prints_what_the_page_shows(quick_folder, capsys):
    async with asyncio.timeout(TIMEOUT):
        await try_it.main("quick.py")
    shown = (FOLDER / "try_it.txt").read_text("utf-8")
    assert pages.normalize(capsys.readouterr().out) == pages.normalize(shown)


async def test_try_it_says_when_app_py_does_not_start(quick_folder):
    (quick_folder / "broken.py").write_text("raise SystemExit(3)\n", "utf-8")
    with pytest.raises(SystemExit, match=r"app\.py 提前退出了，退出码：3"):
        async with asyncio.timeout(TIMEOUT):
            await try_it.main("broken.py")


# --- web.run_app() -----------------------------------------------------------------


@pytest.fixture
def run_app_module():
    """run_app.py imported as from the reader's folder, next to app.py."""
    with pages.imported(FOLDER, "app", "run_app") as modules:
        yield modules["run_app"]


async def test_sock_sites_serve_the_sockets_run_app_py_makes(run_app_module, ports):
    sockets = run_app_module.listening_sockets(list(ports))
    runner = web.AppRunner(run_app_module.create_app(3600))
    await runner.setup()
    try:
        for sock in sockets:  # what run_app(sock=[...]) does with each one
            await web.SockSite(runner, sock).start()
        for port in ports:
            status, text = await get(f"http://127.0.0.1:{port}/")
            assert (status, text) == (200, f"127.0.0.1:{port}：周期任务已运行 0 次\n")
    finally:
        await runner.cleanup()
        for sock in sockets:
            sock.close()


@pytest.mark.claim("`run_app()` 自己处理 Ctrl+C 和 SIGTERM")
@pytest.mark.claim("周期任务同样由 `cleanup_ctx` 停止，退出码是 0")
@pytest.mark.claim("同一个应用交给 `run_app()`，多个地址也照样能监听")
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
async def test_run_app_py_listens_on_every_address_and_stops_cleanly(
    folder, ports, sig
):
    with running(
        [sys.executable, "run_app.py"],
        port=ports[0],
        cwd=folder,
        env=port_env(ports),
        stop_signal=sig,
    ) as server:
        for port in ports:
            status, text = await get(f"http://127.0.0.1:{port}/")
            assert status == 200 and text.startswith(f"127.0.0.1:{port}："), text
        status, text = await get("http://localhost/", unix=str(folder / "app.sock"))
        assert status == 200 and text.startswith("app.sock："), text
    # running() stopped it with ``sig`` and checked: exit status 0, no traceback
    assert server.output().splitlines()[-1] == "周期任务已停止", server.output()


@pytest.mark.claim("Cannot run the event loop while another loop is running")
async def test_run_app_inside_asyncio_run_fails(folder):
    script = folder / "inside.py"
    script.write_text(RUN_APP_INSIDE_MAIN.format(port=free_port()), "utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        script.name,
        cwd=folder,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(TIMEOUT):
        out, _ = await proc.communicate()
    assert proc.returncode == 1, out
    error = "RuntimeError: Cannot run the event loop while another loop is running"
    assert error in out.decode().splitlines(), out.decode()
