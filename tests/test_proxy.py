"""proxy: aiohttp through a real HTTP proxy and a real SOCKS5 proxy, with credentials.

The proxies are real programs started here on loopback: tinyproxy with the
page's tinyproxy.conf (Basic auth, CONNECT, a Via request header, outgoing
connections from 127.0.0.2) and microsocks with the command the page gives
(user and password, outgoing connections from 127.0.0.2). The page's programs
read the proxy from the environment; here they run with that environment
pointing at these proxies, and what they print is compared with what the page
shows. A test counts a request as carried by a proxy when the proxy's log names
it and the target saw the proxy's address 127.0.0.2, and as direct when the
proxy's log has nothing new and the target saw 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import signal
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import aiohttp
import aiohttp_socks
import pytest
from aiohttp import web

import pages
import servers

FOLDER = pages.SNIPPETS / "proxy"
MODULES = ("targets", "via_proxy", "credentials", "env_proxy", "socks")
USER, PASSWORD = "user", "secret"  # tinyproxy.conf's BasicAuth, microsocks' -u/-P
PROXY_ENV = [
    name
    for scheme in ("http", "https", "ws", "wss", "all", "no")
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY")
]


@dataclass
class ProxyLog:
    """A proxy's log file, read from a mark on."""

    path: Path

    def text(self) -> str:
        return self.path.read_text(errors="replace") if self.path.exists() else ""

    @contextlib.contextmanager
    def new_lines(self) -> Iterator[list[str]]:
        """Yield a list that holds, after the block, the lines logged meanwhile."""
        start, lines = len(self.text()), []
        yield lines
        lines += self.text()[start:].splitlines()


@dataclass
class Proxy:
    port: int
    log: ProxyLog

    def url(self, scheme: str = "http", credentials: str = "") -> str:
        at = f"{credentials}@" if credentials else ""
        return f"{scheme}://{at}127.0.0.1:{self.port}"


def tinyproxy_requests(lines: list[str]) -> list[str]:
    """The request lines tinyproxy logged, e.g. ``GET http://127.0.0.1:1234/``."""
    found = [
        re.search(r"Request \(file descriptor \d+\): (.*) HTTP/1\.1", line)
        for line in lines
    ]
    return [m.group(1) for m in found if m]


def socks_connections(lines: list[str]) -> list[str]:
    """Where microsocks connected its clients to, e.g. ``127.0.0.1:1234``."""
    found = [re.search(r"connected to (\S+)", line) for line in lines]
    return [m.group(1) for m in found if m]


@pytest.fixture(scope="module")
def tinyproxy(tmp_path_factory) -> Iterator[Proxy]:
    """tinyproxy in the foreground with the page's configuration, on a free port."""
    folder = tmp_path_factory.mktemp("tinyproxy")
    port = servers.free_port()
    config = (pages.SNIPPETS / "proxy/tinyproxy.conf").read_text("utf-8")
    assert "Port 8888\n" in config
    config = config.replace("Port 8888\n", f"Port {port}\n")
    config += f'LogFile "{folder / "tinyproxy.log"}"\n'  # written line by line
    (folder / "tinyproxy.conf").write_text(config, "utf-8")
    argv = [servers.require_program("tinyproxy"), "-d", "-c", "tinyproxy.conf"]
    with servers.running(argv, port=port, cwd=folder, stop_signal=signal.SIGTERM):
        yield Proxy(port, ProxyLog(folder / "tinyproxy.log"))


@pytest.fixture(scope="module")
def microsocks() -> Iterator[Proxy]:
    """microsocks with the page's command line, on a free port."""
    port = servers.free_port()
    argv = [servers.require_program("microsocks"), "-i", "127.0.0.1", "-p", str(port)]
    argv += ["-u", USER, "-P", PASSWORD, "-b", "127.0.0.2"]
    # microsocks has no clean shutdown: SIGTERM ends it with the default action
    with servers.running(
        argv,
        port=port,
        cwd=Path.cwd(),
        stop_signal=signal.SIGTERM,
        expect_clean_exit=False,
    ) as running:
        yield Proxy(port, ProxyLog(running.log))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path) -> None:
    """No proxy variables and no ~/.netrc but what a test sets."""
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    for name in ("PROXY_URL", "SOCKS_URL", "NETRC", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture(autouse=True)
async def settle() -> AsyncIterator[None]:
    """Wait until the test's connections have finished closing (at most 1 s).

    A TLS connection finishes closing after its session or server has closed
    it (aiohttp's docs, "Graceful Shutdown"); one still closing when the test's
    loop ends is found by the garbage collector in a later test.
    """
    yield
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(1):
        # the loop's sockets, by file descriptor (closing ones too, until collected)
        while not all(t.is_closing() for t in list(loop._transports.values())):
            await asyncio.sleep(0.01)
    await asyncio.sleep(0)  # the callbacks that close the sockets of those closing


@pytest.fixture
def snippets() -> Iterator[dict[str, ModuleType]]:
    """The page's programs imported as a reader runs them: from their folder."""
    with pages.imported(FOLDER, *MODULES) as modules:
        yield modules


def shown(path: str) -> str:
    """A file of snippets/ as the page shows it, normalised."""
    return pages.normalize((pages.SNIPPETS / path).read_text("utf-8"))


def printed(capsys) -> str:
    return pages.normalize(capsys.readouterr().out)


# --- the page's programs ------------------------------------------------------------


@pytest.mark.claim("不经过代理，目标服务器看到的对端是 127.0.0.1")
async def test_targets_answer_directly(snippets, capsys):
    await snippets["targets"].main()
    assert printed(capsys) == shown("proxy/targets.txt")


@pytest.mark.claim("请求行里是完整的 URL")
@pytest.mark.claim("把每个请求的请求行记进日志")
@pytest.mark.claim("aiohttp 先给代理发 `CONNECT 目标主机:端口`，凭据放在这个请求上")
@pytest.mark.claim("代理看不到请求的内容")
@pytest.mark.claim("请求头里有 tinyproxy 加上的 `Via`")
@pytest.mark.claim("`Proxy-Authorization` 没有到达目标，tinyproxy 用完就去掉了")
@pytest.mark.claim("`https://` 目标的对端同样是 127.0.0.2，但没有 `Via`")
async def test_via_proxy(snippets, capsys, monkeypatch, tinyproxy):
    monkeypatch.setenv("PROXY_URL", tinyproxy.url(credentials=f"{USER}:{PASSWORD}"))
    with tinyproxy.log.new_lines() as lines:
        await snippets["via_proxy"].main()
    out = capsys.readouterr().out
    assert pages.normalize(out) == shown("proxy/via_proxy.txt")
    http_host, https_host = re.findall(r"^https?://(\S+)/ →", out, re.M)
    # the http request went to the proxy whole, the https one only as CONNECT
    assert tinyproxy_requests(lines) == [
        f"GET http://{http_host}/",
        f"CONNECT {https_host}",
    ], lines


@pytest.mark.claim("没有设置时，程序直接连接目标，或者说明缺了什么之后退出")
async def test_without_proxy_variables_the_programs_go_direct(
    snippets, capsys, tinyproxy, microsocks
):
    with (
        tinyproxy.log.new_lines() as http_lines,
        microsocks.log.new_lines() as socks_lines,
    ):
        await snippets["via_proxy"].main()
        direct = capsys.readouterr().out
        await snippets["env_proxy"].main()
        env_direct = capsys.readouterr().out
        await snippets["credentials"].main()
        await snippets["socks"].main()
        told = capsys.readouterr().out
    assert direct.count("对端 127.0.0.1，Via: 无") == 2, direct
    assert env_direct.count("对端 127.0.0.1，Via: 无") == 6, env_direct
    assert told.splitlines() == [
        "没有设置 PROXY_URL：先起一个要求认证的代理，再把它的地址放进 PROXY_URL",
        "没有设置 SOCKS_URL：先起一个 SOCKS5 代理，再把它的地址放进 SOCKS_URL",
    ]
    assert http_lines == [] and socks_connections(socks_lines) == []


@pytest.mark.claim("它对 `http://` 和 `https://` 目标都有效，也没有弃用警告")
@pytest.mark.claim("aiohttp 把它当成普通的响应交给你，`resp.status` 是 407")
@pytest.mark.claim("`url` 是代理的地址，不是目标的")
@pytest.mark.claim("aiohttp 把 `proxy_headers` 只放进 `CONNECT` 请求")
@pytest.mark.claim("每次各发出一条 `DeprecationWarning`")
@pytest.mark.claim("tinyproxy 1.11.1 这时回的是 401，不是 407")
@pytest.mark.claim("`url` 带着代理 URL 里的用户名和密码")
async def test_credentials(snippets, capsys, monkeypatch, tinyproxy):
    monkeypatch.setenv("PROXY_URL", tinyproxy.url())
    with tinyproxy.log.new_lines() as lines:
        await snippets["credentials"].main()
    assert printed(capsys) == shown("proxy/credentials.txt")
    # every attempt reached the proxy: 5 whole http requests, 5 CONNECTs
    requests = [pages.normalize(r) for r in tinyproxy_requests(lines)]
    assert requests == 5 * ["GET http://127.0.0.1:<port>/"] + 5 * [
        "CONNECT 127.0.0.1:<port>"
    ], lines


@pytest.mark.claim("`raise_for_status=True` 时才抛出 `aiohttp.ClientResponseError`")
@pytest.mark.claim("它是 `aiohttp.ClientResponseError` 的子类，`status` 属性是 407")
async def test_the_407_without_credentials(snippets, tinyproxy):
    async with snippets["targets"].serve() as site, aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientResponseError) as plain:
            await session.get(
                site.http_url, proxy=tinyproxy.url(), raise_for_status=True
            )
        with pytest.raises(aiohttp.ClientHttpProxyError) as tunnel:
            await session.get(
                site.https_url, proxy=tinyproxy.url(), ssl=site.ssl_context
            )
    assert type(plain.value) is aiohttp.ClientResponseError
    assert plain.value.status == 407
    assert isinstance(tunnel.value, aiohttp.ClientResponseError)
    assert tunnel.value.status == 407
    assert tunnel.value.message == "Proxy Authentication Required"


@pytest.mark.claim("作为会话的默认值")
async def test_a_session_wide_proxy(snippets, tinyproxy):
    proxy = tinyproxy.url(credentials=f"{USER}:{PASSWORD}")
    with tinyproxy.log.new_lines() as lines:
        async with (
            snippets["targets"].serve() as site,
            aiohttp.ClientSession(proxy=proxy) as session,
        ):
            async with session.get(site.http_url) as resp:
                text = await resp.text()
    assert "对端 127.0.0.2，Via: 1.1 tinyproxy" in text, text
    assert len(tinyproxy_requests(lines)) == 1, lines


# --- trust_env ------------------------------------------------------------------------


@pytest.mark.claim("`NO_PROXY` 里的 `localhost` 直接连接")
async def test_env_proxy(snippets, capsys, monkeypatch, tinyproxy):
    proxy = tinyproxy.url(credentials=f"{USER}:{PASSWORD}")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "localhost")
    with tinyproxy.log.new_lines() as lines:
        await snippets["env_proxy"].main()
    assert printed(capsys) == shown("proxy/env_proxy.txt")
    requests = [pages.normalize(r) for r in tinyproxy_requests(lines)]
    # trust_env=True only, and not the request to localhost
    assert requests == ["GET http://127.0.0.1:<port>/", "CONNECT 127.0.0.1:<port>"]


async def fetch_via_env(site, **kwargs) -> str:
    """What the target saw of a GET from a trust_env session."""
    async with aiohttp.ClientSession(trust_env=True) as session:
        async with session.get(site.http_url, ssl=site.ssl_context, **kwargs) as resp:
            return await resp.text()


VIA_PROXY = "对端 127.0.0.2，Via: 1.1 tinyproxy"
DIRECT = "对端 127.0.0.1，Via: 无"
DEAD = "http://127.0.0.1:9"  # discard: nothing listens there


@pytest.mark.claim("`ClientSession` 默认 `trust_env=False`，环境变量里的代理不起作用")
async def test_the_default_session_ignores_the_environment(snippets, monkeypatch):
    parameter = inspect.signature(aiohttp.ClientSession).parameters["trust_env"]
    assert parameter.default is False
    monkeypatch.setenv("HTTP_PROXY", DEAD)
    async with snippets["targets"].serve() as site:
        async with aiohttp.ClientSession() as session:
            async with session.get(site.http_url) as resp:
                assert DIRECT in await resp.text()


@pytest.mark.claim("`http://` 目标用 `HTTP_PROXY`，`https://` 目标用 `HTTPS_PROXY`")
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_each_scheme_reads_its_own_variable(
    snippets, monkeypatch, tinyproxy, scheme
):
    """The scheme's variable names the proxy, the other one a dead address."""
    proxy = tinyproxy.url(credentials=f"{USER}:{PASSWORD}")
    other = "https" if scheme == "http" else "http"
    monkeypatch.setenv(f"{scheme.upper()}_PROXY", proxy)
    monkeypatch.setenv(f"{other.upper()}_PROXY", DEAD)
    async with snippets["targets"].serve() as site:
        url = {"http": site.http_url, "https": site.https_url}
        async with aiohttp.ClientSession(trust_env=True) as session:
            with tinyproxy.log.new_lines() as lines:
                async with session.get(url[scheme], ssl=site.ssl_context) as resp:
                    assert "对端 127.0.0.2" in await resp.text()
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get(url[other], ssl=site.ssl_context)
    method = "GET" if scheme == "http" else "CONNECT"
    requests = tinyproxy_requests(lines)
    assert [r.split()[0] for r in requests] == [method], lines


@pytest.mark.parametrize(
    ("env", "outcome"),
    [
        pytest.param(
            {"http_proxy": "{proxy}", "HTTP_PROXY": DEAD}, VIA_PROXY, id="lower-wins"
        ),
        pytest.param({"ALL_PROXY": "{proxy}"}, DIRECT, id="all-proxy-ignored"),
        pytest.param(
            {"HTTP_PROXY": "{proxy}", "NO_PROXY": "*"}, DIRECT, id="no-proxy-star"
        ),
        pytest.param(
            {"HTTP_PROXY": "{proxy}", "NO_PROXY": "127.0.0.0/8"},
            VIA_PROXY,
            id="no-proxy-cidr",
        ),
        pytest.param(
            {"HTTP_PROXY": "{proxy}", "NO_PROXY": "127.0.0.1:{target_port}"},
            VIA_PROXY,
            id="no-proxy-port",
        ),
    ],
)
@pytest.mark.claim("大小写都设了时，小写的 `http_proxy` 优先")
@pytest.mark.claim("`ALL_PROXY` 不起作用：aiohttp 只取")
@pytest.mark.claim("`*` 表示全部直接连接")
@pytest.mark.claim("都匹配不上，请求照样走代理")
async def test_env_rules(snippets, monkeypatch, tinyproxy, env, outcome):
    async with snippets["targets"].serve() as site:
        target_port = site.http_url.rsplit(":", 1)[1].strip("/")
        proxy = tinyproxy.url(credentials=f"{USER}:{PASSWORD}")
        for name, value in env.items():
            monkeypatch.setenv(name, value.format(proxy=proxy, target_port=target_port))
        with tinyproxy.log.new_lines() as lines:
            text = await fetch_via_env(site)
    assert outcome in text, text
    assert len(tinyproxy_requests(lines)) == (outcome == VIA_PROXY), lines


@pytest.mark.claim("按后缀匹配：`example.com` 也包括 `api.example.com`")
def test_no_proxy_matches_suffixes():
    # aiohttp asks urllib.request.proxy_bypass (helpers.py); on Linux that is this:
    assert urllib.request.proxy_bypass is urllib.request.proxy_bypass_environment
    rule = {"no": "example.com"}
    assert urllib.request.proxy_bypass_environment("api.example.com", rule)
    assert urllib.request.proxy_bypass_environment("example.com", rule)
    assert not urllib.request.proxy_bypass_environment("example.org", rule)


@pytest.mark.claim("代理地址写成 `https://` 的那一项被忽略")
@pytest.mark.claim("`HTTPS proxies ... are not supported, ignoring`，请求直接连接目标")
async def test_an_https_proxy_address_is_ignored(
    snippets, monkeypatch, caplog, tinyproxy
):
    proxy = tinyproxy.url("https", credentials=f"{USER}:{PASSWORD}")
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    async with snippets["targets"].serve() as site:
        with tinyproxy.log.new_lines() as lines, caplog.at_level(logging.WARNING):
            text = await fetch_via_env(site)
    assert DIRECT in text, text
    assert lines == []
    warned = [r for r in caplog.records if r.name == "aiohttp.client"]
    assert warned and all(
        re.fullmatch(
            r"HTTPS proxies https://127\.0\.0\.1:\d+ are not supported, ignoring",
            r.getMessage(),
        )
        for r in warned
    ), [r.getMessage() for r in warned]


async def authorization_seen(session: aiohttp.ClientSession, **kwargs) -> str:
    """The Authorization a plain aiohttp server receives from ``session``."""

    async def show(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("Authorization", "无"))

    app = web.Application()
    app.router.add_get("/", show)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        async with session.get(f"http://127.0.0.1:{port}/", **kwargs) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.text()
    finally:
        await runner.cleanup()


@pytest.mark.claim("（默认 `~/.netrc`）里找代理主机的条目")
@pytest.mark.claim("没有带认证的请求会把它作为 `Authorization` 发给目标")
@pytest.mark.parametrize("where", ["NETRC", "~/.netrc"])
async def test_netrc_gives_the_proxy_credentials(
    monkeypatch, tmp_path, tinyproxy, where
):
    # the proxy as "localhost", the target as 127.0.0.1: two hosts, two entries
    netrc = f"machine localhost login {USER} password {PASSWORD}\n"
    netrc += "machine 127.0.0.1 login target password target-secret\n"
    path = tmp_path / ("netrc" if where == "NETRC" else ".netrc")
    path.write_text(netrc)
    path.chmod(0o600)
    if where == "NETRC":
        monkeypatch.setenv("NETRC", str(path))
    monkeypatch.setenv("HTTP_PROXY", f"http://localhost:{tinyproxy.port}")
    with tinyproxy.log.new_lines() as lines:
        async with aiohttp.ClientSession(trust_env=True) as session:
            seen = await authorization_seen(session)
    assert len(tinyproxy_requests(lines)) == 1, lines  # 200: the proxy took them
    assert seen == aiohttp.encode_basic_auth("target", "target-secret")


@pytest.mark.claim("请求自己带着 `Authorization` 请求头时，aiohttp 不发请求")
@pytest.mark.claim("抛出 `ValueError: Cannot combine AUTHORIZATION header")
@pytest.mark.parametrize("entry", [True, False], ids=["netrc-entry", "no-entry"])
async def test_netrc_and_an_authorization_header(
    monkeypatch, tmp_path, aiohttp_server, entry
):
    seen: list[str] = []

    async def show(request: web.Request) -> web.Response:
        seen.append(request.headers["Authorization"])
        return web.Response()

    app = web.Application()
    app.router.add_get("/", show)
    server = await aiohttp_server(app)
    path = tmp_path / "netrc"
    machine = "127.0.0.1" if entry else "elsewhere.example"
    path.write_text(f"machine {machine} login target password target-secret\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    own = {"Authorization": aiohttp.encode_basic_auth("reader", "secret")}
    async with aiohttp.ClientSession(trust_env=True) as session:
        if entry:
            with pytest.raises(ValueError) as raised:
                await session.get(server.make_url("/"), headers=own)
            assert str(raised.value) == (
                "Cannot combine AUTHORIZATION header with AUTH argument "
                "or credentials encoded in URL"
            )
        else:
            async with session.get(server.make_url("/"), headers=own) as resp:
                assert resp.status == 200
    assert seen == ([] if entry else [own["Authorization"]])


@pytest.mark.claim("给了 `proxy=` 的请求不看环境变量")
async def test_proxy_argument_wins_over_the_environment(
    snippets, monkeypatch, tinyproxy
):
    monkeypatch.setenv("HTTP_PROXY", DEAD)
    async with snippets["targets"].serve() as site:
        with tinyproxy.log.new_lines() as lines:
            text = await fetch_via_env(
                site, proxy=tinyproxy.url(credentials=f"{USER}:{PASSWORD}")
            )
    assert VIA_PROXY in text, text
    assert len(tinyproxy_requests(lines)) == 1, lines


# --- SOCKS5 ---------------------------------------------------------------------------


@pytest.mark.claim("会话里的每个请求都经过这个代理")
@pytest.mark.claim("两个目标看到的对端都是 127.0.0.2")
async def test_socks(snippets, capsys, monkeypatch, microsocks):
    monkeypatch.setenv("SOCKS_URL", microsocks.url("socks5", f"{USER}:{PASSWORD}"))
    with microsocks.log.new_lines() as lines:
        await snippets["socks"].main()
    out = capsys.readouterr().out
    assert pages.normalize(out) == shown("proxy/socks.txt")
    urls = re.findall(r"^https?://(\S+)/ →", out, re.M)
    # both requests, and only they (the refused ones never got a connection)
    assert socks_connections(lines) == urls and len(urls) == 2, lines


@pytest.mark.claim("把 `socks5://` 地址交给它，aiohttp 照样按 HTTP 代理发请求")
@pytest.mark.claim("`HTTP_PROXY` 写成 `socks5://` 地址时")
@pytest.mark.parametrize("how", ["proxy=", "HTTP_PROXY"])
async def test_a_socks_url_is_spoken_to_as_http(snippets, monkeypatch, microsocks, how):
    socks_url = microsocks.url("socks5", f"{USER}:{PASSWORD}")
    kwargs = {"proxy": socks_url} if how == "proxy=" else {}
    if how == "HTTP_PROXY":
        monkeypatch.setenv("HTTP_PROXY", socks_url)
    async with snippets["targets"].serve() as site:
        with pytest.raises(aiohttp.ClientResponseError) as raised:
            await fetch_via_env(site, **kwargs)
    assert raised.value.status == 400
    assert raised.value.message.startswith("Bad status line"), raised.value.message


@pytest.mark.claim("`ALL_PROXY=socks5://...` 不起作用")
async def test_all_proxy_socks_is_ignored(snippets, monkeypatch, microsocks):
    monkeypatch.setenv("ALL_PROXY", microsocks.url("socks5", f"{USER}:{PASSWORD}"))
    async with snippets["targets"].serve() as site:
        with microsocks.log.new_lines() as lines:
            text = await fetch_via_env(site)
    assert DIRECT in text, text
    assert socks_connections(lines) == []


SOCKS_ERRORS = (aiohttp_socks.ProxyError, aiohttp_socks.ProxyConnectionError)


@pytest.mark.claim("不是 `aiohttp.ClientError` 的子类")
@pytest.mark.claim("接不住它们")
async def test_socks_errors_are_not_client_errors(snippets, microsocks):
    assert not issubclass(aiohttp_socks.ProxyError, aiohttp.ClientError)
    assert not issubclass(aiohttp_socks.ProxyConnectionError, aiohttp.ClientError)
    closed = servers.free_port()  # nothing listens there
    failures = []
    for url in (
        microsocks.url("socks5", f"{USER}:wrong"),
        f"socks5://{USER}:{PASSWORD}@127.0.0.1:{closed}",
    ):
        connector = aiohttp_socks.ProxyConnector.from_url(url)
        async with snippets["targets"].serve() as site:
            async with aiohttp.ClientSession(connector=connector) as session:
                with pytest.raises(SOCKS_ERRORS) as raised:
                    await session.get(site.http_url)
        assert not isinstance(raised.value, aiohttp.ClientError)
        failures.append(type(raised.value))
    assert failures == [aiohttp_socks.ProxyError, aiohttp_socks.ProxyConnectionError]
