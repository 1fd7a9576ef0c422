"""middleware_data: a middleware stores per-request data, the handler reads it."""

import configparser
import re
import shutil
import sys
import uuid
import warnings

import aiohttp
import aiohttp_session
import pytest
from aiohttp import web
from aiohttp_session import SimpleCookieStorage, get_session

from middleware_data import session_app
from middleware_data.app import REQUEST_ID, create_app, request_id_middleware
from pages import SNIPPETS
from servers import free_port, running

HEX_ID = re.compile(r"[0-9a-f]{32}")


def ini_filters(path: str) -> list[str]:
    """The filterwarnings lines of a pytest.ini shown on the page, in order."""
    config = configparser.ConfigParser()
    config.read(SNIPPETS / path, encoding="utf-8")
    return config["pytest"]["filterwarnings"].split()


# The page's pytest.ini: aiohttp-session 2.12.1 sets string keys on the request,
# which aiohttp 3.14 answers with NotAppKeyWarning; only that one is ignored.
page_filters = pytest.mark.filterwarnings(*ini_filters("middleware_data/pytest.ini"))

# Two keys with the same name, so the same repr: still two different keys.
TWIN_A = web.RequestKey("twin", str)
TWIN_B = web.RequestKey("twin", str)


@pytest.fixture
async def client(aiohttp_client):
    """The request-id app on 127.0.0.1, plus probe routes the page talks about."""
    app = create_app()

    async def twins(request: web.Request) -> web.Response:
        request[TWIN_A] = "a"
        request[TWIN_B] = "b"
        return web.json_response([request[TWIN_A], request[TWIN_B]])

    async def any_type(request: web.Request) -> web.Response:
        request[REQUEST_ID] = 42  # type: ignore[assignment]
        return web.json_response(request[REQUEST_ID])

    async def string_key(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        request[key] = "set"
        return web.Response(text=request[key])

    app.router.add_get("/twins", twins)
    app.router.add_get("/any-type", any_type)
    app.router.add_get("/string/{key}", string_key)
    return await aiohttp_client(app)


@pytest.mark.parametrize("request_id", ["demo-42", "abc", "A" * 64])
async def test_handler_reads_what_the_middleware_stored(client, request_id):
    resp = await client.get("/", headers={"X-Request-ID": request_id})
    body = await resp.text()
    assert resp.status == 200, body
    assert body == f"请求 ID：{request_id}\n"
    assert resp.headers["X-Request-ID"] == request_id, body


@pytest.mark.parametrize("given", ["请求-1", "a b", "A" * 65, "a;b", "<script>"])
async def test_an_id_of_another_shape_is_replaced(client, given):
    resp = await client.get("/", headers={"X-Request-ID": given})
    body = await resp.text()
    assert resp.status == 200, body
    assert HEX_ID.fullmatch(resp.headers["X-Request-ID"]), resp.headers
    assert body == f"请求 ID：{resp.headers['X-Request-ID']}\n"


async def test_without_header_each_request_gets_a_new_id(client):
    ids = []
    for _ in range(3):
        resp = await client.get("/")
        body = await resp.text()
        ids.append(resp.headers["X-Request-ID"])
        assert HEX_ID.fullmatch(ids[-1]), body
        assert body == f"请求 ID：{ids[-1]}\n"
    assert len(set(ids)) == 3, ids


async def test_raised_404_does_not_get_the_header(client):
    resp = await client.get("/missing", headers={"X-Request-ID": "x"})
    assert resp.status == 404, await resp.text()
    assert "X-Request-ID" not in resp.headers, resp.headers


def test_key_name_carries_its_module():
    assert repr(REQUEST_ID) == "<RequestKey(middleware_data.app.request_id, type=str)>"
    assert repr(TWIN_A) == repr(TWIN_B)


async def test_keys_with_the_same_name_do_not_collide(client):
    resp = await client.get("/twins")
    assert await resp.json() == ["a", "b"], await resp.text()


async def test_value_type_is_not_checked_at_run_time(client):
    resp = await client.get("/any-type")
    assert await resp.json() == 42, await resp.text()


@page_filters
async def test_string_key_warning_fails_only_the_first_request(client):
    # filterwarnings=error turns the warning into an exception in the handler;
    # the page's filter for aiohttp_session does not cover our own string keys.
    key = f"unique-{uuid.uuid4().hex}"
    first = await client.get(f"/string/{key}")
    assert first.status == 500, await first.text()
    second = await client.get(f"/string/{key}")
    assert (second.status, await second.text()) == (200, "set")


async def test_string_key_warns_once_per_key(client):
    key = f"unique-{uuid.uuid4().hex}"
    with pytest.warns(web.NotAppKeyWarning, match="web.RequestKey"):
        resp = await client.get(f"/string/{key}")
    assert resp.status == 200, await resp.text()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resp = await client.get(f"/string/{key}")
    assert resp.status == 200, await resp.text()
    assert caught == [], [str(w.message) for w in caught]


async def test_undecorated_middleware_is_taken_for_an_old_style_factory(
    aiohttp_client,
):
    async def undecorated(request, handler):
        return await request_id_middleware(request, handler)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[undecorated])
    app.router.add_get("/", ok)
    with pytest.warns(DeprecationWarning, match="old-style middleware"):
        client = await aiohttp_client(app)
    resp = await client.get("/")
    assert resp.status == 500, await resp.text()


@pytest.fixture
async def session_client(aiohttp_client):
    """The aiohttp-session app (cookies kept by the client), plus probe routes."""
    app = session_app.create_app()

    async def cached(request: web.Request) -> web.Response:
        first = await get_session(request)
        second = await get_session(request)
        return web.json_response(
            {
                "same": first is second is request[aiohttp_session.SESSION_KEY],
                "storage": type(request[aiohttp_session.STORAGE_KEY]).__name__,
            }
        )

    async def read_only(request: web.Request) -> web.Response:
        session = await get_session(request)
        return web.Response(text=str(session.get("visits")))

    app.router.add_get("/cached", cached)
    app.router.add_get("/read-only", read_only)
    return await aiohttp_client(app)


@page_filters
async def test_visits_are_counted_in_the_session(session_client):
    for expected in range(1, 4):
        resp = await session_client.get("/")
        body = await resp.text()
        assert resp.status == 200, body
        assert body == f"第 {expected} 次访问\n"
        assert "AIOHTTP_SESSION" in resp.headers["Set-Cookie"], resp.headers


@page_filters
async def test_get_session_is_cached_on_the_request(session_client):
    resp = await session_client.get("/cached")
    body = await resp.json()
    assert body == {"same": True, "storage": SimpleCookieStorage.__name__}, body


@page_filters
async def test_unchanged_session_sets_no_cookie(session_client):
    resp = await session_client.get("/read-only")
    assert await resp.text() == "None"
    assert "Set-Cookie" not in resp.headers, resp.headers


@page_filters
async def test_simple_cookie_storage_trusts_a_forged_cookie(session_client):
    forged = '{"created":1,"session":{"visits":41}}'
    resp = await session_client.get("/", cookies={"AIOHTTP_SESSION": forged})
    assert await resp.text() == "第 42 次访问\n"


@pytest.fixture
def session_program(tmp_path):
    """session_app.py saved on its own, as a reader would run it."""
    shutil.copy(SNIPPETS / "middleware_data" / "session_app.py", tmp_path)
    return tmp_path / "session_app.py"


async def statuses(url: str, count: int) -> list[int]:
    async with aiohttp.ClientSession() as session:
        result = []
        for _ in range(count):
            async with session.get(url) as resp:
                result.append(resp.status)
        return result


@pytest.mark.parametrize(
    ("options", "warned"),
    [([], False), (["-W", "default"], True), (["-X", "dev"], True)],
)
async def test_session_warnings_are_hidden_unless_asked_for(
    session_program, options, warned
):
    port = free_port()
    argv = [sys.executable, *options, session_program.name]
    env = {"PORT": str(port), "PYTHONWARNINGS": ""}
    with running(argv, port=port, cwd=session_program.parent, env=env) as server:
        assert await statuses(server.url, 3) == [200, 200, 200], server.output()
    log = server.output()
    lines = ["request[STORAGE_KEY] = storage", "request[SESSION_KEY] = session"]
    assert log.count("NotAppKeyWarning") == (2 if warned else 0), log
    assert all((line in log) == warned for line in lines), log


async def test_session_warnings_as_errors_fail_the_first_requests(session_program):
    port = free_port()
    argv = [sys.executable, "-W", "error", session_program.name]
    with running(
        argv,
        port=port,
        cwd=session_program.parent,
        env={"PORT": str(port)},
        expect_clean_exit=False,
    ) as server:
        assert await statuses(server.url, 3) == [500, 500, 200], server.output()
    assert server.output().count("NotAppKeyWarning: It is recommended") == 2


@page_filters
@pytest.mark.parametrize(
    "cookie", ["", "{", '{"created":1,"session":{"visits":"x"}}', '"[1]"']
)
async def test_a_session_cookie_it_cannot_read_is_a_500(aiohttp_client, cookie):
    """What the page's warning says: SimpleCookieStorage does not check the cookie."""
    client = await aiohttp_client(session_app.create_app())
    resp = await client.get("/", headers={"Cookie": f"AIOHTTP_SESSION={cookie}"})
    assert resp.status == 500, await resp.text()
