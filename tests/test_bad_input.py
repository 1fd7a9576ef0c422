"""Bad input for every recipe server: hostile HTTP and websocket traffic, real sockets.

Every module of snippets/ with a top-level ``create_app`` is found by reading the
files, so a new recipe is tested here without touching this module. Its factory
gets each parameter that has a fixture of the same name here (a SQLite file in
tmp_path, a real redis-server, real upstream servers on 127.0.0.1); other
parameters keep their defaults.

For every request these tests make, the server must

- answer with a complete HTTP response whose status is below 500,
- log nothing at ERROR level (any logger: aiohttp.server, aiohttp.web, asyncio ...),
- and afterwards still answer its normal requests (each route, variables
  filled in, through aiohttp's client) with a status below 500,

unless the recipe's page says otherwise: DOCUMENTED lists those cases, each
with the sentence of its page that says so (test_documented_on_the_page checks
that the page still does).

Two things no recipe can change are not held against it:

- aiohttp answers a request its parser refuses (a line over 8190 bytes, a bad
  Content-Length ...) with 400 and logs that at ERROR level with the parser's
  exception (``parser_refused``);
- aiohttp 3.14 answers a non-UTF-8 ``Expect`` value with 500 on every route
  (``NOT_UTF8_SAFE``).

Malformed HTTP that aiohttp's client refuses to send goes out through raw
asyncio streams, and so do websocket frames (``frame`` builds them).
"""

from __future__ import annotations

import ast
import asyncio
import base64
import contextlib
import importlib
import inspect
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

import pages
import servers
from external_service import fake_es

TIMEOUT = 5

# These tests are about what hostile input does, not about which lines run: the
# recipes' own tests reach 100 % of snippets/ without them, and coverage's
# tracer would double their time (pytest-cov's marker pauses it).
pytestmark = pytest.mark.no_cover

# test_planted_bugs_are_found runs this module on a recipe with planted bugs, in
# a folder laid out as snippets/ is and put on sys.path.
PLANTED = os.environ.get("FAQ_BAD_INPUT_PLANTED")
settings.register_profile(
    "bad_input",
    max_examples=10,
    deadline=None,
    database=None,  # no example database: nothing is written into the repository
    derandomize=True,  # the same examples on every run, so CI is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# test_planted_bugs_are_found asks whether a bug is found, not for its smallest
# example: the examples tried are the same, shrinking the one that fails is not.
settings.register_profile(
    "planted",
    settings.get_profile("bad_input"),
    phases=[phase for phase in Phase if phase is not Phase.shrink],
)
BAD_INPUT = settings.get_profile("planted" if PLANTED else "bad_input")
# Hypothesis also caches what it learns about the code, under ./.hypothesis/ and
# already while pytest collects: keep that out of the repository too.
set_hypothesis_home_dir(
    os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")
    or Path(tempfile.gettempdir()) / "aiohttp-faq-hypothesis"
)


def defines_create_app(path: Path) -> bool:
    tree = ast.parse(path.read_text("utf-8"))
    return any(
        isinstance(node, ast.FunctionDef) and node.name == "create_app"
        for node in tree.body
    )


SERVERS = [p for p in sorted(pages.SNIPPETS.glob("*/*.py")) if defines_create_app(p)]
if PLANTED:  # only the recipe with planted bugs
    SERVERS = [p for p in sorted(Path(PLANTED).glob("*/*.py")) if defines_create_app(p)]
MODULES = [f"{p.parent.name}.{p.stem}" for p in SERVERS]
WS_MODULES = [
    f"{p.parent.name}.{p.stem}"
    for p in SERVERS
    if "WebSocketResponse(" in p.read_text("utf-8")
]


@dataclass(frozen=True)
class Documented:
    """The page says the recipe answers these requests with a 500 (and logs it)."""

    page: str  # a file of docs/
    says: str  # a sentence of that page, verbatim
    request: re.Pattern[bytes]  # matches the raw requests it is about


X_USER_NOT_ASCII = Documented(
    "app_keys.md",
    "`X-User` 里有不是 UTF-8 的字节时，拼出的问候语无法编码，请求会得到 500",
    re.compile(rb"\r\nX-User: [^\r]*[\x80-\xff]"),
)
DOCUMENTED: dict[str, list[Documented]] = {
    "app_keys.after": [X_USER_NOT_ASCII],
    "app_keys.before": [X_USER_NOT_ASCII],
    "content_type_error.app": [
        Documented(
            "content_type_error.md",
            "`/bad-gateway` 总是回 502",
            re.compile(rb"^\S+ /bad-gateway[ ?/]"),
        )
    ],
    "middleware_data.session_app": [
        Documented(
            "middleware_data.md",
            "这两种 cookie 都让请求得到 500",
            re.compile(rb"\r\nCookie: [^\r]*AIOHTTP_SESSION="),
        )
    ],
    "route_decorator.app": [
        Documented(
            "route_decorator.md",
            "`request.text()` 在请求体不是 UTF-8 时抛出 `UnicodeDecodeError`",
            re.compile(rb"^POST /echo "),
        )
    ],
    "route_decorator.table": [
        Documented(
            "route_decorator.md",
            "`request.json()` 在请求体不是 JSON 时抛出 `json.JSONDecodeError`",
            re.compile(rb"^POST /orders "),
        )
    ],
}

# Warnings a recipe emits on purpose (its page explains them): filterwarnings args.
EXPECTED_WARNINGS = {
    "app_keys.before": [("ignore", "", web.NotAppKeyWarning)],
    "middleware_data.session_app": [
        ("ignore", "", web.NotAppKeyWarning, "aiohttp_session")
    ],
}


@pytest.mark.parametrize(
    ("module", "case"), [(m, c) for m, cases in DOCUMENTED.items() for c in cases]
)
def test_documented_on_the_page(module, case):
    assert module in MODULES, f"DOCUMENTED names {module}, which has no create_app"
    assert case.page == f"{module.partition('.')[0]}.md", case
    text = (pages.DOCS / case.page).read_text("utf-8")
    assert case.says in text, f"{case.page} no longer says: {case.says}"


# --- what the factories need ----------------------------------------------------


async def answer_anything(request: web.Request) -> web.Response:
    return web.Response(text="上游的回答")


@pytest.fixture
async def upstream(aiohttp_server) -> str:
    """The URL of an upstream server on 127.0.0.1 that answers every request."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer_anything)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def es_url(aiohttp_server) -> str:
    """The URL of the recipe's fake Elasticsearch, served on 127.0.0.1."""
    server = await aiohttp_server(fake_es.create_app())
    return str(server.make_url("/"))


@pytest.fixture
def db_path(tmp_path) -> Path:
    """A real SQLite file in the test's own folder."""
    return tmp_path / "recipe.db"


@pytest.fixture
def notify():
    """A notify() that returns at once (the recipes' own sleeps a second)."""

    async def done(order_id: str) -> None:
        pass

    return done


@pytest.fixture
def step_seconds() -> float:
    """A slow report made fast."""
    return 0.001


@pytest.fixture
def delay() -> float:
    """A slow handler made fast (concurrency_limit)."""
    return 0.001


@pytest.fixture
def upload_dir(tmp_path) -> Path:
    """Where file_upload stores what it receives: the test's own folder."""
    return tmp_path / "uploads"


@pytest.fixture
def file_size() -> int:
    """A large file made small (streaming_download serves it on every request)."""
    return 64 * 1024


@pytest.fixture
def stream_seconds() -> float:
    """An event stream made short (server_sent_events ends it after this)."""
    return 0.05


TOKEN = "bad-input-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}  # sent with every normal request


@pytest.fixture
def tokens() -> dict[str, str]:
    """One user, whose token the normal requests carry."""
    return {"tester": TOKEN}


ARGUMENT_FIXTURES = ["db_path", "es_url", "notify", "redis_url", "step_seconds"]
ARGUMENT_FIXTURES += ["tokens", "upstream", "delay"]
ARGUMENT_FIXTURES += ["file_size", "upload_dir"]
ARGUMENT_FIXTURES += ["stream_seconds"]


@pytest.fixture(params=MODULES)
def module(request):
    return importlib.import_module(request.param)


@pytest.fixture
def factory_args(request, module) -> dict:
    """A real value for every create_app parameter that has a fixture here."""
    args = {}
    for name, param in inspect.signature(module.create_app).parameters.items():
        if name in ARGUMENT_FIXTURES:
            args[name] = request.getfixturevalue(name)
        else:
            assert param.default is not param.empty, (
                f"{module.__name__}.create_app needs {name}: add a fixture for it"
            )
    return args


# --- the server under test ------------------------------------------------------


@dataclass
class Reply:
    status: int
    head: str


def parser_refused(record: logging.LogRecord) -> bool:
    """aiohttp's own ERROR record for a request its parser answered with 400."""
    exc = record.exc_info[1] if record.exc_info else None
    return isinstance(exc, HttpProcessingError) and exc.code == 400


@dataclass
class Target:
    """A recipe's app served on 127.0.0.1, and what the tests learnt about it."""

    name: str
    client: object  # pytest-aiohttp's TestClient
    caplog: pytest.LogCaptureFixture
    routes: list[tuple[str, str]]  # (method, path) with variables filled in
    cookies: set[str] = field(default_factory=set)  # the names the server sets
    templates: list[str] = field(default_factory=list)  # paths with {variables}

    @property
    def port(self) -> int:
        return self.client.port

    def documents(self, request: bytes) -> bool:
        return any(d.request.search(request) for d in DOCUMENTED.get(self.name, []))

    def errors(self) -> list[str]:
        """What was logged at ERROR level and not yet checked, but the parser's."""
        return [
            f"{r.name}: {r.getMessage()} {r.exc_info[1] if r.exc_info else ''!r}"
            for r in self.caplog.records
            if r.levelno >= logging.ERROR and not parser_refused(r)
        ]

    def take_errors(self) -> list[str]:
        """The errors logged since the last look (each is judged once: Hypothesis
        replays a failing example and must see the same failure again)."""
        errors = self.errors()
        self.caplog.clear()
        return errors

    def check_answer(self, request: bytes, status: int, text: str) -> None:
        """No 5xx and nothing logged, unless the page says so for this request."""
        errors = self.take_errors()  # what a documented request logs, the page says
        if not self.documents(request):
            assert status < 500, f"{request[:300]!r} -> {status} {text}"
            assert not errors, f"{request[:300]!r} -> {status}: {errors}"

    async def send(self, request: bytes) -> Reply:
        """Send raw bytes; check the answer."""
        late = self.take_errors()
        assert not late, f"logged after an earlier answer: {late}"
        reply = await exchange(self.port, request)
        self.check_answer(request, reply.status, reply.head)
        return reply

    async def still_answers(self) -> None:
        """Every route answers its plain request with a status below 500."""
        async with asyncio.timeout(TIMEOUT):
            for method, path in self.routes:
                late = self.take_errors()
                assert not late, f"logged after an answer: {late}"
                resp = await self.client.request(method, path)
                text = await resp.text(errors="replace")
                self.cookies.update(resp.cookies)
                request = f"{method} {path} HTTP/1.1".encode()
                self.check_answer(request, resp.status, text)


def app_templates(app: web.Application) -> list[str]:
    """The paths of the app's routes, with their {variables}."""
    return sorted({route.resource.canonical for route in app.router.routes()})


def app_routes(app: web.Application) -> list[tuple[str, str]]:
    """Every route of the app and its sub-apps, as a plain request would hit it."""
    found = []
    for route in app.router.routes():
        if route.method != "HEAD":
            path = re.sub(r"\{[^}]*\}", "1", route.resource.canonical)
            found.append(("GET" if route.method == "*" else route.method, path))
    return found


@pytest.fixture
async def target(module, factory_args, aiohttp_client, caplog) -> Target:
    """The recipe's app on 127.0.0.1, answering its normal requests."""
    name = module.__name__
    with warnings.catch_warnings():
        for args in EXPECTED_WARNINGS.get(name, []):
            warnings.filterwarnings(*args)
        app = module.create_app(**factory_args)
        client = await aiohttp_client(app, headers=HEADERS)
        target = Target(name, client, caplog, app_routes(app))
        target.templates = app_templates(app)
        await target.still_answers()
        yield target


async def send_all(target: Target, requests: list[bytes]) -> list[Reply]:
    """Send each request, then check the server still answers normal requests."""
    replies = [await target.send(request) for request in requests]
    await target.still_answers()
    return replies


# --- raw HTTP ---------------------------------------------------------------------


async def exchange(port: int, request: bytes) -> Reply:
    """Send bytes as they are; return the status line and headers of the answer."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            with contextlib.suppress(ConnectionResetError):
                writer.write(request)
                await writer.drain()
            try:
                answer = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                answer = exc.partial
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    head = answer.decode("latin-1")
    match = re.match(r"HTTP/\d\.\d (\d{3}) ", head)
    assert match, f"no HTTP answer to {request[:200]!r}: {answer[:300]!r}"
    return Reply(int(match.group(1)), head)


def http_request(
    method: str, path: str, headers: dict[str, bytes] | None = None, body=b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode()]
    defaults = {"Host": b"127.0.0.1", "Connection": b"close"}
    for name, value in {**defaults, **(headers or {})}.items():
        lines.append(name.encode() + b": " + value)
    if body:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# --- what hostile HTTP looks like -------------------------------------------------

KNOWN_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE"]
OTHER_METHODS = ["PROPFIND", "MKCOL", "PURGE", "QUERY", "LINK", "SEARCH", "FOO", "BREW"]
methods = st.one_of(
    st.sampled_from(KNOWN_METHODS + OTHER_METHODS),
    st.from_regex(r"[A-Z][A-Z_-]{0,15}", fullmatch=True),
)
HOSTILE_SEGMENTS = [
    *["..", "%2e%2e", "%2e%2e%2f", "..%2f", "%2e%2e%5c", "%2f", "%5c", ".", ""],
    *["%00", "%ff", "%c0%af", "%", "%zz", "~root", ";x=1", "a?b=1&b=2", "#x"],
]
PCHAR = "abcXYZ019-._~!$&'()*+,;=:@"
segments = st.one_of(
    st.sampled_from(HOSTILE_SEGMENTS),
    st.text(alphabet=PCHAR, max_size=12),
    st.text(max_size=8).map(lambda s: quote(s, safe="")),
    st.integers(-(2**70), 2**70).map(str),
)


@st.composite
def hostile_paths(draw, templates: list[str]) -> str:
    """A path that starts like one of the app's routes and goes somewhere hostile:
    hostile values for its variables, then maybe hostile segments."""
    start = draw(st.sampled_from([*templates, "/"]))
    start = re.sub(r"\{[^}]*\}", lambda _: draw(segments), start)
    if draw(st.booleans()):
        start = start.rsplit("/", 1)[0]
    rest = draw(st.lists(segments, max_size=5))
    return "/".join([start.rstrip("/"), *rest]) or "/"


def no_line_breaks(value: bytes) -> bytes:
    return bytes(c for c in value if c not in b"\r\n\x00").strip(b" \t")


HEADER_NAMES = [
    *["X-Request-ID", "X-User", "Authorization", "Cookie", "Accept-Encoding"],
    *["Accept", "Content-Type", "Origin", "X-Forwarded-For", "Range", "Expect"],
    "Host",
]
NASTY_HEADER_VALUES = [
    *[b"", b"\xff\xfe", b"\xc3\x28", b"\xe4\xbd\xa0\xe5\xa5\xbd", b"a" * 4000],
    *[
        b"Bearer",
        b"Bearer ",
        b"Basic",
        b"Basic !!!",
        b"Basic " + base64.b64encode(b":"),
    ],
    *[b"Basic " + base64.b64encode(b"\xff:x"), b"{", b"\\", b"*", b"bytes=-1,0-"],
    *[b"gzip;q=2, br, zstd, deflate, identity;q=0, *;q=0", b"multipart/form-data"],
]
utf8_header_values = st.text(max_size=20).map(lambda s: no_line_breaks(s.encode()))
header_values = st.one_of(
    st.binary(max_size=40).map(no_line_breaks),
    utf8_header_values,
    st.sampled_from(NASTY_HEADER_VALUES),
    st.binary(max_size=30).map(lambda b: b"Basic " + base64.b64encode(b)),
    st.text(max_size=12).map(lambda s: b"Bearer " + no_line_breaks(s.encode())),
)
# aiohttp 3.14 itself answers 500 to a non-UTF-8 Expect value on every route:
# its default expect handler puts the value into the text of its 417 answer.
NOT_UTF8_SAFE = {"Expect"}


def header_strategy(name: str):
    return utf8_header_values if name in NOT_UTF8_SAFE else header_values


def sendable(name: str, value: bytes) -> bool:
    """Whether the value goes into that header here (see NOT_UTF8_SAFE)."""
    if name in NOT_UTF8_SAFE:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


NASTY_COOKIE_VALUES = ["", '"', "{", "[1]", '"1"', '{"session": 1}', "%ff", "a" * 4000]
cookie_values = st.one_of(
    st.sampled_from(NASTY_COOKIE_VALUES),
    st.text(alphabet=st.characters(codec="ascii", exclude_characters=";\r\n\x00")),
    st.dictionaries(st.sampled_from(["created", "session"]), st.integers() | st.text())
    .map(json.dumps)
    .map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)

CONTENT_TYPES = [
    *[None, b"application/json", b"application/x-www-form-urlencoded"],
    *[b"multipart/form-data; boundary=xyz", b"multipart/form-data", b"text/plain"],
    *[b"text/plain; charset=no-such-charset", b"text/plain; charset=utf-16"],
]
NASTY_BODIES = [
    *[b"\x00", b"\xff\xfe", b"{", b'{"a": ', b"[1, 2", b"NaN", b"1e999999", b"[]"],
    *[b'"\xff"', b"text=%ff%fe", b"text=", b"a=1&&=", b"=", b"text=a&text=b"],
    b"--xyz\r\nContent-Disposition: form-data; name=text\r\n\r\nhi\r\n--xyz--\r\n",
    b"--xyz\r\nContent-Disposition: form-data; name=text\r\n\r\n\xff\r\n--xyz--\r\n",
    b'--xyz\r\nContent-Disposition: form-data; name="text"; filename="../../a"\r\n'
    b"\r\nfile\r\n--xyz--\r\n",
    b"--xyz\r\n\r\n",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
bodies = st.one_of(
    st.sampled_from(NASTY_BODIES),
    st.binary(min_size=1, max_size=200),
    st.text(min_size=1, max_size=50).map(lambda s: s.encode("utf-8")),
    json_values.map(lambda v: json.dumps(v).encode()),
)
BODY_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


# --- HTTP tests -------------------------------------------------------------------


@BAD_INPUT
@given(data=st.data())
async def test_hostile_paths_and_methods(target, data):
    requests = [
        http_request(data.draw(methods), data.draw(hostile_paths(target.templates)))
        for _ in range(3)
    ]
    await send_all(target, requests)


@BAD_INPUT
@given(data=st.data())
async def test_hostile_header_values(target, data):
    requests = []
    for name in HEADER_NAMES:  # each header on a route of its own
        method, path = data.draw(st.sampled_from(target.routes), label=f"{name} to")
        value = data.draw(header_strategy(name), label=name)
        requests.append(http_request(method, path, {name: value}))
    method, path = data.draw(st.sampled_from(target.routes), label="cookies to")
    for cookie in sorted(target.cookies):  # the server's own cookies, tampered with
        value = data.draw(cookie_values, label=cookie).encode()
        requests.append(
            http_request(method, path, {"Cookie": cookie.encode() + b"=" + value})
        )
    await send_all(target, requests)


@BAD_INPUT
@given(data=st.data())
async def test_hostile_bodies(target, data):
    requests = []
    for method, path in target.routes:
        method = data.draw(st.sampled_from([method, *BODY_METHODS]), label="method")
        content_type = data.draw(st.sampled_from(CONTENT_TYPES), label="content type")
        body = data.draw(bodies, label="body")
        headers = {} if content_type is None else {"Content-Type": content_type}
        requests.append(http_request(method, path, headers, body))
    await send_all(target, requests)


async def test_every_known_bad_value(target):
    """The lists above, each value on each route: not left to chance."""
    requests = []
    for method, path in target.routes:
        for name in HEADER_NAMES:
            requests += [
                http_request(method, path, {name: value})
                for value in NASTY_HEADER_VALUES
                if sendable(name, value)
            ]
        for cookie in sorted(target.cookies):
            requests += [
                http_request(method, path, {"Cookie": f"{cookie}={value}".encode()})
                for value in NASTY_COOKIE_VALUES
            ]
        if method in BODY_METHODS:
            requests += [
                http_request(method, path, {"Content-Type": content_type}, body)
                for content_type in CONTENT_TYPES[1:]
                for body in NASTY_BODIES
            ]
        requests += [
            http_request(method, f"{path}/{segment}") for segment in HOSTILE_SEGMENTS
        ]
    await send_all(target, requests)


@BAD_INPUT
@given(size=st.integers(8191, 3 * 8190))
async def test_over_aiohttp_limits(target, size):
    """aiohttp 3.14 answers 400 (not 414/431) to a line over its 8190-byte limit."""
    method, path = target.routes[0]
    requests = [
        http_request(method, path + "/" + "a" * size),
        http_request(method, path, {"X-Long": b"a" * size}),
        http_request(method, path, {f"X-H{i}": b"1" for i in range(size // 64)}),
    ]
    replies = await send_all(target, requests)
    assert [r.status for r in replies] == [400, 400, 400], replies


async def test_body_over_client_max_size(target):
    """aiohttp refuses a body over client_max_size (1 MiB) where a handler reads it."""
    body = b"a" * (2**20 + 1)
    requests = [
        http_request(method, path, {"Content-Type": content_type}, body)
        for method, path in target.routes
        if method in BODY_METHODS
        for content_type in [b"application/x-www-form-urlencoded", b"text/plain"]
    ]
    await send_all(target, requests)


MALFORMED = [
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\nHost: x\n\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / \r\nHost: x\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://other.example/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40),
    b" / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 99\r\nSec-WebSocket-Key: !!\r\n\r\n",
]


async def test_malformed_http(target):
    """Requests aiohttp's client would never send, on every route of the app."""
    requests = []
    for method, path in target.routes:
        for request in MALFORMED:
            request = request.replace(b" / ", f" {path} ".encode(), 1)
            requests.append(re.sub(rb"^GET ", f"{method} ".encode(), request))
    await send_all(target, requests)


# --- websockets -------------------------------------------------------------------

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MSG_SIZE = 4 * 2**20  # WebSocketResponse's default max_msg_size
VALID_CLOSE_CODES = {*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)}


def frame(opcode: int, payload: bytes, *, fin=True, rsv=0, masked=True) -> bytes:
    """One websocket frame as a client sends it (masked, with an all-zero key)."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 2**16:
        head += bytes([mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + n.to_bytes(8, "big")
    return head + (bytes(4) if masked else b"") + payload  # key 0: payload as is


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return frame(CLOSE, code.to_bytes(2, "big") + reason)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One frame from the server (servers do not mask)."""
    first, second = await reader.readexactly(2)
    n = second & 0x7F
    if n >= 126:
        n = int.from_bytes(await reader.readexactly(2 if n == 126 else 8), "big")
    return first & 0x0F, await reader.readexactly(n)


@contextlib.asynccontextmanager
async def websocket(target: Target, path: str):
    """A raw websocket connection, after a handshake the server accepted."""
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    try:
        handshake = {
            **{name: value.encode() for name, value in HEADERS.items()},
            "Connection": b"Upgrade",
            "Upgrade": b"websocket",
            "Sec-WebSocket-Version": b"13",
            "Sec-WebSocket-Key": base64.b64encode(b"bad-input-tests!"),
        }
        writer.write(http_request("GET", path, handshake))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def until_closed(reader, writer) -> int | None:
    """Answer the server's close frame, read to the end; return the code it sent."""
    code = None
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionResetError):
        while True:
            opcode, payload = await read_frame(reader)
            if opcode == CLOSE and code is None:
                code = int.from_bytes(payload[:2], "big") if payload else 1005
                writer.write(close_frame(1000))
    return code


async def websocket_paths(target: Target) -> list[str]:
    """The app's GET routes that accept a websocket handshake."""
    found = []
    for method, path in target.routes:
        if method == "GET":
            with contextlib.suppress(AssertionError):
                async with websocket(target, path) as (reader, writer):
                    writer.write(close_frame(1000))
                    async with asyncio.timeout(TIMEOUT):
                        await until_closed(reader, writer)
                found.append(path)
    assert found, f"{target.name} makes a WebSocketResponse, but no route upgrades"
    return found


control_payloads = st.binary(max_size=125)
data_frames = st.one_of(
    st.text(max_size=40).map(lambda s: frame(TEXT, s.encode())),
    st.binary(max_size=40).map(lambda b: frame(BINARY, b)),  # binary, text expected
    st.binary(min_size=1, max_size=8).map(lambda b: frame(TEXT, b)),  # bad UTF-8?
    control_payloads.map(lambda b: frame(PING, b)),
    control_payloads.map(lambda b: frame(PONG, b)),
    st.binary(max_size=20).map(lambda b: frame(TEXT, b, fin=False)),  # unfinished
    st.binary(max_size=20).map(lambda b: frame(CONTINUATION, b)),  # nothing to go on
    st.binary(min_size=126, max_size=200).map(lambda b: frame(PING, b)),  # too long
    st.binary(max_size=20).map(lambda b: frame(PING, b, fin=False)),  # fragmented
    st.tuples(
        st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), st.binary(max_size=9)
    ).map(lambda t: frame(*t)),  # reserved opcodes
    st.integers(1, 7).map(lambda rsv: frame(TEXT, b"x", rsv=rsv)),  # no extension
    st.text(max_size=20).map(lambda s: frame(TEXT, s.encode(), masked=False)),
)
close_frames = st.one_of(
    st.tuples(st.integers(0, 2**16 - 1), st.binary(max_size=20)).map(
        lambda t: close_frame(*t)
    ),
    st.sampled_from([1000, 1001, 1005, 1006, 1015, 999, 2999, 5000, 65535]).map(
        close_frame
    ),
    st.sampled_from(
        [frame(CLOSE, b""), frame(CLOSE, b"\x03"), close_frame(1000, b"\xff")]
    ),
)


@pytest.mark.parametrize("module", WS_MODULES, indirect=True)
@BAD_INPUT
@given(data=st.data())
async def test_hostile_websocket_frames(target, data):
    """Wrong frames, wrong types, wrong close codes: the server closes cleanly."""
    for path in await websocket_paths(target):
        sent = data.draw(st.lists(data_frames, max_size=6), label="frames")
        sent.append(data.draw(close_frames, label="close"))
        async with websocket(target, path) as (reader, writer):
            writer.write(b"".join(sent))
            async with asyncio.timeout(TIMEOUT):
                code = await until_closed(reader, writer)
        assert code in VALID_CLOSE_CODES | {1005}, code  # 1005: no code given
    await target.still_answers()


@pytest.mark.parametrize("module", WS_MODULES, indirect=True)
async def test_websocket_message_over_max_size(target):
    for path in await websocket_paths(target):
        async with websocket(target, path) as (reader, writer):
            writer.write(frame(TEXT, b"a" * (MAX_MSG_SIZE + 1)))
            async with asyncio.timeout(TIMEOUT):
                code = await until_closed(reader, writer)
        assert code == 1009, code  # WSCloseCode.MESSAGE_TOO_BIG
    await target.still_answers()


# --- these tests find bugs --------------------------------------------------------

# Handlers as a reader might write them, each with a bug only hostile input
# reaches: a path variable, a header value and a request body, trusted.
PLANTED_RECIPE = """
from aiohttp import web


async def item(request):
    return web.json_response({"id": int(request.match_info["id"])})


async def trace(request):
    return web.Response(body=request.headers.get("X-Request-ID", "-").encode("ascii"))


async def order(request):
    items = await request.json() if request.body_exists else []
    return web.json_response({"items": len(items)})


def create_app():
    app = web.Application()
    app.router.add_get("/items/{id}", item)
    app.router.add_get("/trace", trace)
    app.router.add_post("/orders", order)
    return app
"""
# The bug each test must find in the planted recipe. The list of known bad
# header values finds the third; ten generated examples of
# test_hostile_header_values did not.
FINDS = {
    "test_hostile_paths_and_methods": "ValueError",
    "test_hostile_bodies": "JSONDecodeError",
    "test_every_known_bad_value": "UnicodeEncodeError",
}


def test_planted_bugs_are_found(tmp_path):
    """With the settings above (10 examples, derandomized) each planted bug is found."""
    (tmp_path / "planted").mkdir()
    (tmp_path / "planted" / "app.py").write_text(PLANTED_RECIPE, "utf-8")
    env = servers.reader_env()
    env.update(FAQ_BAD_INPUT_PLANTED=str(tmp_path), PYTHONPATH=str(tmp_path))
    argv = [sys.executable, "-m", "pytest", __file__, "-p", "no:cacheprovider"]
    argv += ["-p", "no:xdist", "--no-cov", "-q", "-rN", "--tb=short"]
    argv += ["-k", " or ".join(FINDS)]
    result = subprocess.run(
        argv, cwd=pages.ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    out = result.stdout
    assert f"{len(FINDS)} failed" in out, out
    for test, error in FINDS.items():
        section = re.search(
            rf"^_+ {test}\[planted\.app\] _+$(.*?)(?=^_+ |\Z)", out, re.S | re.M
        )
        assert section is not None, f"{test} found nothing:\n{out}"
        assert error in section.group(1), f"{test} did not find {error}:\n{out}"
