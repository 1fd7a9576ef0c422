"""prefix_route: one handler for every method under /path/to/; files under a prefix."""

import asyncio
import http.client
import json
import logging
import shutil
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from packaging.version import Version

import pages
from prefix_route import files
from prefix_route.app import create_app, sink_handler
from servers import python_program

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
TIMEOUT = 5


@pytest.fixture
async def client(aiohttp_client):
    """A test client for the recipe's app, served on 127.0.0.1."""
    return await aiohttp_client(create_app())


async def raw_get(port: int, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send the request target byte for byte; return the status and the body.

    aiohttp's own client would fold ".." segments before sending them.
    """
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        response = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.claim("都会进入 `sink_handler`")
@pytest.mark.parametrize("method", METHODS)
async def test_any_method_reaches_the_handler(client, method):
    resp = await client.request(method, "/path/to/some/thing")
    body = await resp.text()
    assert resp.status == 200, body
    if method != "HEAD":
        assert await resp.json() == {"method": method, "tail": "some/thing"}, body


@pytest.mark.claim("`%2F` 到了处理器手里就是普通的 `/`")
@pytest.mark.claim("`a%2Fb` 与 `a/b` 得到同样的 `tail`；`%2e%2e` 变成 `..`")
@pytest.mark.claim("请求路径里的 `%00` 解码后就是它")
@pytest.mark.claim("请求 `/path/to//etc/passwd` 时 `tail` 是 `/etc/passwd`")
@pytest.mark.parametrize(
    ("raw_path", "tail"),
    [
        ("/path/to/a", "a"),
        ("/path/to/a/b/c", "a/b/c"),
        ("/path/to/a%2Fb", "a/b"),
        ("/path/to/../../etc/passwd", "../../etc/passwd"),
        ("/path/to/%2e%2e/secret", "../secret"),
        ("/path/to//etc/passwd", "/etc/passwd"),
        ("/path/to/a%00b", "a\x00b"),
    ],
)
async def test_tail_holds_the_decoded_rest_of_the_path(client, raw_path, tail):
    status, body = await raw_get(client.port, raw_path)
    assert status == 200, body
    assert json.loads(body)["tail"] == tail, body


async def show_raw_path(request: web.Request) -> web.Response:
    raw_path = request.raw_path
    return web.json_response({"type": type(raw_path).__name__, "raw_path": raw_path})


@pytest.mark.claim("`request.raw_path`：它是一个 `str`")
@pytest.mark.claim("查询字符串也在里面（例如 `/path/to/a%2Fb?x=1`）")
async def test_raw_path_is_the_request_target_as_a_str(aiohttp_client):
    app = web.Application()
    app.router.add_get("/path/to/{tail:.+}", show_raw_path)
    client = await aiohttp_client(app)
    status, body = await raw_get(client.port, "/path/to/a%2Fb?x=1")
    assert status == 200, body
    assert json.loads(body) == {"type": "str", "raw_path": "/path/to/a%2Fb?x=1"}, body


@pytest.mark.parametrize("path", ["/path/to/", "/path/to", "/path/tox", "/", "/other"])
async def test_outside_the_prefix_is_404(client, path):
    resp = await client.get(path)
    assert resp.status == 404, await resp.text()


@pytest.mark.claim("普通的 `{name}` 变量只匹配一个路径段（不含 `/`）")
async def test_a_plain_variable_matches_one_segment(aiohttp_client):
    app = web.Application()
    app.router.add_route("*", "/path/to/{tail}", sink_handler)
    client = await aiohttp_client(app)
    resp = await client.get("/path/to/a")
    assert await resp.json() == {"method": "GET", "tail": "a"}
    resp = await client.get("/path/to/a/b")
    assert resp.status == 404, await resp.text()


@pytest.mark.claim("这时 `/path/to/` 的 `tail` 是空字符串")
async def test_star_regex_also_matches_the_bare_prefix(aiohttp_client):
    app = web.Application()
    app.router.add_route("*", "/path/to/{tail:.*}", sink_handler)
    client = await aiohttp_client(app)
    for path, tail in [("/path/to/", ""), ("/path/to/a/b", "a/b")]:
        resp = await client.get(path)
        assert await resp.json() == {"method": "GET", "tail": tail}, path


async def status_of(port: int, method: str) -> int:
    """The status a raw request with this method gets (aiohttp's client checks it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} /path/to/x HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    async with asyncio.timeout(TIMEOUT):
        status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


@pytest.mark.claim("WebDAV 的 `PROPFIND`、`MKCOL` 这类不常见的方法")
@pytest.mark.parametrize("method", ["PROPFIND", "MKCOL", "PURGE"])
async def test_methods_llhttp_knows_reach_the_handler(client, method):
    assert await status_of(client.port, method) == 200


@pytest.mark.claim(
    "只认识一张固定的方法表，表外的名字（比如 `FOO`）还没到路由就被回以 400"
)
async def test_a_made_up_method_is_refused_by_the_c_parser(client):
    assert await status_of(client.port, "FOO") == 400


@pytest.mark.claim("纯 Python 解析器放行任何合法的方法名")
@pytest.mark.claim("设置了环境变量 `AIOHTTP_NO_EXTENSIONS=1`")
def test_the_pure_python_parser_lets_a_made_up_method_through(tmp_path):
    app = Path(shutil.copy(pages.SNIPPETS / "prefix_route/app.py", tmp_path))
    with python_program(app, env={"AIOHTTP_NO_EXTENSIONS": "1"}) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("FOO", "/path/to/x")
        resp = conn.getresponse()
        body = resp.read().decode()
        conn.close()
    assert resp.status == 200, body
    assert json.loads(body) == {"method": "FOO", "tail": "x"}, body


# --- files under a prefix -----------------------------------------------------------

SECRET = b"a file outside the served folder"
# add_static() answers a file name that is an absolute path (/static//tmp/...)
# with 403 up to aiohttp 3.13.2 and with 404 from 3.13.3 on (web_urldispatcher.py).
STATIC_ABSOLUTE = 404 if Version(aiohttp.__version__) >= Version("3.13.3") else 403


@pytest.fixture
def folder(tmp_path) -> Path:
    """tmp_path/public is served; tmp_path/secret.txt, outside it, must not be."""
    public = tmp_path / "public"
    public.mkdir()
    (public / "hello.txt").write_text("你好\n", "utf-8")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (public / "link.txt").symlink_to(tmp_path / "secret.txt")
    return public


def escapes(folder: Path, prefix: str) -> list[str]:
    """Request targets that name tmp_path/secret.txt from under ``prefix``."""
    secret = folder.parent / "secret.txt"
    return [
        f"{prefix}/../secret.txt",
        f"{prefix}/%2e%2e/secret.txt",
        f"{prefix}/..%2Fsecret.txt",
        f"{prefix}/{secret}",  # //tmp/.../secret.txt
        f"{prefix}/link.txt",
    ]


@pytest.fixture
async def files_client(aiohttp_client, folder):
    """files.py's app serving ``folder`` on 127.0.0.1."""
    return await aiohttp_client(files.create_app(folder))


@pytest.mark.parametrize("prefix", ["/static", "/files"])
async def test_both_routes_send_a_file_of_the_folder(files_client, prefix):
    status, body = await raw_get(files_client.port, f"{prefix}/hello.txt")
    assert (status, body.decode()) == (200, "你好\n"), body


@pytest.mark.claim("它自己做了上面这些检查")
@pytest.mark.claim("经过符号链接指向目录之外时")
@pytest.mark.claim("确认两条路由都以上面说的状态码拒绝了它们")
@pytest.mark.claim("同时解析 `..` 与符号链接")
@pytest.mark.claim("上一步的检查正好能把它拦下")
@pytest.mark.claim("在 aiohttp 3.13.3 之前得到的是 403")
@pytest.mark.parametrize("prefix", ["/static", "/files"])
async def test_both_routes_refuse_what_leaves_the_folder(files_client, folder, prefix):
    secret = folder.parent / "secret.txt"
    for target in [*escapes(folder, prefix), f"{prefix}/a%00b"]:
        status, body = await raw_get(files_client.port, target)
        absolute = target == f"{prefix}/{secret}"
        expected = STATIC_ABSOLUTE if absolute and prefix == "/static" else 404
        assert status == expected, (target, body)
        assert SECRET not in body, target


# add_static(follow_symlinks=True) let `..` out of the folder before 3.9.2 (#8079).
DOTS_CHECKED = Version(aiohttp.__version__) >= Version("3.9.2")


@pytest.mark.claim("符号链接这一项只在 `follow_symlinks` 取默认的 `False` 时成立")
@pytest.mark.claim("经过它的请求能拿到目录之外的文件")
@pytest.mark.claim("aiohttp 3.9.2 之前，`follow_symlinks=True` 时连 `..` 也不检查")
async def test_follow_symlinks_serves_what_a_link_points_to(aiohttp_client, folder):
    app = web.Application()
    app.router.add_static("/static", folder, follow_symlinks=True)
    client = await aiohttp_client(app)
    assert await raw_get(client.port, "/static/link.txt") == (200, SECRET)
    status, body = await raw_get(client.port, "/static/../secret.txt")
    if DOTS_CHECKED:
        assert status == 404 and SECRET not in body, (status, body)
    else:  # 3.9.0, 3.9.1: out of the folder
        assert (status, body) == (200, SECRET)


async def test_files_py_serves_the_current_folder_by_default(
    aiohttp_client, folder, monkeypatch
):
    monkeypatch.chdir(folder)
    client = await aiohttp_client(files.create_app())
    status, body = await raw_get(client.port, "/files/hello.txt")
    assert (status, body.decode()) == (200, "你好\n"), body


@pytest.mark.claim("`web.FileResponse` 不做这些检查，给它什么路径就发送什么文件")
@pytest.mark.claim("都能拿到 `base` 之外的文件")
@pytest.mark.claim('`base / "/etc/passwd"` 会直接丢掉 `base`')
@pytest.mark.claim("而不做检查的 `FileResponse` 处理器把那个文件发了出去")
async def test_file_response_sends_whatever_path_it_is_given(aiohttp_client, folder):
    async def unchecked(request: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / request.match_info["tail"])

    app = web.Application()
    app.router.add_get("/file/{tail:.+}", unchecked)
    client = await aiohttp_client(app)
    for target in escapes(folder, "/file"):
        assert await raw_get(client.port, target) == (200, SECRET), target


@pytest.mark.claim("`resolve()` 遇到它抛出 `ValueError`，请求以 500 告终")
async def test_a_nul_byte_without_the_check_is_a_500(aiohttp_client, folder, caplog):
    async def no_nul_check(request: web.Request) -> web.FileResponse:
        path = (folder / request.match_info["tail"]).resolve()
        if not path.is_relative_to(folder):
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    app = web.Application()
    app.router.add_get("/file/{tail:.+}", no_nul_check)
    client = await aiohttp_client(app)
    status, _ = await raw_get(client.port, "/file/a%00b")
    assert status == 500
    errors = [r.exc_info[1] for r in caplog.records if r.levelno >= logging.ERROR]
    assert [type(e) for e in errors] == [ValueError], errors
    # "embedded null byte" up to Python 3.12, "lstat: embedded null character
    # in path" on 3.13: a ValueError either way.
    assert "embedded null" in str(errors[0]), errors
