"""deployment: aiohttp processes behind gunicorn or nginx, and the client's real IP.

Everything the page shows runs for real: the page's gunicorn command with
aiohttp's worker, the ``python app.py --path`` processes of backends.sh on Unix
sockets, a real nginx loading the page's configuration (tests/servers.py's
``nginx``: one worker process) and curl replaying the page's transcript. The
middleware is also served in-process (TCP and Unix sockets) for coverage.
"""

import asyncio
import contextlib
import grp
import itertools
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from gunicorn.config import Config
from packaging.version import Version

import deployment.app
import pages
import servers
from deployment.app import create_app

TIMEOUT = 10
# The folder the tests import app.py from (mutation testing swaps it).
APP_DIR = Path(deployment.app.__file__).parent
NGINX_CONF = pages.SNIPPETS / "deployment/nginx.conf"
NGINX_CONSOLE = pages.SNIPPETS / "deployment/nginx.console"
BACKENDS = pages.SNIPPETS / "deployment/backends.sh"
GUNICORN = pages.SNIPPETS / "deployment/gunicorn.sh"
GUNICORN_LOG = pages.SNIPPETS / "deployment/gunicorn.txt"
# The reader's programs: the Python and gunicorn of the environment under test.
GUNICORN_PROGRAM = str(Path(sys.executable).with_name("gunicorn"))
AIOHTTP = Version(aiohttp.__version__)
SPOOF = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
FACTORY_ERROR = (
    "RuntimeError: wsgi app should be either Application"
    " or async function returning Application"
)


def body(remote: str, scheme: str, count: int) -> str:
    return f"客户端 {remote}，协议 {scheme}，这是本进程处理的第 {count} 个请求\n"


def served_count(text: str) -> int:
    return int(re.search(r"第 (\d+) 个请求", text).group(1))


async def get(url: str, headers=None, *, local_addr=None, unix=None) -> tuple:
    """One GET on a new connection: (X-Pid, body)."""
    connector = (
        aiohttp.UnixConnector(unix)
        if unix
        else aiohttp.TCPConnector(local_addr=local_addr, force_close=True)
    )
    async with (
        asyncio.timeout(TIMEOUT),
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, headers=headers) as resp,
    ):
        text = await resp.text()
        assert resp.status == 200, text
        return int(resp.headers["X-Pid"]), text


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short folder for Unix sockets (their paths must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="faq-dep-"))
    yield path
    shutil.rmtree(path)


# --- the middleware, in-process ---------------------------------------------------


@pytest.mark.claim("对端 127.0.0.1 不在 `TRUSTED_PROXIES` 里")
@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "203.0.113.7"},
        {"X-Forwarded-Proto": "https"},
        SPOOF,
        {"X-Forwarded-For": "203.0.113.7, 198.51.100.2"},
    ],
)
async def test_a_direct_client_cannot_set_its_address(aiohttp_server, headers):
    server = await aiohttp_server(create_app())
    pid, text = await get(str(server.make_url("/")), headers)
    assert (pid, text) == (os.getpid(), body("127.0.0.1", "http", 1))


@pytest.mark.claim("从 `TRUSTED_PROXIES` 里的地址经 TCP 连进来的")
@pytest.mark.parametrize(
    ("local_addr", "expected"),
    [(None, "198.51.100.2"), (("127.0.0.2", 0), "127.0.0.2")],
    ids=["from-the-proxy", "from-elsewhere"],
)
async def test_a_trusted_tcp_proxy(aiohttp_server, local_addr, expected):
    server = await aiohttp_server(create_app(trusted_proxies=["127.0.0.1/32"]))
    headers = {"X-Forwarded-For": "203.0.113.7, 198.51.100.2"}
    _, text = await get(str(server.make_url("/")), headers, local_addr=local_addr)
    assert text == body(expected, "http", 1)


@pytest.fixture
async def unix_server(sock_dir):
    """serve(app) serves ``app`` on a Unix socket and returns its path."""
    runners = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        path = str(sock_dir / f"app{len(runners)}.sock")
        await web.UnixSite(runner, path).start()
        return path

    yield serve
    for runner in runners:
        await runner.cleanup()


async def remote_and_scheme(request: web.Request) -> web.Response:
    return web.Response(text=repr((request.remote, request.scheme)))


@pytest.mark.claim("aiohttp 自己不看 `X-Forwarded-For`")
@pytest.mark.claim("`request.scheme`\n只看连接是不是 TLS")
async def test_aiohttp_itself_ignores_the_forwarded_headers(aiohttp_client):
    """A bare app (no middleware) over TCP, with every forwarding header forged."""
    app = web.Application()
    app.router.add_get("/", remote_and_scheme)
    client = await aiohttp_client(app)
    resp = await client.get("/", headers=SPOOF)
    assert await resp.text() == "('127.0.0.1', 'http')"


@pytest.mark.claim("`request.scheme`\n只看连接是不是 TLS")
async def test_over_tls_the_scheme_is_https_whatever_the_headers(tmp_path):
    ca = trustme.CA()
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ssl)
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    app = web.Application()
    app.router.add_get("/", remote_and_scheme)
    runner = web.AppRunner(app)
    await runner.setup()
    port = servers.free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl).start()
    try:
        async with aiohttp.ClientSession() as session:
            headers = {**SPOOF, "X-Forwarded-Proto": "http"}
            url = f"https://127.0.0.1:{port}/"
            async with session.get(url, headers=headers, ssl=client_ssl) as resp:
                assert await resp.text() == "('127.0.0.1', 'https')"
    finally:
        await runner.cleanup()


@pytest.mark.claim(
    "aiohttp 创建 socket 文件时不另设权限，socket 文件的权限由进程的 umask 决定"
)
@pytest.mark.parametrize(
    ("mask", "mode"), [(0o007, "srwxrwx---"), (0o022, "srwxr-xr-x")]
)
async def test_the_socket_file_mode_is_the_umasks(tmp_path, mask, mode):
    runner = web.AppRunner(web.Application())
    await runner.setup()
    path = tmp_path / "app.sock"
    earlier = os.umask(mask)
    try:
        await web.UnixSite(runner, str(path)).start()
        made = stat.filemode(path.stat().st_mode)
    finally:
        os.umask(earlier)
        await runner.cleanup()
    assert made == mode


@pytest.mark.claim("经 Unix socket 进来的请求，`request.remote` 是空字符串")
@pytest.mark.claim("没有 `forwarded()` 中间件，应用就看不到任何客户端地址")
async def test_a_unix_socket_peer_has_no_address(unix_server):
    app = web.Application()
    app.router.add_get("/", remote_and_scheme)
    path = await unix_server(app)
    connector = aiohttp.UnixConnector(path)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get("http://localhost/", headers=SPOOF) as resp,
    ):
        assert await resp.text() == "('', 'http')"


@pytest.mark.claim("取 `X-Forwarded-For` 的最后一项")
@pytest.mark.claim("只接受 `http` 和 `https`")
@pytest.mark.claim("不是 IP 地址时，保留原来的值")
@pytest.mark.parametrize(
    ("headers", "remote", "scheme"),
    [
        ({}, "", "http"),
        (SPOOF, "203.0.113.7", "https"),
        ({"X-Forwarded-For": "203.0.113.7, 198.51.100.2"}, "198.51.100.2", "http"),
        ({"X-Forwarded-For": "2001:db8::1"}, "2001:db8::1", "http"),
        ({"X-Forwarded-For": "unknown", "X-Forwarded-Proto": "ftp"}, "", "http"),
    ],
)
async def test_a_unix_socket_peer_is_the_proxy(unix_server, headers, remote, scheme):
    path = await unix_server(create_app())
    _, text = await get("http://localhost/", headers, unix=path)
    assert text == body(remote, scheme, 1)


# --- nginx in front of two processes ----------------------------------------------


def backend_commands(sock_dir: Path) -> tuple[int, list[tuple[list[str], str]]]:
    """backends.sh: its umask, and (argv, socket path) of each of its
    `sg www-data -c "python app.py --path ..." &` lines."""
    lines = [
        line
        for line in BACKENDS.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    umask = int(re.fullmatch(r"umask (\d+)", lines[0]).group(1), 8)
    commands = []
    for line in lines[1:]:
        sg = shlex.split(line.removesuffix("&"))
        assert sg[:3] == ["sg", "www-data", "-c"] and len(sg) == 4, line
        argv = shlex.split(sg[3])
        assert argv[:3] == ["python", "app.py", "--path"], line
        path = argv[3].replace("/tmp/", f"{sock_dir}/")
        command = shlex.join([sys.executable, "app.py", "--path", path])
        commands.append(([*sg[:3], command], path))
    return umask, commands


def wait_for_unix(path: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + servers.STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")
        with (
            contextlib.suppress(OSError),
            socket.socket(socket.AF_UNIX) as sock,
        ):
            sock.connect(path)
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {path}:\n{log.read_text()}")


@contextlib.contextmanager
def unix_program(argv, *, umask, workdir: Path, stop, env=None, path=None) -> Iterator:
    """Run ``argv`` until it listens on its Unix socket (``path``, or else its
    last argument or ``--bind unix:...``); stop it with ``stop`` and check it
    exits cleanly. Under `sg ... -c` the signal goes to the program sg runs
    (sg → sh → python): sg and sh then exit with its status."""
    path = path or argv[-1].removeprefix("unix:")
    log = workdir / f"{Path(path).stem}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=APP_DIR,
            umask=umask,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    try:
        wait_for_unix(path, proc, log)
        yield proc, path, log
    finally:
        if proc.poll() is None:
            os.kill(last_child(proc.pid) if argv[0] == "sg" else proc.pid, stop)
        proc.wait(servers.STOP_TIMEOUT)
    output = log.read_text(errors="replace")
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output


def transcript(text: str) -> list[tuple[str, str]]:
    """(command, what the page shows it printed) for each `$ ` line."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(command, "\n".join(shown)) for command, shown in steps]


@pytest.mark.claim("只监听这个 Unix socket，不开 TCP 端口")
@pytest.mark.claim("socket 文件的权限由进程的 umask 决定")
@pytest.mark.claim("`umask 007` 时是 `srwxrwx---`")
@pytest.mark.claim("socket 文件就属于这个组")
@pytest.mark.claim("nginx 默认按顺序轮流把请求交给 `upstream` 里的每个 `server`")
@pytest.mark.claim("应用看到的客户端就是 127.0.0.2")
@pytest.mark.claim("aiohttp 收到 SIGTERM 和 Ctrl+C 一样正常退出")
@pytest.mark.claim("两个进程号交替出现")
@pytest.mark.claim("每个进程的计数各自连续增加")
async def test_nginx_in_front_of_two_processes(sock_dir, tmp_path):
    umask, commands = backend_commands(sock_dir)
    with contextlib.ExitStack() as stack:
        backends = [
            stack.enter_context(
                # stopped as `kill %1 %2` stops them
                unix_program(
                    argv, umask=umask, workdir=tmp_path, stop=signal.SIGTERM, path=path
                )
            )
            for argv, path in commands
        ]
        for _, path, _ in backends:
            assert stat.filemode(os.stat(path).st_mode) == "srwxrwx---", path
            assert grp.getgrgid(os.stat(path).st_gid).gr_name == "www-data", path
        conf = NGINX_CONF.read_text("utf-8").replace("/tmp/", f"{sock_dir}/")
        port = servers.free_port()
        assert conf.count("127.0.0.1:8000") == 1, conf
        conf = conf.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        (tmp_path / "nginx").mkdir()
        nginx = stack.enter_context(
            servers.nginx(conf, port=port, workdir=tmp_path / "nginx")
        )
        # The page's transcript, command by command, against this nginx.
        for command, shown in transcript(NGINX_CONSOLE.read_text("utf-8")):
            assert "127.0.0.1:8000" in command, command
            bash = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                command.replace("127.0.0.1:8000", f"127.0.0.1:{port}"),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            async with asyncio.timeout(TIMEOUT):
                printed = (await bash.communicate())[0].decode()
            assert pages.normalize(printed) == pages.normalize(shown), (
                f"$ {command}\nprinted:\n{printed}\npage shows:\n{shown}"
            )
        # From another address, with a header of its own: nginx's entry wins.
        answers = [
            await get(f"{nginx.url}/", SPOOF, local_addr=("127.0.0.2", 0))
            for _ in range(10)
        ]
        programs = {last_child(proc.pid) for proc, _, _ in backends}  # sg runs
        assert all(tcp_listening(pid) == set() for pid in programs), programs
    pids = [pid for pid, _ in answers]
    print(f"\nnginx: requests per backend pid: {dict(Counter(pids))}")
    assert set(pids) == programs, pids
    assert all(a != b for a, b in itertools.pairwise(pids)), pids  # round robin
    for pid in set(pids):
        counts = [served_count(text) for p, text in answers if p == pid]
        assert counts == list(range(counts[0], counts[0] + 5)), (pid, counts)
    assert all(text.startswith("客户端 127.0.0.2，协议 http，") for _, text in answers)
    for _, path, log in backends:  # run_app names every site it serves
        lines = re.findall(r"^=+ Running on .*$", log.read_text(), re.M)
        assert lines == [f"======== Running on http://unix:{path}: ========"], lines


def tcp_listening(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on: its socket inodes, looked up in
    the kernel's tables of TCP sockets (state 0A is LISTEN)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_tcp_listening_sees_a_listening_socket():
    """The check above finds a port this process listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        assert sock.getsockname()[1] in tcp_listening(os.getpid())


async def forwarded_headers(request: web.Request) -> web.Response:
    names = ("X-Forwarded-For", "X-Forwarded-Proto")
    return web.json_response({name: request.headers.getall(name, []) for name in names})


@pytest.mark.claim("后面再追加 nginx 看到的对端地址")
@pytest.mark.claim("客户端没发这个请求头时，就只有这个地址")
@pytest.mark.claim("`proxy_set_header X-Forwarded-Proto $scheme` 换掉客户端发来的值")
async def test_what_nginx_sends_upstream(aiohttp_server, tmp_path):
    """The page's nginx.conf in front of a server that shows the headers it got."""
    app = web.Application()
    app.router.add_get("/", forwarded_headers)
    upstream = await aiohttp_server(app)
    port = servers.free_port()
    conf = NGINX_CONF.read_text("utf-8").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    conf, count = re.subn(
        r"unix:/tmp/aiohttp-\d\.sock", f"127.0.0.1:{upstream.port}", conf
    )
    assert count == 2, conf
    cases = [
        ({}, None, ["127.0.0.1"], ["http"]),
        ({}, ("127.0.0.2", 0), ["127.0.0.2"], ["http"]),
        (
            {"X-Forwarded-For": "203.0.113.7"},
            None,
            ["203.0.113.7, 127.0.0.1"],
            ["http"],
        ),
        (SPOOF, ("127.0.0.2", 0), ["203.0.113.7, 127.0.0.2"], ["http"]),
    ]
    with servers.nginx(conf, port=port, workdir=tmp_path):
        for sent, local_addr, xff, xfp in cases:
            connector = aiohttp.TCPConnector(local_addr=local_addr)
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.get(f"http://127.0.0.1:{port}/", headers=sent) as resp,
            ):
                got = await resp.json()
            assert got == {"X-Forwarded-For": xff, "X-Forwarded-Proto": xfp}, sent


@pytest.mark.claim("Debian 上 nginx 的工作进程以 `www-data` 用户运行")
def test_debian_nginx_workers_run_as_www_data():
    lines = Path("/etc/nginx/nginx.conf").read_text("utf-8").splitlines()
    assert "user www-data;" in [line.strip() for line in lines]


# --- gunicorn -----------------------------------------------------------------------


def gunicorn_argv(port: int) -> list[str]:
    """The page's gunicorn command, on ``port``, with this environment's gunicorn."""
    [line] = [
        line
        for line in GUNICORN.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    argv = shlex.split(line)
    assert argv[0] == "gunicorn" and "127.0.0.1:8080" in argv, argv
    return [GUNICORN_PROGRAM, *(a.replace(":8080", f":{port}") for a in argv[1:])]


def gunicorn_lines(log: str) -> list[str]:
    """A gunicorn log's lines, sorted, with what changes between runs replaced."""
    master = re.search(r"Listening at: \S+ \((\d+)\)", log).group(1)
    lines = []
    for line in pages.normalize(log).splitlines():
        line = re.sub(r"^\[[^\]]*\]", "[<time>]", line)
        line = re.sub(r"gunicorn \d+(\.\d+)*$", "gunicorn <version>", line)
        line = re.sub(r"(Control socket listening at ).*", r"\1<path>", line)
        line = re.sub(rf"\b{master}\b", "<master>", line)
        line = re.sub(r"\[\d+\]", "[<worker>]", line)
        lines.append(re.sub(r"pid: \d+", "pid: <worker>", line))
    return sorted(lines)


def wait_for_log(server: servers.Running, pattern: str, count: int) -> str:
    deadline = time.monotonic() + TIMEOUT
    while len(re.findall(pattern, server.output(), re.M)) < count:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    return server.output()


async def until_new_pids(url: str, known: set[int], new: int) -> list[tuple]:
    """Bursts of 20 requests at once until ``new`` pids not in ``known`` answered.

    Workers accept from one shared socket: one after another, the connections
    mostly go to the same worker; in a burst, both take some.
    """
    answers = []
    for _ in range(10):
        answers += await asyncio.gather(*(get(url, SPOOF) for _ in range(20)))
        if len({pid for pid, _ in answers} - known) >= new:
            return answers
    raise AssertionError(f"{new} new pid(s) never answered: {Counter(answers)}")


def last_child(pid: int) -> int:
    """The end of a chain of only children (sg → sh → python), or ``pid``."""
    while children := Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        [child] = children
        pid = int(child)
    return pid


def parent_of(pid: int) -> int:
    # /proc/<pid>/stat: pid (comm) state ppid ...; comm may hold spaces.
    text = Path(f"/proc/{pid}/stat").read_text("utf-8")
    return int(text.rpartition(")")[2].split()[1])


@pytest.mark.claim("两个 worker 都是 gunicorn 主进程的子进程")
@pytest.mark.claim("两个 worker 的进程号都出现在 `X-Pid` 里")
@pytest.mark.claim("两个 worker 的计数都从 1 开始，各数各的")
@pytest.mark.claim("gunicorn 默认不记访问日志")
@pytest.mark.claim("主进程随即启动一个新的 worker")
@pytest.mark.claim("新进程的计数从 1 重新开始")
@pytest.mark.claim("gunicorn 让两个 worker 退出，然后自己退出")
async def test_gunicorn_with_two_workers(tmp_path):
    port = servers.free_port()
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}  # gunicorn's control socket goes here
    argv = gunicorn_argv(port)
    with servers.running(argv, port=port, cwd=APP_DIR, env=env) as server:
        # The page's log: what gunicorn printed while starting.
        shown = GUNICORN_LOG.read_text("utf-8")
        log = wait_for_log(server, r"^\[", len(shown.splitlines()))
        assert gunicorn_lines(log) == gunicorn_lines(shown), log
        url = f"{server.url}/"
        answers = await until_new_pids(url, set(), 2)
        pids = Counter(pid for pid, _ in answers)
        print(f"\ngunicorn: requests per worker pid: {dict(pids)}")
        assert {parent_of(pid) for pid in pids} == {server.proc.pid}, pids
        for pid in pids:
            counts = sorted(served_count(text) for p, text in answers if p == pid)
            assert counts == list(range(1, pids[pid] + 1)), (pid, counts)
        assert {text.split("，")[0] for _, text in answers} == {"客户端 127.0.0.1"}
        assert {text.split("，")[1] for _, text in answers} == {"协议 http"}
        assert server.output() == log  # no access log, nothing else
        # A worker that dies is replaced; the new process counts from 1 again.
        os.kill(answers[-1][0], signal.SIGKILL)
        wait_for_log(server, r"Booting worker with pid", 3)
        later = await until_new_pids(url, set(pids), 1)
        [fresh] = {pid for pid, _ in later} - set(pids)
        assert parent_of(fresh) == server.proc.pid
        counts = sorted(served_count(text) for pid, text in later if pid == fresh)
        assert counts == list(range(1, len(counts) + 1)), counts
    log = server.output()
    assert "GET /" not in log, log
    assert "Handling signal: int" in log and "Shutting down: Master" in log, log
    assert log.count("Worker exiting") == 2, log


@pytest.mark.claim("gunicorn 自己的 `--forwarded-allow-ips` 默认是 `127.0.0.1,::1`")
def test_gunicorn_forwarded_allow_ips_default(monkeypatch):
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert Config().forwarded_allow_ips == ["127.0.0.1", "::1"]


@pytest.mark.claim("把 `create_app` 这个对象本身交给 worker")
@pytest.mark.claim("每个 worker 启动时都抛出")
@pytest.mark.claim("aiohttp 3.14.2 起 gunicorn 随即退出")
@pytest.mark.claim("日志里有 `Worker failed to boot.`")
@pytest.mark.claim("更早的版本里主进程会一直重启 worker")
def test_gunicorn_refuses_a_plain_function(tmp_path):
    port = servers.free_port()
    argv = [
        a.replace("app:create_app()", "app:create_app") for a in gunicorn_argv(port)
    ]
    assert "app:create_app" in argv, argv
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=APP_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)},
        )
    try:
        if AIOHTTP >= Version("3.14.2"):  # CHANGES #12879
            proc.wait(TIMEOUT)
            assert proc.returncode != 0, log.read_text()
            assert "Worker failed to boot." in log.read_text()
        else:  # the arbiter boots worker after worker
            deadline = time.monotonic() + TIMEOUT
            while log.read_text().count(FACTORY_ERROR) < 3:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(servers.STOP_TIMEOUT)
    assert f"{FACTORY_ERROR}, got <function create_app " in log.read_text()


FACTORY = """\
import app


async def create_app():
    return app.create_app()
"""


@pytest.mark.claim("`async def`，这时 `app:create_app` 不带括号就行")
@pytest.mark.claim("gunicorn 绑定 Unix socket（`--bind unix:路径`）时也一样")
async def test_gunicorn_takes_an_async_factory_on_a_unix_socket(sock_dir, tmp_path):
    (tmp_path / "factory.py").write_text(FACTORY, "utf-8")
    argv = [GUNICORN_PROGRAM, "factory:create_app", "--workers", "1"]
    argv += ["--worker-class", "aiohttp.GunicornWebWorker"]
    argv += ["--bind", f"unix:{sock_dir}/gunicorn.sock"]
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "PYTHONPATH": str(tmp_path)}
    running = unix_program(
        argv, umask=0o022, workdir=tmp_path, stop=signal.SIGINT, env=env
    )
    with running as (proc, path, _):
        pid, text = await get("http://localhost/", SPOOF, unix=path)
        assert parent_of(pid) == proc.pid
    assert text == body("203.0.113.7", "https", 1)
