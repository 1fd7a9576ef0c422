"""streaming_download: a large body streamed to disk, a broken transfer, a resumed one.

Every server is the page's app.py (or a small aiohttp app of this module) on
127.0.0.1; the files are real files in tmp_path; memory is what tracemalloc
counts in this process while the download runs.
"""

import asyncio
import hashlib
import os
import time
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest
from aiohttp import web

import pages

FOLDER = pages.SNIPPETS / "streaming_download"
MODULES = ("app", "download", "memory", "resume")
MiB = 2**20
SMALL = 4 * MiB  # the recipe's own tests; the printed outputs use the reader's size
TIMEOUT = 20


@pytest.fixture
def snippets() -> dict[str, ModuleType]:
    """The page's programs imported as a reader runs them: from their folder."""
    with pages.imported(FOLDER, *MODULES) as modules:
        yield modules


class Served:
    """An app on 127.0.0.1 and the requests it received (method, path, Range)."""

    def __init__(self, server) -> None:
        self.server = server
        self.requests: list[tuple[str, str | None]] = []

    @property
    def app(self) -> web.Application:
        return self.server.app

    def url(self, path: str = "/big.bin") -> str:
        return str(self.server.make_url(path))


@pytest.fixture
def serve(aiohttp_server, snippets):
    """serve(size, drop_first=False): the page's app with a file of ``size`` bytes.

    With ``drop_first`` the first request gets half the file and a closed
    connection, as the page's ?drop_after does, without asking for it.
    """

    async def start(size: int = SMALL, drop_first: bool = False) -> Served:
        app_module = snippets["app"]
        served: Served

        @web.middleware
        async def record(request: web.Request, handler):
            served.requests.append((request.path_qs, request.headers.get("Range")))
            if drop_first and len(served.requests) == 1:
                app = request.app
                path, total = app[app_module.BIG_FILE], app[app_module.BIG_FILE_SIZE]
                return await app_module.send_then_drop(request, path, total, total // 2)
            return await handler(request)

        app = app_module.create_app(size)
        app.middlewares.append(record)
        served = Served(await aiohttp_server(app))
        return served

    return start


def shown(name: str, url: str) -> str:
    """snippets/streaming_download/<name>, pointed at ``url``."""
    text = (FOLDER / name).read_text("utf-8")
    return text.replace("http://127.0.0.1:8080/big.bin", url)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the server -------------------------------------------------------------------


@pytest.mark.claim("每次生成的都一样")
@pytest.mark.claim("临时目录连同文件一起删除")
async def test_the_file_is_the_same_every_time_and_removed_at_exit(
    aiohttp_server, snippets
):
    app_module = snippets["app"]
    digests, paths = [], []
    for _ in range(2):
        server = await aiohttp_server(app_module.create_app(SMALL))
        path = server.app[app_module.BIG_FILE]
        assert path.stat().st_size == SMALL
        digests.append((sha256(path), server.app[app_module.BIG_FILE_SHA256]))
        paths.append(path)
        # no two 1 MiB blocks alike: a piece written at the wrong place shows
        assert len(set(blocks(path))) == SMALL // MiB
        await server.close()
    assert not any(p.exists() or p.parent.exists() for p in paths)
    assert digests[0] == digests[1]
    assert digests[0][0] == digests[0][1]


def blocks(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [data[i : i + MiB] for i in range(0, len(data), MiB)]


@pytest.mark.claim("`/big.bin.sha256` 给出文件的 sha256，格式和 `sha256sum` 的输出一样")
async def test_the_digest_in_sha256sum_format(serve, tmp_path):
    served = await serve()
    async with aiohttp.ClientSession() as session:
        async with session.get(served.url("/big.bin")) as resp:
            (tmp_path / "big.bin").write_bytes(await resp.read())
        async with session.get(served.url("/big.bin.sha256")) as resp:
            line = await resp.text()
    proc = await asyncio.create_subprocess_exec(
        "sha256sum",
        "big.bin",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert line == out.decode(), line


RANGES = [
    # (Range, status, Content-Range, first byte, length)
    ("bytes=100-", 206, f"bytes 100-{SMALL - 1}/{SMALL}", 100, SMALL - 100),
    ("bytes=0-", 206, f"bytes 0-{SMALL - 1}/{SMALL}", 0, SMALL),
    ("bytes=10-19", 206, f"bytes 10-19/{SMALL}", 10, 10),
    (f"bytes={SMALL}-", 416, f"bytes */{SMALL}", 0, 0),
    (f"bytes={SMALL + 5}-", 416, f"bytes */{SMALL}", 0, 0),
    (None, 200, None, 0, SMALL),
]


@pytest.mark.claim("它只发从起点到末尾的部分")
@pytest.mark.claim("回 `206 Partial Content`，响应头 `Content-Range` 写明是哪一段")
@pytest.mark.claim("起点不在文件里时回 416")
@pytest.mark.claim("`Content-Range` 是 `bytes */文件大小`")
@pytest.mark.claim("200 和 206 响应都带 `Accept-Ranges: bytes`")
@pytest.mark.claim("416 不带")
@pytest.mark.claim("206 响应的 `Content-Length` 只是剩下那段")
@pytest.mark.parametrize(("rng", "status", "content_range", "start", "length"), RANGES)
async def test_file_response_answers_range(
    serve, snippets, rng, status, content_range, start, length
):
    served = await serve()
    whole = served.app[snippets["app"].BIG_FILE].read_bytes()
    headers = {"Range": rng} if rng else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(served.url(), headers=headers) as resp:
            body = await resp.read()
            assert resp.status == status, await resp.text()
            assert resp.headers.get("Content-Range") == content_range
            if status == 416:
                assert "Accept-Ranges" not in resp.headers
            else:
                assert resp.headers["Accept-Ranges"] == "bytes"
                assert resp.content_length == length
    assert body == (whole[start : start + length] if status != 416 else b"")


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "²", ""])
async def test_drop_after_must_be_a_number(serve, value):
    served = await serve()
    async with aiohttp.ClientSession() as session:
        async with session.get(served.url(), params={"drop_after": value}) as resp:
            assert resp.status == 400, await resp.text()


# --- memory -----------------------------------------------------------------------


@pytest.mark.claim("`read_whole()` 的峰值是文件大小的两倍")
async def test_memory_prints_what_the_page_shows(serve, snippets, tmp_path, capsys):
    served = await serve(snippets["app"].SIZE)
    await snippets["memory"].main(served.url(), tmp_path / "big.bin")
    assert capsys.readouterr().out == shown("memory.txt", served.url())


@pytest.mark.claim("测试里 4 MiB 和 16 MiB 的文件，峰值都不到 2 MiB")
@pytest.mark.claim("所以读得慢也不会把整个文件攒进内存")
@pytest.mark.claim("测试里每写一块就等 1 毫秒，峰值同样不到 2 MiB")
@pytest.mark.parametrize("size", [4 * MiB, 16 * MiB])
@pytest.mark.parametrize("slow", [False, True], ids=["fast", "slow-writer"])
async def test_streaming_peak_does_not_grow_with_the_file(
    serve, snippets, tmp_path, size, slow
):
    memory = snippets["memory"]
    served = await serve(size)
    path = tmp_path / "big.bin"

    async def slow_stream(session, url, path) -> int:
        async with session.get(url) as resp:
            with path.open("wb") as f:
                async for chunk in resp.content.iter_chunked(memory.CHUNK_SIZE):
                    f.write(chunk)
                    await asyncio.sleep(0.001)  # the server is far faster
                return f.tell()

    save = slow_stream if slow else memory.stream_to_file
    async with aiohttp.ClientSession() as session:
        written, peak = await memory.peak_of(save, session, served.url(), path)
        whole, whole_peak = await memory.peak_of(
            memory.read_whole, session, served.url(), tmp_path / "whole.bin"
        )
    assert written == whole == size
    assert sha256(path) == served.app[snippets["app"].BIG_FILE_SHA256]
    assert peak < 2 * MiB, peak
    assert whole_peak >= 2 * size, whole_peak


# --- downloading ------------------------------------------------------------------


@pytest.mark.claim("默认的超时是 `ClientTimeout(total=300, sock_connect=30)`")
@pytest.mark.claim("`total` 包括读完响应体的时间")
@pytest.mark.claim("超过 5 分钟就抛出 `asyncio.TimeoutError`")
@pytest.mark.claim("哪怕数据一直在来")
@pytest.mark.claim("连续 30 秒收不到数据才算超时")
@pytest.mark.claim("是 `aiohttp.ClientConnectionError` 的子类，`download()` 会续传")
async def test_timeouts(aiohttp_server, snippets, tmp_path, capsys):
    """The default total limit ends a download that is still receiving data."""
    async with aiohttp.ClientSession() as session:
        assert session.timeout == aiohttp.ClientTimeout(total=300, sock_connect=30)

    # Data every 0.05 s for 0.5 s; limits far from both, for a busy machine.
    gap, pieces = 0.05, 10

    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = pieces * 1000
        await resp.prepare(request)
        for _ in range(pieces):
            await resp.write(b"x" * 1000)
            await asyncio.sleep(gap)
        return resp

    ranges = []

    async def silent(request: web.Request) -> web.StreamResponse:
        ranges.append(request.headers.get("Range"))
        resp = web.StreamResponse()
        resp.content_length = 10
        await resp.prepare(request)
        await resp.write(b"x")
        await asyncio.sleep(TIMEOUT)  # cancelled when the client goes
        return resp

    app = web.Application()
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/silent", silent)
    server = await aiohttp_server(app)  # cancels a handler when its client goes
    url = str(server.make_url("/trickle"))
    download = snippets["download"]
    # data keeps coming, the total limit (here 0.1 s for 300 s) ends it
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.1)) as s:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError) as raised:
            await download.fetch(s, url, tmp_path / "a.bin")
    assert type(raised.value) in (asyncio.TimeoutError, TimeoutError)
    assert 0.1 <= time.monotonic() - started < pieces * gap
    assert 0 < (tmp_path / "a.bin").stat().st_size < pieces * 1000
    # the recipe's kind of limit: only a gap longer than sock_read ends it
    short = aiohttp.ClientTimeout(total=None, sock_read=0.5)
    async with aiohttp.ClientSession(timeout=short) as s:
        await download.fetch(s, url, tmp_path / "b.bin")
        assert (tmp_path / "b.bin").stat().st_size == pieces * 1000
        capsys.readouterr()
        with pytest.raises(aiohttp.SocketTimeoutError) as raised:
            await download.download(
                s, str(server.make_url("/silent")), tmp_path / "c", attempts=2, delay=0
            )
    assert isinstance(raised.value, aiohttp.ClientConnectionError)
    start = f"GET {server.make_url('/silent')}：200，从头下载，共 10 字节"
    assert capsys.readouterr().out.splitlines() == [
        start,
        "第 1 次下载中断（SocketTimeoutError），0 秒后续传",
        start,
    ]
    assert ranges == [None, "bytes=1-"]  # the second asked for the rest
    assert download.TIMEOUT.total is None and download.TIMEOUT.sock_read == 30


async def test_download_prints_what_the_page_shows(serve, snippets, tmp_path, capsys):
    served = await serve(snippets["app"].SIZE)
    path = tmp_path / "big.bin"
    await snippets["download"].main(served.url(), path)
    assert capsys.readouterr().out == shown("download.txt", served.url())
    assert sha256(path) == served.app[snippets["app"].BIG_FILE_SHA256]


@pytest.mark.claim("任意两个 1 MiB 的块都不相同")
@pytest.mark.claim("请求 `Range: bytes=33554432-`，起点不在文件里")
@pytest.mark.claim(
    "`FileResponse` 回 416；`fetch()` 看到 `Content-Range: bytes */33554432`"
)
async def test_the_readers_size(serve, snippets, tmp_path, capsys):
    """The page's 32 MiB, downloaded whole, then once more."""
    size = snippets["app"].SIZE
    assert size == 33554432
    served = await serve(size)
    assert len(set(blocks(served.app[snippets["app"].BIG_FILE]))) == size // MiB == 32
    path = tmp_path / "big.bin"
    await snippets["download"].main(served.url(), path)
    assert path.stat().st_size == size
    capsys.readouterr()
    async with aiohttp.ClientSession() as session:
        headers = {"Range": "bytes=33554432-"}
        async with session.get(served.url(), headers=headers) as resp:
            assert resp.status == 416
            assert resp.headers["Content-Range"] == "bytes */33554432"
    await snippets["download"].main(served.url(), path)
    assert (
        capsys.readouterr().out.splitlines()[0] == f"{path} 已经下载完整：{size} 字节"
    )
    assert served.requests[-2] == ("/big.bin", "bytes=33554432-")


@pytest.mark.claim("和本地大小相同，就不再下载")
async def test_a_complete_file_is_not_downloaded_again(
    serve, snippets, tmp_path, capsys
):
    served = await serve()
    path = tmp_path / "big.bin"
    await snippets["download"].main(served.url(), path)
    capsys.readouterr()
    await snippets["download"].main(served.url(), path)
    digest = served.app[snippets["app"].BIG_FILE_SHA256]
    assert capsys.readouterr().out.splitlines() == [
        f"{path} 已经下载完整：{SMALL} 字节",
        f"sha256 与服务器给出的一致：{digest}",
    ]
    assert served.requests[-2] == ("/big.bin", f"bytes={SMALL}-")


async def test_a_longer_local_file_is_an_error(serve, snippets, tmp_path):
    served = await serve()
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (SMALL + 1))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientResponseError) as raised:
            await snippets["download"].fetch(session, served.url(), path)
    assert raised.value.status == 416
    assert path.stat().st_size == SMALL + 1


@pytest.mark.claim("服务器回 200 时说明它没有理会 `Range`")
@pytest.mark.claim("于是先 `truncate(0)` 清空再写")
async def test_a_server_that_ignores_range(aiohttp_server, snippets, tmp_path, capsys):
    body = bytes(range(256)) * 4096

    async def whole(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()  # chunked: no Content-Length, no Range
        await resp.prepare(request)
        await resp.write(body)
        return resp

    app = web.Application()
    app.router.add_get("/big.bin", whole)
    server = await aiohttp_server(app)
    url = str(server.make_url("/big.bin"))
    path = tmp_path / "big.bin"
    path.write_bytes(b"old part")
    async with aiohttp.ClientSession() as session:
        await snippets["download"].fetch(session, url, path)
    assert path.read_bytes() == body
    # the size is unknown, so no progress lines
    assert capsys.readouterr().out == f"GET {url}：200，从头下载，共 None 字节\n"


@pytest.mark.claim("最后把整个文件的 sha256 和服务器给出的比较")
@pytest.mark.claim("对不上就删掉文件，抛出 `DownloadError`")
async def test_a_wrong_digest_deletes_the_file(serve, snippets, tmp_path):
    served = await serve()
    download = snippets["download"]
    path = tmp_path / "big.bin"
    path.write_bytes(b"changed")  # the first 7 bytes are not the server's
    async with aiohttp.ClientSession() as session:
        await download.fetch(session, served.url(), path)
        assert path.stat().st_size == SMALL
        with pytest.raises(download.DownloadError) as raised:
            await download.check_sha256(session, served.url(), path)
    assert not path.exists()
    expected = served.app[snippets["app"].BIG_FILE_SHA256]
    assert str(raised.value).startswith(f"sha256 不符：应为 {expected}，下载的是 ")


# --- a broken transfer -------------------------------------------------------------


@pytest.mark.claim("总大小从 `Content-Range` 的最后一个数字取")
@pytest.mark.claim("`iter_chunked()` 的 `async for` 抛出")
@pytest.mark.claim("已经写进文件的 12582912 字节留在磁盘上")
@pytest.mark.claim("`fetch()` 检查起点和请求的一致，再接在文件末尾写")
async def test_resume_prints_what_the_page_shows(
    serve, snippets, tmp_path, capsys, monkeypatch
):
    served = await serve(snippets["app"].SIZE)
    monkeypatch.chdir(tmp_path)  # the reader's folder: the file is big.bin
    path = Path("big.bin")
    await snippets["resume"].main(served.url(), path)
    assert capsys.readouterr().out == shown("resume.txt", served.url())
    assert sha256(path) == served.app[snippets["app"].BIG_FILE_SHA256]
    drop = snippets["resume"].DROP_AFTER
    assert served.requests[:2] == [
        (f"/big.bin?drop_after={drop}", None),
        ("/big.bin", f"bytes={drop}-"),
    ]


@pytest.mark.claim("断在响应体中间时不重发")
@pytest.mark.claim("服务器只收到一个请求")
@pytest.mark.claim("`ClientPayloadError` 不是 `ClientConnectionError` 的子类")
async def test_a_broken_body_is_not_sent_again(serve, snippets, tmp_path):
    served = await serve()
    url = served.url() + "?drop_after=1000"
    path = tmp_path / "big.bin"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientPayloadError) as raised:
            await snippets["download"].fetch(session, url, path)
    assert served.requests == [("/big.bin?drop_after=1000", None)]
    assert path.stat().st_size == 1000
    assert not isinstance(raised.value, aiohttp.ClientConnectionError)
    assert str(raised.value) == (
        "Response payload is not completed: <ContentLengthError: 400, message='Not"
        f" enough data to satisfy content length header (received 1000 of {SMALL}"
        " bytes).'>"
    )


@pytest.mark.claim("`Not enough data to satisfy transfer length header.`，没有字节数")
async def test_a_broken_chunked_body(aiohttp_server, snippets, tmp_path):
    async def chunked_then_drop(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"x" * 1000)
        request.transport.close()
        return resp

    app = web.Application()
    app.router.add_get("/", chunked_then_drop)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientPayloadError) as raised:
            await snippets["download"].fetch(
                session, str(server.make_url("/")), tmp_path / "f"
            )
    assert str(raised.value) == (
        "Response payload is not completed: <TransferEncodingError: 400,"
        " message='Not enough data to satisfy transfer length header.'>"
    )


@pytest.mark.claim("起点对不上时抛出 `DownloadError`，不往文件里写")
@pytest.mark.parametrize(
    "content_range", ["bytes 0-9/100", "bytes 5-9", "", "bytes 50-99/100"]
)
async def test_a_range_that_is_not_the_one_asked_for(
    aiohttp_server, snippets, tmp_path, content_range
):
    async def wrong_part(request: web.Request) -> web.Response:
        headers = {"Content-Range": content_range} if content_range else {}
        return web.Response(status=206, body=b"y" * 10, headers=headers)

    app = web.Application()
    app.router.add_get("/", wrong_part)
    server = await aiohttp_server(app)
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    download = snippets["download"]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(download.DownloadError) as raised:
            await download.fetch(session, str(server.make_url("/")), path)
    assert path.read_bytes() == b"x" * 10
    assert str(raised.value) == f"请求第 10 字节起，回答的是 {content_range!r}"


@pytest.mark.claim("中断后等 `delay` 秒，用 `fetch()` 续传，最多 `attempts` 次")
async def test_download_resumes_after_each_break(serve, snippets, tmp_path, capsys):
    served = await serve(drop_first=True)
    path = tmp_path / "big.bin"
    download = snippets["download"]
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        await download.download(session, served.url(), path, attempts=3, delay=0.3)
        took = time.monotonic() - started
        await download.check_sha256(session, served.url(), path)
    assert 0.3 <= took < 0.3 + 1, took  # one wait of `delay`
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if line.startswith("第")] == [
        "第 1 次下载中断（ClientPayloadError），0.3 秒后续传",
    ]
    # the first answer broke halfway; the second asked for the rest
    assert served.requests[:2] == [
        ("/big.bin", None),
        ("/big.bin", f"bytes={SMALL // 2}-"),
    ]


@pytest.mark.claim("最多 `attempts` 次")
@pytest.mark.parametrize("attempts", [1, 2])
async def test_download_gives_up(aiohttp_server, snippets, tmp_path, attempts):
    requests = []

    async def always_drop(request: web.Request) -> web.StreamResponse:
        requests.append(request.headers.get("Range"))
        resp = web.StreamResponse()
        resp.content_length = 100
        await resp.prepare(request)
        await resp.write(b"x")
        request.transport.close()
        return resp

    app = web.Application()
    app.router.add_get("/", always_drop)
    server = await aiohttp_server(app)
    download = snippets["download"]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientPayloadError):
            await download.download(
                session,
                str(server.make_url("/")),
                tmp_path / "f",
                attempts=attempts,
                delay=0,
            )
    assert requests == [None, "bytes=1-"][:attempts]


# --- the file changed between the requests -----------------------------------------


@pytest.mark.claim("文件在那之后改过，服务器就不回 206")
@pytest.mark.claim("`If-Range` 里放 `ETag` 时，aiohttp 当它不存在，照样回 206")
async def test_if_range(aiohttp_server, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"a" * 100)

    async def send_file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    app = web.Application()
    app.router.add_get("/", send_file)
    server = await aiohttp_server(app)
    url = str(server.make_url("/"))
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            last_modified, etag = resp.headers["Last-Modified"], resp.headers["ETag"]
        # unchanged: the date validates the range
        headers = {"Range": "bytes=50-", "If-Range": last_modified}
        async with session.get(url, headers=headers) as resp:
            assert (resp.status, len(await resp.read())) == (206, 50)
        # the file changes on the server
        path.write_bytes(b"b" * 100)
        later = path.stat().st_mtime + 10
        os.utime(path, (later, later))
        async with session.get(url, headers=headers) as resp:
            assert (resp.status, await resp.read()) == (200, b"b" * 100)
        headers = {"Range": "bytes=50-", "If-Range": etag}
        async with session.get(url, headers=headers) as resp:
            assert resp.headers["ETag"] != etag
            assert (resp.status, await resp.read()) == (206, b"b" * 50)
