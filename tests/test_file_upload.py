"""file_upload: 413 from client_max_size, multipart streamed to disk, safe file names.

Every server is the page's app.py (or a small aiohttp app of this module) on
127.0.0.1; uploads land in a real folder under tmp_path; memory is what
tracemalloc counts in this process (client and server) during an upload.
"""

import asyncio
import hashlib
import io
import logging
import os
import re
import sys
import tracemalloc
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

import pages
from file_upload import upload as client
from file_upload.app import MAX_FILES, create_app

FOLDER = pages.SNIPPETS / "file_upload"
MiB = 2**20
LIMIT = 6 * MiB  # the tests' per-file limit (the reader's is 64 MiB)
TIMEOUT = 20
HEX_ID = re.compile(r"[0-9a-f]{32}")
# the reason phrase comes from http.HTTPStatus, which took RFC 9110's in 3.13
REASON_413 = (
    "Content Too Large" if sys.version_info >= (3, 13) else "Request Entity Too Large"
)


@pytest.fixture
def uploads(tmp_path) -> Path:
    """The folder the server stores uploads in."""
    return tmp_path / "uploads"


@pytest.fixture
async def session(aiohttp_server, uploads):
    """A client session pointed at the page's app (per-file limit LIMIT)."""
    server = await aiohttp_server(create_app(uploads, max_file_size=LIMIT))
    async with aiohttp.ClientSession(str(server.make_url("/"))) as session:
        yield session


def on_disk(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def form_with(*files, fields=(), quote_fields=True) -> aiohttp.FormData:
    """A multipart form: (filename, content) files and (name, text) fields."""
    form = aiohttp.FormData(quote_fields=quote_fields, default_to_multipart=True)
    for name, value in fields:
        form.add_field(name, value)
    for filename, content in files:
        form.add_field("file", content, filename=filename)
    return form


# --- client_max_size and the 413 -----------------------------------------------------


async def read_body(request: web.Request) -> web.Response:
    how = request.match_info["how"]
    if how == "post":
        data = await request.post()
        return web.Response(text=f"{len(data)} 个字段")
    body = await getattr(request, how)()
    return web.Response(text=f"{len(body)} 字节")


async def ignore_body(request: web.Request) -> web.Response:
    return web.Response(text="没有读请求体")


@pytest.fixture
async def readers(aiohttp_client):
    """An app whose handlers read the body in each of aiohttp's ways."""
    app = web.Application()
    app.router.add_post("/read/{how}", read_body)
    app.router.add_post("/ignore", ignore_body)
    return await aiohttp_client(app)


@pytest.mark.claim("`client_max_size`，默认是 1 MiB")
@pytest.mark.claim("一旦读到的字节数超过它，就抛出 `web.HTTPRequestEntityTooLarge`")
@pytest.mark.claim("响应体是 `Maximum request body size 1048576 exceeded.`")
@pytest.mark.claim("`request.post()` 读到的字节超过 1048576 时，处理器抛出 413")
@pytest.mark.claim("Python 3.13 起是 `Content Too Large`，更早的版本是 `Request Entity")
@pytest.mark.parametrize("how", ["read", "text", "post"])
async def test_a_body_over_one_mib_gets_413(readers, how):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for size, status in [(MiB, 200), (MiB + 1, 413)]:
        body = io.BytesIO(b"a" * size)
        async with readers.post(f"/read/{how}", data=body, headers=headers) as resp:
            text = await resp.text()
            assert resp.status == status, text
    assert resp.reason == REASON_413
    assert text == "Maximum request body size 1048576 exceeded."
    if how == "post":  # and a multipart body (the form above), counted as it is read
        for size, status in [(MiB - 64 * 1024, 200), (MiB + 1, 413)]:
            body = one_file(b'filename="a.bin"', b"a" * size)
            async with readers.post("/read/post", data=body, headers=MULTIPART) as resp:
                text = await resp.text()
                assert resp.status == status, text


@pytest.mark.claim("处理器不读请求体，就不会有 413")
async def test_no_413_without_reading(readers):
    async with readers.post("/ignore", data=io.BytesIO(b"a" * (4 * MiB))) as resp:
        assert (resp.status, await resp.text()) == (200, "没有读请求体")


@pytest.mark.claim("`request.post()` 也能收下大文件")
async def test_a_larger_client_max_size(aiohttp_server, uploads, tmp_path, capsys):
    """upload.py against an app whose limits are raised: everything is accepted.

    (It also runs upload.py's lines once without a response that arrives while
    the body is still being sent: coverage on CPython 3.11 loses the line
    events of a coroutine after such a request, though the lines run.)
    """
    size, too_big = 3 * MiB, 5 * MiB
    app = create_app(uploads, max_file_size=8 * MiB, client_max_size=8 * MiB)
    server = await aiohttp_server(app)
    path = tmp_path / "big.bin"
    await client.main(str(server.make_url("/")), path, size, too_big)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"POST /form，{size} 字节：200，{{'file': {size}}}"
    assert printed[3].startswith(f"POST /upload，{too_big} 字节：201，{{'files': [")
    assert printed[4] == "uploads/ 里多了 3 个文件，其中临时文件 0 个"


async def test_form_under_the_limit(session):
    data = form_with(("small.bin", b"x" * 1000), fields=[("note", "你好")])
    async with session.post("/form", data=data) as resp:
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"note": 2, "file": 1000}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: "),
        ("application/x-www-form-urlencoded; charset=no-such", b"a=1"),
    ],
)
async def test_form_refuses_a_broken_body(session, content_type, body):
    headers = {"Content-Type": content_type}
    async with session.post("/form", data=body, headers=headers) as resp:
        assert resp.status == 400, await resp.text()


# --- streaming multipart to disk ---------------------------------------------------


@pytest.fixture
async def reader_session(aiohttp_server, uploads):
    """The page's app with the reader's limits: 64 MiB a file, 1 MiB client_max_size."""
    server = await aiohttp_server(create_app(uploads))
    async with aiohttp.ClientSession(str(server.make_url("/"))) as session:
        yield session


@pytest.mark.claim("`read_chunk()` 不受 `client_max_size` 限制")
@pytest.mark.claim("上传 64 MiB 的文件，客户端和服务器加起来")
@pytest.mark.claim("峰值不到 2 MiB")
async def test_a_64_mib_upload_in_bounded_memory(reader_session, uploads, tmp_path):
    path = tmp_path / "big.bin"
    digest = client.make_file(path, 64 * MiB)
    tracemalloc.start()
    try:
        with path.open("rb") as f:
            status, answer = await client.send(reader_session, "/upload", f, "big.bin")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 201, answer
    assert peak < 2 * MiB, peak
    [saved] = answer["files"]
    assert saved["size"] == 64 * MiB and saved["sha256"] == digest
    assert on_disk(uploads) == [saved["id"]]
    assert sha256((uploads / saved["id"]).read_bytes()) == digest


async def test_upload_prints_what_the_page_shows(
    aiohttp_server, uploads, tmp_path, capsys, monkeypatch
):
    """upload.py against the page's app, at a smaller scale (numbers mapped back)."""
    size, limit, too_big = 3 * MiB, 4 * MiB, 5 * MiB
    server = await aiohttp_server(create_app(uploads, max_file_size=limit))
    monkeypatch.chdir(tmp_path)
    await client.main(str(server.make_url("/")), Path("big.bin"), size, too_big)
    printed = capsys.readouterr().out
    scale = [(size, client.SIZE), (limit, 64 * MiB), (too_big, client.TOO_BIG)]
    for small, reader in scale:
        printed = re.sub(rf"\b{small}\b", str(reader), printed)
    assert printed == (FOLDER / "upload.txt").read_text("utf-8")
    stored = on_disk(uploads)
    assert len(stored) == 2 and all(HEX_ID.fullmatch(name) for name in stored)


@pytest.mark.claim("整个请求什么也不留")
@pytest.mark.claim("已经存下的文件不受影响")
async def test_one_file_over_the_limit_keeps_nothing(session, uploads):
    old = uploads / ("0" * 32)
    old.write_bytes(b"an earlier upload")
    data = form_with(
        ("small.bin", io.BytesIO(b"s" * 1000)),
        ("big.bin", io.BytesIO(b"b" * (LIMIT + 1))),
        fields=[("note", "两个文件")],
    )
    async with session.post("/upload", data=data) as resp:
        assert resp.status == 413
        assert await resp.text() == f"每个文件最多 {LIMIT} 字节\n"
    assert on_disk(uploads) == [old.name]
    assert old.read_bytes() == b"an earlier upload"


@pytest.mark.claim("成功时回 201，JSON 里是每个文件的 `id`、显示用的名字、大小、sha256")
async def test_files_and_fields_at_the_limit(session, uploads):
    data = form_with(
        ("a.bin", io.BytesIO(b"a" * LIMIT)),
        ("b.txt", b"hello"),
        fields=[("note", "你好"), ("tag", "x")],
    )
    async with session.post("/upload", data=data) as resp:
        answer = await resp.json()
        assert resp.status == 201, answer
    assert answer["fields"] == {"note": "你好", "tag": "x"}
    assert [(f["name"], f["size"]) for f in answer["files"]] == [
        ("a.bin", LIMIT),
        ("b.txt", 5),
    ]
    assert on_disk(uploads) == sorted(f["id"] for f in answer["files"])
    for saved in answer["files"]:
        data = (uploads / saved["id"]).read_bytes()
        assert sha256(data) == saved["sha256"]


@pytest.mark.claim("一个请求最多 10 个文件，多了回 413")
async def test_too_many_files(session, uploads):
    assert MAX_FILES == 10  # the number the page gives
    data = form_with(*[(f"{n}.txt", b"x") for n in range(11)])
    async with session.post("/upload", data=data) as resp:
        assert resp.status == 413
        assert await resp.text() == "一个请求最多 10 个文件\n"
    assert on_disk(uploads) == []
    data = form_with(*[(f"{n}.txt", b"x") for n in range(10)])
    async with session.post("/upload", data=data) as resp:
        assert resp.status == 201, await resp.text()
    assert len(on_disk(uploads)) == 10


@pytest.mark.claim("普通字段用 `await part.text()` 读进内存")
@pytest.mark.claim("超过 `client_max_size` 时 aiohttp 同样回 413")
async def test_a_field_over_client_max_size(session, uploads):
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\n'
        b'x\r\n--xyz\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
        + b"a" * (MiB + 1)
        + b"\r\n--xyz--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    async with session.post("/upload", data=io.BytesIO(body), headers=headers) as resp:
        assert resp.status == 413
        assert await resp.text() == "Maximum request body size 1048576 exceeded."
    assert on_disk(uploads) == []


async def multipart_anyway(request: web.Request) -> web.Response:
    await request.multipart()
    return web.Response(text="multipart")


@pytest.mark.claim("不是 multipart/form-data 的请求回 415")
@pytest.mark.claim(
    "`request.multipart()` 遇到别的类型会抛出 `AssertionError`，客户端收到 500"
)
async def test_not_multipart(session, uploads, aiohttp_client, caplog):
    async with session.post("/upload", data={"a": "1"}) as resp:
        assert resp.status == 415
        assert await resp.text() == "请用 multipart/form-data 上传\n"
    # without the check
    app = web.Application()
    app.router.add_post("/", multipart_anyway)
    unchecked = await aiohttp_client(app)
    async with unchecked.post("/", data={"a": "1"}) as resp:
        assert resp.status == 500
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert isinstance(record.exc_info[1], AssertionError)


BROKEN = [
    # no closing boundary
    b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nab',
    # the body ends inside the headers of a part
    b"--xyz\r\nContent-Disposition: form-da",
    # a field that is not UTF-8
    b'--xyz\r\nContent-Disposition: form-data; name="t"\r\n\r\n\xff\r\n--xyz--\r\n',
]


@pytest.mark.claim("格式不对的请求体回 400")
@pytest.mark.parametrize("body", BROKEN, ids=["unclosed", "cut-headers", "not-utf8"])
async def test_a_broken_body_keeps_nothing(session, uploads, body):
    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    async with session.post("/upload", data=body, headers=headers) as resp:
        text = await resp.text()
        assert resp.status == 400, text
    assert text.startswith("请求体格式不对：")
    assert on_disk(uploads) == []


async def test_nested_multipart(session, uploads):
    inner = aiohttp.MultipartWriter("mixed")
    inner.append("inner text")
    outer = aiohttp.MultipartWriter("form-data")
    outer.append(inner)
    async with session.post("/upload", data=outer) as resp:
        assert resp.status == 400
        assert await resp.text() == "不接受嵌套的 multipart\n"


READING: list[str] = []  # the paths whose handler has read a first chunk


async def save_without_care(request: web.Request) -> web.Response:
    """A handler that reads a part and lets every error through."""
    reader = await request.multipart()
    part = await reader.next()
    while await part.read_chunk():
        READING.append(request.path)
    return web.Response(text="done")


@pytest.fixture
async def served_like_run_app(uploads, caplog):
    """The page's app served as web.run_app() serves it (no handler_cancellation).

    /careless is a handler that does not catch the client's going away.
    """
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    READING.clear()
    app = create_app(uploads, max_file_size=LIMIT)
    app.router.add_post("/careless", save_without_care)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def until(condition) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.mark.claim("客户端上传到一半断开")
@pytest.mark.claim("日志里就没有这条 ERROR；临时文件同样被 `finally` 删掉")
@pytest.mark.claim("它以 ERROR 级别记下 `Error handling request` 和回溯")
@pytest.mark.parametrize("path", ["/upload", "/careless"])
async def test_a_client_that_goes_away(served_like_run_app, uploads, caplog, path):
    head = (
        b"--xyz\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
    )
    _, writer = await asyncio.open_connection("127.0.0.1", served_like_run_app)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=xyz\r\n"
        + f"Content-Length: {4 * MiB}\r\n\r\n".encode()
        + head
        + b"x" * MiB  # of the 4 MiB promised
    )
    await writer.drain()
    if path == "/upload":  # the part is being written to a temporary file
        await until(lambda: [p for p in uploads.iterdir() if p.stat().st_size])
    else:
        await until(lambda: path in READING)
    writer.close()
    await writer.wait_closed()
    # the handler is done when aiohttp logs the request
    await until(lambda: any(r.name == "aiohttp.access" for r in caplog.records))
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert on_disk(uploads) == []
    if path == "/upload":
        assert errors == []
    else:
        [error] = errors
        assert error.getMessage() == "Error handling request from 127.0.0.1"
        assert isinstance(error.exc_info[1], ConnectionResetError)


# --- file names ----------------------------------------------------------------------


def one_file(disposition: bytes, content: bytes = b"hello\n") -> io.BytesIO:
    """A multipart body of one part, its Content-Disposition parameters as given."""
    return io.BytesIO(
        b'--xyz\r\nContent-Disposition: form-data; name="file"; '
        + disposition
        + b"\r\n\r\n"
        + content
        + b"\r\n--xyz--\r\n"
    )


MULTIPART = {"Content-Type": "multipart/form-data; boundary=xyz"}
NAMES = [
    # (Content-Disposition parameter as sent, the name the page's app records)
    (b'filename="../../etc/passwd"', "passwd"),
    (b'filename="/etc/cron.d/evil"', "evil"),
    (b"filename*=UTF-8''..%5C..%5Cwindows%5Cwin.ini", "win.ini"),
    (b"filename*=UTF-8''%2Fetc%2Fpasswd%00", "passwd"),
    ('filename="报告.pdf"'.encode(), "报告.pdf"),
    (b'filename="a\tb.txt"', "ab.txt"),
    (b'filename=".."', "upload"),
    (b'filename=""', "upload"),
    (b'filename="' + b"x" * 300 + b'"', "x" * 100),
]


@pytest.mark.claim("名字由 `secrets.token_hex(16)` 生成")
@pytest.mark.claim("去掉目录部分和不可打印的字符，最多留 100 个字符")
@pytest.mark.claim("空的、`.`、`..` 换成 `upload`")
@pytest.mark.parametrize(("disposition", "name"), NAMES)
async def test_a_file_name_never_becomes_a_path(
    session, uploads, tmp_path, disposition, name
):
    async with session.post(
        "/upload", data=one_file(disposition), headers=MULTIPART
    ) as resp:
        answer = await resp.json()
        assert resp.status == 201, answer
    [saved] = answer["files"]
    assert saved["name"] == name
    assert on_disk(uploads) == [saved["id"]] and HEX_ID.fullmatch(saved["id"])
    # nothing was written anywhere else under tmp_path
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert written == [uploads / saved["id"]]


async def echo_filename(request: web.Request) -> web.Response:
    """The file name as aiohttp's server reads it, nothing else."""
    reader = await request.multipart()
    part = await reader.next()
    return web.Response(text=part.filename)


@pytest.fixture
async def echo_url(aiohttp_server) -> str:
    app = web.Application()
    app.router.add_post("/", echo_filename)
    server = await aiohttp_server(app)
    return str(server.make_url("/"))


@pytest.mark.claim("`part.filename` 就是客户端写的字符串")
@pytest.mark.claim("默认把文件名按百分号编码")
@pytest.mark.claim("收到的是 `..%2F..%2Fetc%2Fpasswd`")
@pytest.mark.claim("`FormData(quote_fields=False)` 原样发送")
@pytest.mark.parametrize(
    ("filename", "quote_fields", "received"),
    [
        ("../../etc/passwd", True, "..%2F..%2Fetc%2Fpasswd"),
        ("报告.pdf", True, "%E6%8A%A5%E5%91%8A.pdf"),
        ("../../etc/passwd", False, "../../etc/passwd"),
        ("报告.pdf", False, "报告.pdf"),
    ],
)
async def test_what_aiohttps_client_sends(echo_url, filename, quote_fields, received):
    data = form_with((filename, b"x"), quote_fields=quote_fields)
    async with aiohttp.ClientSession() as session:
        async with session.post(echo_url, data=data) as resp:
            assert await resp.text() == received


@pytest.mark.claim("curl 原样发送")
@pytest.mark.parametrize("filename", ["../../etc/passwd", "报告.pdf"])
async def test_what_curl_sends(echo_url, filename):
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-s",
        "-F",
        f"file=@-;filename={filename}",
        echo_url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, _ = await proc.communicate(b"hello\n")
    assert out.decode() == filename


@pytest.mark.claim("aiohttp 去掉带引号的 `filename` 开头的 `/` 和 `\\`")
@pytest.mark.claim("`filename*=UTF-8''%2Fetc%2F…` 照样能送来绝对路径")
@pytest.mark.claim("`os.path.join()` 遇到绝对路径就丢掉前面的目录")
@pytest.mark.claim("`../` 一层层走出上传目录")
@pytest.mark.parametrize(
    "escape", ["quoted-absolute", "quoted-backslash", "absolute", "dot-dot"]
)
async def test_the_documented_join_writes_anywhere(aiohttp_server, tmp_path, escape):
    spool = tmp_path / "spool" / "mp3"
    spool.mkdir(parents=True)
    target = tmp_path / "outside.txt"
    disposition = {
        # the leading / (or \\) is dropped: these land inside spool
        "quoted-absolute": f'filename="{target}"'.encode(),
        "quoted-backslash": b'filename="\\\\outside.txt"',
        "absolute": b"filename*=UTF-8''" + quote(str(target), safe="").encode(),
        "dot-dot": b'filename="../../outside.txt"',
    }[escape]

    async def store_mp3_handler(request: web.Request) -> web.Response:
        """docs/web_quickstart.rst's handler, writing into spool."""
        reader = await request.multipart()
        field = await reader.next()
        os.makedirs(os.path.dirname(os.path.join(spool, field.filename)), exist_ok=True)
        with open(os.path.join(spool, field.filename), "wb") as f:  # noqa: ASYNC230
            while chunk := await field.read_chunk():
                f.write(chunk)
        return web.Response(text=field.filename)

    app = web.Application()
    app.router.add_post("/store/mp3", store_mp3_handler)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        url = server.make_url("/store/mp3")
        async with session.post(
            url, data=one_file(disposition), headers=MULTIPART
        ) as resp:
            filename = await resp.text()
    if escape.startswith("quoted-"):
        stripped = {"quoted-absolute": str(target).lstrip("/")}
        assert filename == stripped.get(escape, "outside.txt"), filename
        assert not target.exists()
        assert (spool / filename).read_bytes() == b"hello\n"
    else:
        assert target.read_bytes() == b"hello\n"
        assert list(spool.iterdir()) == []
