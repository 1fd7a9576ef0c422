"""python_versions: the script reports what the installed packages' metadata says."""

import email
import sys
from pathlib import Path

import aiohttp
import pytest
from packaging.specifiers import SpecifierSet

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
    return dict(line.split(": ", 1) for line in lines)


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
        "发布时标注支持的 Python": ", ".join(listed) or "(未标注)",
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
        "发布时标注支持的 Python": "(未标注)",
        "正在运行": f"Python/{running} made-up/1.2.3",
        "当前解释器满足要求": ok,
    }


def test_aiohttp_3_14_needs_python_3_10():
    requires = raw_metadata("aiohttp")["Requires-Python"]
    assert satisfies((3, 10, 0), requires), requires
    assert not satisfies((3, 9, 18), requires), requires


@pytest.mark.parametrize("specifier", SPECIFIERS)
@pytest.mark.parametrize("python", PYTHONS, ids=lambda v: ".".join(map(str, v)))
def test_satisfies_agrees_with_packaging(python, specifier):
    expected = SpecifierSet(specifier).contains(".".join(map(str, python)))
    assert satisfies(python, specifier) is expected


@pytest.mark.parametrize("specifier", ["~=3.10", "==3.*", ">=3.10a1", ""])
def test_other_spellings_are_refused(specifier):
    with pytest.raises(ValueError, match="这个脚本不处理这种写法"):
        satisfies((3, 11, 7), specifier)
