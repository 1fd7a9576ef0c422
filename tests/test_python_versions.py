"""python_versions: the script reports what the installed packages' metadata says."""

import email
import ensurepip
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import aiohttp
import pytest
from packaging.specifiers import SpecifierSet

import pages
from python_versions.check_python import main, satisfies

SITE_PACKAGES = Path(aiohttp.__file__).resolve().parents[1]
DISTS = ["aiohttp", "yarl", "multidict", "frozenlist", "aiosignal"]
SPECIFIERS = [">=3.10", ">3.10", "<=3.10", "<3.11", "==3.10", "!=3.10.5", ">=3.9, <4"]
SPECIFIERS += ["==3.10.0"]  # longer than (3, 10): both are padded with zeros
PYTHONS = [
    (3, 9, 18),
    (3, 10),
    (3, 10, 0),
    (3, 10, 5),
    (3, 11, 7),
    (3, 14, 0),
    (4, 0, 0),
]
RUNNING = ".".join(map(str, sys.version_info[:3]))


def raw_metadata(dist: str) -> email.message.Message:
    """The METADATA file of ``dist`` found on disk and parsed as the e-mail it is."""
    [path] = SITE_PACKAGES.glob(f"{dist}-*.dist-info/METADATA")
    return email.message_from_string(path.read_text("utf-8"))


def printed_lines(capsys, *dist: str) -> dict[str, str]:
    main(*dist)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 4, out
    return dict(line.split("：", 1) for line in lines)


@pytest.mark.claim("安装后就保存在本机的")
@pytest.mark.claim("想查别的包，把包名传给 `main()`")
@pytest.mark.parametrize("dist", DISTS)
def test_main_prints_the_metadata_on_disk(dist, capsys):
    meta = raw_metadata(dist)
    version, requires = meta["Version"], meta["Requires-Python"]
    major_minor = ".".join(version.split(".")[:2])
    listed = [
        c.removeprefix("Programming Language :: Python :: ")
        for c in meta.get_all("Classifier", [])
        if c.startswith("Programming Language :: Python :: 3.")
    ]
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    contains = SpecifierSet(requires).contains(".".join(map(str, sys.version_info[:3])))
    assert printed_lines(capsys, dist) == {
        f"{dist} {major_minor} 要求的 Python": requires,
        "发布时标注支持的 Python": "、".join(listed) or "（未标注）",
        "正在运行": f"Python/{running} {dist}/{version}",
        "当前解释器满足要求": "是" if contains else "否",
    }


def test_aiohttp_line_names_the_imported_version(capsys):
    printed = printed_lines(capsys)  # aiohttp is the default
    major_minor = ".".join(aiohttp.__version__.split(".")[:2])
    assert f"aiohttp {major_minor} 要求的 Python" in printed, printed
    assert printed["正在运行"].endswith(f" aiohttp/{aiohttp.__version__}"), printed


@pytest.fixture
def made_up(tmp_path, monkeypatch):
    """Install a distribution "made-up" 1.2.3 that asks for ``requires``."""

    def install(requires: str) -> str:
        info = tmp_path / "made_up-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: made-up\nVersion: 1.2.3\n"
            f"Requires-Python: {requires}\n"
        )
        monkeypatch.syspath_prepend(tmp_path)
        return "made-up"

    return install


@pytest.mark.parametrize(
    ("requires", "ok"),
    [(f"=={RUNNING}", "是"), (f"!={RUNNING}", "否"), (">=4", "否")],
)
def test_main_says_when_the_running_python_does_not_fit(made_up, capsys, requires, ok):
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert printed_lines(capsys, made_up(requires)) == {
        "made-up 1.2 要求的 Python": requires,
        "发布时标注支持的 Python": "（未标注）",
        "正在运行": f"Python/{running} made-up/1.2.3",
        "当前解释器满足要求": ok,
    }


@pytest.mark.claim("aiohttp 3.14 要求 Python 3.10 或更新的版本")
def test_aiohttp_3_14_needs_python_3_10():
    meta = raw_metadata("aiohttp")
    assert meta["Version"].startswith("3.14."), meta["Version"]
    requires = meta["Requires-Python"]
    assert satisfies((3, 10, 0), requires), requires
    assert not satisfies((3, 9, 18), requires), requires
    assert SpecifierSet(requires) == SpecifierSet(">=3.10"), requires  # or newer


@pytest.mark.claim("这种由比较符和数字版本组成的写法")
@pytest.mark.parametrize("specifier", SPECIFIERS)
@pytest.mark.parametrize("python", PYTHONS, ids=lambda v: ".".join(map(str, v)))
def test_satisfies_agrees_with_packaging(python, specifier):
    expected = SpecifierSet(specifier).contains(".".join(map(str, python)))
    assert satisfies(python, specifier) is expected


@pytest.mark.claim("遇到 `~=`、`3.*` 之类会直接报错")
@pytest.mark.parametrize("specifier", ["~=3.10", "==3.*", ">=3.10a1", ""])
def test_other_spellings_are_refused(specifier):
    with pytest.raises(ValueError, match="这个脚本不处理这种写法"):
        satisfies((3, 11, 7), specifier)


@pytest.mark.claim("会把这一行的版本号替换成占位符再比较")
def test_the_third_line_is_compared_without_its_versions():
    shown = (pages.SNIPPETS / "python_versions" / "check_python.txt").read_text("utf-8")
    line = shown.splitlines()[2]
    assert pages.normalize(line) == "正在运行：Python/<ver> aiohttp/<ver>", line
    assert pages.normalize("正在运行：Python/3.13 aiohttp/3.14.0") == pages.normalize(
        line
    )


def wheel(folder: Path, version: str, requires: str, classifier: str) -> None:
    """A wheel of the made-up distribution "made-up", built by hand."""
    name = f"made_up-{version}"
    metadata = (
        f"Metadata-Version: 2.1\nName: made-up\nVersion: {version}\n"
        f"Requires-Python: {requires}\nClassifier: {classifier}\n"
    )
    with zipfile.ZipFile(folder / f"{name}-py3-none-any.whl", "w") as archive:
        archive.writestr("made_up.py", f"VERSION = {version!r}\n")
        archive.writestr(f"{name}.dist-info/METADATA", metadata)
        archive.writestr(
            f"{name}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n",
        )
        archive.writestr(f"{name}.dist-info/RECORD", "")


@pytest.mark.claim("pip 选版本时按它筛选")
@pytest.mark.claim("pip 不看它")
@pytest.mark.claim("跳过 `Requires-Python` 不包含当前 Python 的版本")
@pytest.mark.claim("**悄悄选一个还支持这个 Python 的旧版本**")
def test_pip_picks_the_newest_release_this_python_may_install(tmp_path):
    """A real pip (the one Python bundles for ensurepip), offline, on two wheels:
    1.0 lists only Python 2.7 but requires nothing newer than 3.0; 2.0 lists the
    running Python but requires Python 99."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    wheels, out = tmp_path / "wheels", tmp_path / "out"
    wheels.mkdir()
    wheel(wheels, "1.0", ">=3.0", "Programming Language :: Python :: 2.7")
    wheel(wheels, "2.0", ">=99", f"Programming Language :: Python :: {running}")
    bundled = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    assert bundled, "this Python bundles no pip wheel for ensurepip"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    offline = ["--isolated", "--no-index", "--find-links", str(wheels)]
    download = ["download", *offline, "--no-deps", "-d", str(out), "made-up"]
    result = subprocess.run(
        [sys.executable, str(bundled[-1] / "pip"), *download],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
    assert "ERROR" not in result.stdout, result.stdout
    assert [p.name for p in out.iterdir()] == ["made_up-1.0-py3-none-any.whl"]
