"""certificate_verify: what aiohttp's client does with certificates it cannot verify,
and each way to trust a CA, over real TLS.

Every server is the page's own HTTPS aiohttp server (``https_app.serve()``, on a
free port of 127.0.0.1) presenting a real certificate: the page's trustme CA, other
trustme CAs, or a self-signed one made by the ``openssl`` program. The page's
programs run in-process (in an empty folder of their own) and, where the point is
what a fresh process does, as processes.
"""

import asyncio
import datetime
import hashlib
import logging
import os
import re
import runpy
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest
import trustme
from aiohttp import web

import pages
import servers

FOLDER = pages.SNIPPETS / "certificate_verify"
MODULES = ("make_certs", "https_app", "trust_ca", "env_var", "ssl_false", "pin")
# CPython names the line of _ssl.c that raised; it differs between Python versions.
SSL_C_LINE = re.compile(r"\(_ssl\.c:\d+\)")


@pytest.fixture
def snippets(monkeypatch, tmp_path) -> dict[str, ModuleType]:
    """The page's programs, imported from their folder, run in an empty folder."""
    monkeypatch.chdir(tmp_path)
    # unset, and unset again afterwards whatever a test or env_var.py sets
    monkeypatch.setenv("SSL_CERT_FILE", "")
    monkeypatch.delenv("SSL_CERT_FILE")
    with pages.imported(FOLDER, *MODULES) as modules:
        yield modules


def as_compared(text: str) -> str:
    return SSL_C_LINE.sub("(_ssl.c:…)", pages.normalize(text))


def assert_shown(printed: str, name: str) -> None:
    shown = (FOLDER / name).read_text("utf-8")
    assert as_compared(printed) == as_compared(shown), printed


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    """A server's context presenting ``cert`` (and the chain trustme gives it)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def context_from_files(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def get(url: str, **kwargs) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, **kwargs) as resp:
            return resp.status, await resp.text()


async def refused(url: str, **kwargs) -> aiohttp.ClientConnectorCertificateError:
    """The error a request to ``url`` raises because the certificate is refused."""
    with pytest.raises(aiohttp.ClientConnectorCertificateError) as raised:
        await get(url, **kwargs)
    return raised.value


def reason(error: aiohttp.ClientConnectorCertificateError) -> str:
    return error.certificate_error.verify_message


OK = (200, "你好，这是 HTTPS")


# --- what the page's programs print ---------------------------------------------


def test_make_certs_prints_what_the_page_shows(snippets, capsys, tmp_path):
    runpy.run_path(str(FOLDER / "make_certs.py"), run_name="__main__")
    assert_shown(capsys.readouterr().out, "make_certs.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        snippets["make_certs"].FILES
    )
    assert snippets["https_app"].HOST == snippets["make_certs"].HOST


@pytest.mark.claim("`IP address mismatch, certificate is not valid for '127.0.0.1'.`")
@pytest.mark.claim("冒充者的请求照样得到 200")
@pytest.mark.parametrize("name", ["https_app", "trust_ca", "ssl_false", "pin"])
async def test_programs_print_what_the_page_shows(snippets, capsys, name):
    await snippets[name].main()
    assert_shown(capsys.readouterr().out, f"{name}.txt")


@pytest.mark.claim("`import aiohttp` 的时候就建好了，那时还没有 `SSL_CERT_FILE`")
@pytest.mark.claim("设置之后新建的 `ssl.create_default_context()` 读到了这个变量")
async def test_env_var_prints_what_the_page_shows(snippets, capsys, tmp_path):
    # As a reader runs it: a fresh process, which imports aiohttp first ...
    assert "SSL_CERT_FILE" not in os.environ
    (tmp_path / "env_var.py").write_bytes((FOLDER / "env_var.py").read_bytes())
    assert_shown(run_program("env_var.py", tmp_path, {}), "env_var.txt")
    made = "import ssl, aiohttp.connector as c; print(type(c._SSL_CONTEXT_VERIFIED))"
    printed = run_program(made, tmp_path, {}, code=True)
    assert printed == "<class 'ssl.SSLContext'>\n", printed
    # ... and here, where aiohttp was imported long before
    await snippets["env_var"].main()
    assert os.environ["SSL_CERT_FILE"] == "ca.pem"
    assert_shown(capsys.readouterr().out, "env_var.txt")


# --- the error --------------------------------------------------------------------


@pytest.mark.claim("`aiohttp.ClientConnectorError` 和 `aiohttp.ClientError` 的子类")
@pytest.mark.claim("（即 `ssl.CertificateError`）的子类，这几个 `except` 都能捕获它")
@pytest.mark.parametrize(
    "caught",
    [
        aiohttp.ClientConnectorCertificateError,
        aiohttp.ClientSSLError,
        aiohttp.ClientConnectorError,
        aiohttp.ClientError,
        ssl.SSLCertVerificationError,
        ssl.CertificateError,
    ],
)
async def test_each_except_catches_the_error(snippets, caught):
    async with snippets["https_app"].serve() as url:
        with pytest.raises(caught) as raised:
            await get(url)
    assert type(raised.value) is aiohttp.ClientConnectorCertificateError


@pytest.mark.claim("也就是异常对象的 `certificate_error` 属性")
@pytest.mark.claim("这里是 20 和 `unable to get local issuer certificate`")
async def test_the_ssl_error_inside(snippets):
    async with snippets["https_app"].serve() as url:
        error = await refused(url)
    inner = error.certificate_error
    assert type(inner) is ssl.SSLCertVerificationError
    assert (inner.verify_code, inner.verify_message) == (
        20,
        "unable to get local issuer certificate",
    )
    assert f"[SSLCertVerificationError: {inner.args}]" in str(error)


@pytest.mark.claim("`ssl:True` 说的是这是 HTTPS 连接，不是 `ssl=` 参数的值")
async def test_ssl_true_in_the_message_whatever_ssl_was(snippets):
    async with snippets["https_app"].serve() as url:
        ip_url = url.replace("localhost", "127.0.0.1")
        error = await refused(ip_url, ssl=snippets["trust_ca"].trusting())
    assert error.ssl is True
    assert " ssl:True [" in str(error), str(error)


@pytest.fixture
def other_ca() -> trustme.CA:
    """A CA the client does not trust."""
    return trustme.CA()


@pytest.fixture
def page_ca(snippets, tmp_path) -> trustme.CA:
    """The page's CA: make_certs.py wrote ca.pem, server.crt and server.key."""
    return snippets["make_certs"].make_certs(tmp_path)


@pytest.fixture
def self_signed(tmp_path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, made as readers make one."""
    cert, key = tmp_path / "self.crt", tmp_path / "self.key"
    openssl = servers.require_program("openssl")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-nodes", "-days", "1",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


LONG_AGO = {
    "not_before": datetime.datetime(2000, 1, 1),
    "not_after": datetime.datetime(2001, 1, 1),
}


def with_root(ca: trustme.CA, folder: Path) -> ssl.SSLContext:
    """A server that sends its certificate and the CA's, as some servers do."""
    cert = ca.issue_cert("localhost")
    chain = folder / "chain.pem"
    chain.write_bytes(cert.cert_chain_pems[0].bytes() + ca.cert_pem.bytes())
    cert.private_key_pem.write_to_path(folder / "chain.key")
    return context_from_files(chain, folder / "chain.key")


@pytest.mark.claim(
    "`unable to get local issuer certificate`：证书由一个不受信任的 CA 签发"
)
@pytest.mark.claim("证书链要连到一个受信任的 CA，证书上的主机名要和 URL 里的主机一致")
@pytest.mark.claim(
    "`self-signed certificate in certificate chain`：服务器把 CA 的证书也一起发了过来"
)
@pytest.mark.claim("`self-signed certificate`：服务器的证书是自签名的")
@pytest.mark.claim(
    "`certificate has expired`：证书过期了；信任了签发它的 CA 也一样报这个错"
)
@pytest.mark.claim(
    "没有 URL 里的主机名时，是 `Hostname mismatch, certificate is not valid"
)
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("untrusted CA", "unable to get local issuer certificate"),
        ("chain with its root", "self-signed certificate in certificate chain"),
        ("self-signed", "self-signed certificate"),
        ("expired, CA trusted", "certificate has expired"),
        (
            "other host, CA trusted",
            "Hostname mismatch, certificate is not valid for 'localhost'.",
        ),
        (
            "IP, CA trusted",
            "IP address mismatch, certificate is not valid for '127.0.0.1'.",
        ),
    ],
)
async def test_the_reasons(
    snippets, tmp_path, other_ca, page_ca, self_signed, case, expected
):
    default = aiohttp.connector._SSL_CONTEXT_VERIFIED  # what ssl=True uses
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname
    trusted = {"ssl": snippets["trust_ca"].trusting()}
    contexts: dict[str, tuple[Callable[[], ssl.SSLContext], dict]] = {
        "untrusted CA": (lambda: server_context(other_ca.issue_cert("localhost")), {}),
        "chain with its root": (lambda: with_root(other_ca, tmp_path), {}),
        "self-signed": (lambda: context_from_files(*self_signed), {}),
        "expired, CA trusted": (
            lambda: server_context(page_ca.issue_cert("localhost", **LONG_AGO)),
            trusted,
        ),
        "other host, CA trusted": (
            lambda: server_context(page_ca.issue_cert("other.example")),
            trusted,
        ),
        "IP, CA trusted": (
            lambda: server_context(page_ca.issue_cert("localhost")),
            trusted,
        ),
    }
    make_context, client = contexts[case]
    async with snippets["https_app"].serve(make_context()) as url:
        if case.startswith("IP"):
            url = url.replace("localhost", "127.0.0.1")
        error = await refused(url, **client)
    assert reason(error) == expected
    assert f"certificate verify failed: {expected} (_ssl.c:" in str(error)


# --- trusting the CA ----------------------------------------------------------------


@pytest.mark.claim("对自签名的证书，`cafile` 就指向这张证书本身")
@pytest.mark.claim("对自签名的证书，CA 就是这张证书本身")
async def test_a_self_signed_certificate_is_its_own_ca(snippets, self_signed):
    cert, key = self_signed
    async with snippets["https_app"].serve(context_from_files(cert, key)) as url:
        assert await get(url, ssl=snippets["trust_ca"].trusting(str(cert))) == OK


@pytest.fixture
def system_store(monkeypatch, tmp_path, other_ca) -> trustme.CA:
    """``other_ca`` stands for the system's CA list: OpenSSL's default CA file."""
    other_ca.cert_pem.write_to_path(tmp_path / "system.pem")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "system.pem"))
    return other_ca


@pytest.mark.claim("系统自带的 CA 不再加载")
@pytest.mark.claim("用它去请求公网上的 HTTPS 地址会失败")
@pytest.mark.claim("再用 `load_verify_locations()` 加上 `ca.pem`，两边签发的证书都接受")
async def test_cafile_trusts_that_file_only(snippets, system_store):
    trust_ca = snippets["trust_ca"]
    public = server_context(system_store.issue_cert("localhost"))
    async with (
        snippets["https_app"].serve() as ours,
        snippets["https_app"].serve(public) as theirs,
    ):
        # the "system" CA is trusted by default: the store stands in for it
        assert await get(theirs, ssl=ssl.create_default_context()) == OK
        assert await get(ours, ssl=trust_ca.trusting()) == OK
        error = await refused(theirs, ssl=trust_ca.trusting())
        assert reason(error) == "unable to get local issuer certificate"
        assert await get(ours, ssl=trust_ca.trusting_also()) == OK
        assert await get(theirs, ssl=trust_ca.trusting_also()) == OK


@pytest.mark.claim("传给单个请求的 `ssl=` 只管这一个请求")
@pytest.mark.claim("传给 `TCPConnector(ssl=...)` 的管这个会话的每个请求")
@pytest.mark.claim("请求上的 `ssl=True` 是默认值，\n  照样用连接器的设置")
async def test_where_ssl_is_given(snippets):
    trusting = snippets["trust_ca"].trusting
    impostor = snippets["ssl_false"].impostor_context()
    async with (
        snippets["https_app"].serve() as url,
        snippets["https_app"].serve(impostor) as other,
    ):
        async with aiohttp.ClientSession() as session:
            async with session.get(url, ssl=trusting()) as resp:
                assert resp.status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(url)  # the next request: the default again
        connector = aiohttp.TCPConnector(ssl=trusting())
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(2):
                async with session.get(url) as resp:
                    assert resp.status == 200
            async with session.get(url, ssl=True) as resp:
                assert resp.status == 200  # True: the connector's context
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(other, ssl=True)
            # the request's own value wins over the connector's
            async with session.get(other, ssl=False) as resp:
                assert resp.status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(url, ssl=ssl.create_default_context())


@pytest.mark.claim("连接器上的 `Fingerprint` 是例外")
@pytest.mark.claim("这个指纹照样要比对，\n  不符就是 `ServerFingerprintMismatch`")
async def test_the_connectors_fingerprint_is_checked_whatever_the_request_says(
    snippets,
):
    wrong = aiohttp.Fingerprint(hashlib.sha256(b"another certificate").digest())
    async with snippets["https_app"].serve() as url:
        connector = aiohttp.TCPConnector(ssl=wrong)
        async with aiohttp.ClientSession(connector=connector) as session:
            for ssl_value in [False, snippets["trust_ca"].trusting()]:
                with pytest.raises(aiohttp.ServerFingerprintMismatch):
                    await session.get(url, ssl=ssl_value)


@pytest.mark.claim("连接照样去 URL 里的地址，证书改用这个名字检查")
async def test_server_hostname(snippets):
    async with snippets["https_app"].serve() as url:
        trusted = snippets["trust_ca"].trusting()
        ip_url = url.replace("localhost", "127.0.0.1")
        assert await get(ip_url, ssl=trusted, server_hostname="localhost") == OK
        error = await refused(ip_url, ssl=trusted, server_hostname="other.example")
    assert reason(error) == (
        "Hostname mismatch, certificate is not valid for 'other.example'."
    )


# --- SSL_CERT_FILE --------------------------------------------------------------------


@pytest.mark.claim("用它指向的文件代替默认的 CA 文件")
def test_ssl_cert_file_replaces_the_default_file(snippets, monkeypatch, tmp_path):
    snippets["make_certs"].ensure_certs()
    ours = ssl.create_default_context(cafile="ca.pem").get_ca_certs()
    assert len(ours) == 1
    default = ssl.create_default_context().get_ca_certs()
    assert default, "no CA file where OpenSSL looks by default: install ca-certificates"
    assert ours[0] not in default
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    assert ssl.create_default_context().get_ca_certs() == ours


def run_program(
    name: str, folder: Path, env: dict[str, str], *, code: bool = False
) -> str:
    """``python <name>`` (or ``python -c name``) in ``folder`` as a fresh process:
    what it printed."""
    for program in ("make_certs.py", "https_app.py"):
        (folder / program).write_bytes((FOLDER / program).read_bytes())
    result = subprocess.run(
        [sys.executable, *(["-c"] if code else []), name],
        cwd=folder,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    return result.stdout


@pytest.mark.claim("`https_app.py` 一行没改，默认设置的请求就成功了")
def test_ssl_cert_file_set_before_the_program_starts(snippets, tmp_path):
    snippets["make_certs"].ensure_certs()
    printed = run_program("https_app.py", tmp_path, {"SSL_CERT_FILE": "ca.pem"})
    assert printed.splitlines()[1] == f"  {OK[0]} {OK[1]}", printed
    without = run_program("https_app.py", tmp_path, {})
    assert "unable to get local issuer certificate" in without, without


TRUST_ENV_BOTH_WAYS = """
import asyncio, sys
import aiohttp

async def main():
    for trust_env in (False, True):
        async with aiohttp.ClientSession(trust_env=trust_env) as session:
            try:
                async with session.get(sys.argv[1]) as resp:
                    print(trust_env, resp.status)
            except aiohttp.ClientConnectorCertificateError as exc:
                print(trust_env, exc.certificate_error.verify_message)

asyncio.run(main())
"""


@pytest.mark.claim("`ClientSession(trust_env=True)` 与证书无关")
@pytest.mark.claim("`trust_env` 取 `True` 还是 `False`，结果都一样")
async def test_trust_env_does_not_trust_certificates(snippets, tmp_path):
    """Fresh processes, with SSL_CERT_FILE set before they start and without."""
    snippets["make_certs"].ensure_certs()
    ca = str(tmp_path / "ca.pem")  # the snippets run in tmp_path
    (tmp_path / "both.py").write_text(TRUST_ENV_BOTH_WAYS, "utf-8")
    async with snippets["https_app"].serve() as url:
        runs = {}
        for env in ({}, {"SSL_CERT_FILE": ca}):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "both.py", url, cwd=tmp_path,
                env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await proc.communicate()
            runs[bool(env)] = out.decode().splitlines()
    failed = "unable to get local issuer certificate"
    assert runs == {
        False: [f"False {failed}", f"True {failed}"],
        True: ["False 200", "True 200"],
    }, runs


# --- ssl=False ------------------------------------------------------------------------


@pytest.fixture
def impostors(other_ca, page_ca) -> dict[str, trustme.LeafCert]:
    """Certificates a client that checks would refuse, each for its own reason."""
    return {
        "another CA": other_ca.issue_cert("localhost"),
        "another host": page_ca.issue_cert("other.example"),
        "another CA and host": other_ca.issue_cert("other.example"),
        "expired": page_ca.issue_cert("localhost", **LONG_AGO),
    }


@pytest.mark.claim("不检查证书链、主机名，也不检查有效期")
@pytest.mark.claim("没有异常，没有警告，也没有日志")
@pytest.mark.parametrize(
    "impostor", ["another CA", "another host", "another CA and host", "expired"]
)
async def test_ssl_false_accepts_any_certificate(
    snippets, impostors, impostor, caplog, recwarn
):
    caplog.set_level(logging.DEBUG)
    context = server_context(impostors[impostor])
    async with snippets["https_app"].serve(context) as url:
        error = await refused(url, ssl=snippets["trust_ca"].trusting())
        caplog.clear()
        assert await get(url, ssl=False) == OK
        logged = [r for r in caplog.records if r.name != "aiohttp.access"]
    assert reason(error)  # a client that checks refuses it
    assert logged == [], [r.getMessage() for r in logged]
    assert len(recwarn) == 0, [str(w.message) for w in recwarn]


async def tls_version(request: web.Request) -> web.Response:
    """The TLS version the server negotiated, seen from its side."""
    return web.Response(text=request.transport.get_extra_info("ssl_object").version())


@pytest.mark.claim("`ssl=False` 时连接照样用 TLS 加密")
async def test_ssl_false_still_speaks_tls(snippets, impostors, monkeypatch):
    def tls_app() -> web.Application:
        """The page's server, answering with the TLS version it negotiated."""
        app = web.Application()
        app.router.add_get("/", tls_version)
        return app

    monkeypatch.setattr(snippets["https_app"], "create_app", tls_app)
    context = server_context(impostors["another CA and host"])
    async with snippets["https_app"].serve(context) as url:
        status, version = await get(url, ssl=False)
    assert status == 200
    assert version.startswith("TLSv1."), version


@pytest.mark.claim(
    "会发出 `DeprecationWarning`：`verify_ssl is deprecated, use ssl=False instead`"
)
async def test_verify_ssl_false_is_deprecated(snippets, impostors):
    cert = impostors["another CA and host"]
    async with snippets["https_app"].serve(server_context(cert)) as url:
        async with aiohttp.ClientSession() as session:
            with pytest.warns(
                DeprecationWarning,
                match="^verify_ssl is deprecated, use ssl=False instead$",
            ):
                async with session.get(url, verify_ssl=False) as resp:
                    assert (resp.status, await resp.text()) == OK


# --- Fingerprint ------------------------------------------------------------


@pytest.mark.claim("指纹是证书 DER 编码的 SHA-256 摘要，32 字节")
async def test_the_fingerprint_is_the_sha256_of_the_der_certificate(snippets):
    async with snippets["https_app"].serve() as url:
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        pem = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", port))
    pinned = snippets["pin"].fingerprint("server.crt")
    assert len(pinned) == 32
    assert pinned == hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest()


@pytest.mark.claim("给它 16 或 20 字节（MD5、SHA-1 的长度）抛出 `ValueError`")
@pytest.mark.parametrize("digest", [hashlib.md5, hashlib.sha1])
def test_fingerprint_takes_sha256_only(digest):
    with pytest.raises(ValueError, match="md5 and sha1 are insecure"):
        aiohttp.Fingerprint(digest(b"certificate").digest())


@pytest.mark.claim("打印的是同一个摘要，写成冒号分隔的十六进制")
def test_openssl_prints_the_same_fingerprint(snippets):
    snippets["make_certs"].ensure_certs()
    openssl = servers.require_program("openssl")
    result = subprocess.run(
        [openssl, "x509", "-in", "server.crt", "-noout", "-fingerprint", "-sha256"],
        check=True,
        capture_output=True,
        text=True,
    )
    hex_digest = result.stdout.strip().split("=", 1)[1]
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", hex_digest), hex_digest
    assert bytes.fromhex(hex_digest.replace(":", "")) == snippets["pin"].fingerprint()


@pytest.mark.claim("它是 `aiohttp.ServerConnectionError` 的子类")
@pytest.mark.claim("属性 `expected`、`got` 是两个摘要，`host`、`port` 是对方的地址")
async def test_the_mismatch_error(snippets, impostors):
    cert = impostors["another CA"]
    expected = snippets["pin"].fingerprint("server.crt")
    got = hashlib.sha256(
        ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    ).digest()
    async with snippets["https_app"].serve(server_context(cert)) as url:
        with pytest.raises(aiohttp.ServerConnectionError) as raised:
            await get(url, ssl=aiohttp.Fingerprint(expected))
    error = raised.value
    assert type(error) is aiohttp.ServerFingerprintMismatch
    assert not isinstance(error, aiohttp.ClientSSLError)
    assert (error.expected, error.got, error.host) == (expected, got, "127.0.0.1")
    assert f":{error.port}/" in url


@pytest.mark.claim("只比对指纹")
@pytest.mark.claim("所以自签名、过期、签给别的主机名的证书，指纹对就接受")
@pytest.mark.parametrize(
    "case", ["self-signed", "expired", "another host", "another CA and host"]
)
async def test_a_matching_fingerprint_is_all_that_counts(
    snippets, impostors, self_signed, case
):
    if case == "self-signed":
        cert_file, key_file = self_signed
        context = context_from_files(cert_file, key_file)
        pem = cert_file.read_text()
    else:
        context = server_context(impostors[case])
        pem = impostors[case].cert_chain_pems[0].bytes().decode()
    pinned = aiohttp.Fingerprint(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest())
    async with snippets["https_app"].serve(context) as url:
        await refused(url, ssl=snippets["trust_ca"].trusting())  # not trusted
        assert await get(url, ssl=pinned) == OK


@pytest.mark.claim("即使同一个 CA 签发、签给同一个主机名，指纹也变了，请求全部失败")
async def test_a_renewed_certificate_breaks_the_pin(snippets, page_ca):
    pinned = aiohttp.Fingerprint(snippets["pin"].fingerprint("server.crt"))
    renewed = server_context(page_ca.issue_cert("localhost"))
    async with snippets["https_app"].serve() as url:
        assert await get(url, ssl=pinned) == OK
    async with snippets["https_app"].serve(renewed) as url:
        assert await get(url, ssl=snippets["trust_ca"].trusting()) == OK
        with pytest.raises(aiohttp.ServerFingerprintMismatch):
            await get(url, ssl=pinned)
