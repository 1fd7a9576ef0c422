"""nested_apps: a sub-app's routes, middleware and cleanup context stay its own."""

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from nested_apps.app import ADMIN, DB, create_admin_app, create_app


@pytest.fixture
async def client(aiohttp_client):
    """A test client for the main app (with /admin mounted), served on 127.0.0.1."""
    return await aiohttp_client(create_app())


@pytest.mark.claim("只有落到 `/admin/...` 的响应带有 `X-Admin: yes`")
@pytest.mark.claim("所以上面 `zoe` 的 404 没有这个头")
@pytest.mark.claim("直接访问 `/users/alice` 只会得到 404")
@pytest.mark.parametrize(
    ("path", "status", "admin_header"),
    [
        ("/", 200, None),
        ("/admin/users/alice", 200, "yes"),
        ("/admin/users/bob", 200, "yes"),
        # A raised HTTPException passes the middleware before the header is set.
        ("/admin/users/zoe", 404, None),
        ("/nowhere", 404, None),
        ("/users/alice", 404, None),
    ],
)
async def test_subapp_middleware_only_touches_subapp_responses(
    client, path, status, admin_header
):
    resp = await client.get(path)
    text = await resp.text()
    assert resp.status == status, text
    assert resp.headers.get("X-Admin") == admin_header, (dict(resp.headers), text)


@pytest.mark.claim("子应用的处理器里，`request.app` 就是子应用")
@pytest.mark.parametrize(
    ("name", "role"), [("alice", "admin"), ("bob", "editor"), ("zoe", None)]
)
async def test_subapp_handler_reads_its_own_database(client, name, role):
    resp = await client.get(f"/admin/users/{name}")
    text = await resp.text()
    if role is None:
        assert (resp.status, text) == (404, f"没有用户 {name}\n"), text
    else:
        assert await resp.json() == {"name": name, "role": role}, text


@pytest.mark.claim("得到 `/admin/users/alice`。前缀已经在里面了")
async def test_main_app_links_to_a_named_subapp_route_with_prefix(client):
    resp = await client.get("/")
    text = await resp.text()
    assert text == "alice 的管理页面：/admin/users/alice\n", text
    url = text.split("：", 1)[1].strip()
    followed = await client.get(url)
    assert await followed.json() == {"name": "alice", "role": "admin"}, url


@pytest.mark.claim('主应用的 `app.router["user"]` 会抛 `KeyError`')
@pytest.mark.claim("参数里的特殊字符会被百分号编码")
def test_route_names_belong_to_their_own_app():
    app = create_app()
    admin = app[ADMIN]
    assert "user" in admin.router
    assert "user" not in app.router
    with pytest.raises(KeyError):
        app.router["user"]
    assert str(admin.router["user"].url_for(name="b o")) == "/admin/users/b%20o"


@pytest.mark.claim('写 `"/admin/"` 与 `"/admin"` 效果相同')
@pytest.mark.claim("但前缀不能为空")
async def test_a_trailing_slash_of_the_prefix_is_dropped(aiohttp_client):
    app = web.Application()
    resource = app.add_subapp("/admin/", create_admin_app())
    assert resource.canonical == "/admin"
    client = await aiohttp_client(app)
    resp = await client.get("/admin/users/alice")
    assert await resp.json() == {"name": "alice", "role": "admin"}
    for empty in ("", "/"):
        with pytest.raises(ValueError, match=r"^Prefix cannot be empty$"):
            web.Application().add_subapp(empty, create_admin_app())


SEEN = web.AppKey("seen", list)


def recording(name: str):
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request.config_dict[SEEN].append(name)
        return await handler(request)

    return middleware


@pytest.mark.claim("主应用的中间件对子应用的请求 **同样生效**")
@pytest.mark.claim("而且先经过主应用的中间件，再经过子应用的")
async def test_main_app_middleware_runs_first_on_subapp_requests(aiohttp_client):
    admin = create_admin_app()
    admin.middlewares.append(recording("admin"))
    app = web.Application(middlewares=[recording("main")])
    app[SEEN] = []
    app.add_subapp("/admin", admin)
    client = await aiohttp_client(app)
    resp = await client.get("/admin/users/alice")
    assert resp.headers["X-Admin"] == "yes"
    assert app[SEEN] == ["main", "admin"]


CONFIG = web.AppKey("config", str)


async def show_config(request: web.Request) -> web.Response:
    return web.Response(text=request.config_dict[CONFIG])


@pytest.mark.claim("它会先查子应用、再查外层应用")
@pytest.mark.claim("外层应用则看不到子应用的存储")
async def test_config_dict_looks_in_the_subapp_then_outwards(aiohttp_client):
    plain, own = web.Application(), web.Application()
    for sub in (plain, own):
        sub.router.add_get("/", show_config)
    own[CONFIG] = "子应用自己的"
    app = web.Application()
    app[CONFIG] = "主应用的"
    app.add_subapp("/plain", plain)
    app.add_subapp("/own", own)
    only_inner = web.AppKey("only_inner", str)
    own[only_inner] = "只在子应用里"

    async def outer_looks(request: web.Request) -> web.Response:
        return web.Response(text=str(request.config_dict.get(only_inner)))

    app.router.add_get("/outer", outer_looks)
    client = await aiohttp_client(app)
    assert await (await client.get("/plain/")).text() == "主应用的"
    assert await (await client.get("/own/")).text() == "子应用自己的"
    assert await (await client.get("/outer")).text() == "None"
    assert only_inner not in app and app[CONFIG] == "主应用的"


@pytest.mark.claim("`admin_db` 在主应用启动时打开数据库，在主应用关闭时")
@pytest.mark.claim("`app[DB] = db` 存进的是子应用的存储")
@pytest.mark.claim("主应用里没有 `DB`")
async def test_subapp_cleanup_ctx_runs_with_the_main_app(aiohttp_server):
    app = create_app()
    admin = app[ADMIN]
    assert DB not in admin  # nothing opened before the main app starts
    server = await aiohttp_server(app)
    db = admin[DB]
    async with db.execute("SELECT count(*) FROM users") as cursor:
        assert await cursor.fetchone() == (2,)
    assert DB not in app  # the main app never sees the sub-app's resource
    await server.close()
    with pytest.raises(ValueError, match="no active connection"):
        await db.execute("SELECT 1")


@pytest.mark.claim("之后再给它加路由、中间件或清理上下文都会抛 `RuntimeError`")
@pytest.mark.claim("`Cannot register a resource into frozen router.`")
async def test_subapp_is_frozen_once_mounted():
    admin = create_app()[ADMIN]

    async def late(request: web.Request) -> web.Response:
        raise AssertionError("never registered")

    async def late_ctx(app: web.Application) -> AsyncIterator[None]:
        raise AssertionError("never registered")
        yield

    with pytest.raises(
        RuntimeError, match=r"^Cannot register a resource into frozen router\.$"
    ):
        admin.router.add_get("/late", late)
    with pytest.raises(RuntimeError, match="frozen list"):
        admin.middlewares.append(late)
    with pytest.raises(RuntimeError, match="frozen list"):
        admin.cleanup_ctx.append(late_ctx)


@pytest.mark.claim('旧写法 `app["admin"] = admin` 仍能运行，但会发出')
def test_a_string_key_for_the_subapp_still_works_with_a_warning():
    app = web.Application()
    with pytest.warns(web.NotAppKeyWarning):
        app["admin"] = create_admin_app()
    app.add_subapp("/admin", app["admin"])
    assert "user" in app["admin"].router
