"""A wheel of the project, installed outside the checkout, still has its data files.

The phone maps, filler list, prompt grammar and TIMIT speaker lists ship inside the package
(asr/resources); an editable install would find them in the checkout whatever pyproject says, so
this test builds a real wheel from a copy of the sources, installs it into a fresh virtual
environment in a temporary folder and runs it from there. The new environment borrows the
project environment's third-party packages through a path entry (not its site directory, so the
editable install of the checkout is not seen).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kwargs
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment outside the checkout with the project's wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "asr", src / "asr", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    dist = work / "dist"
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(src),
        ],
        cwd=work,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("asr-*.whl")
    venv = work / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=work,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work
    ).stdout.strip()
    (Path(site) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_the_wheel_holds_the_data_files(installed: Path) -> None:
    (wheel,) = (installed.parent / "dist").glob("asr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "asr/resources/phones/timit_61_39.map",
        "asr/resources/score/fillers.txt",
        "asr/resources/synth/grammar.txt",
        "asr/resources/timit/dev_spk.list",
        "asr/resources/timit/test_spk.list",
    ):
        assert name in names
    assert not any(n.startswith(("tests/", "recipes/", "data/")) for n in names)


def test_installed_package_is_the_wheel_not_the_checkout(installed: Path) -> None:
    where = _run(
        [str(installed / "bin" / "python"), "-c", "import asr; print(asr.__file__)"],
        cwd=installed.parent,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed)


def test_installed_asr_score_maps_timit_phones(installed: Path) -> None:
    work = installed.parent
    # 61-phone labels whose 39-phone folding makes the hypothesis right: ao -> aa, ix -> ih,
    # closures -> sil; unmapped, the same files give 4 substitutions in 6 phones.
    (work / "ref").write_text("u1 sil aa ih sil k sil\n", encoding="utf-8")
    (work / "hyp").write_text("u1 h# ao ix pcl k sil\n", encoding="utf-8")
    asr = str(installed / "bin" / "asr")
    mapped = _run(
        [asr, "score", "--metric", "PER", "--phone-map", "timit61-39", "ref", "hyp"], cwd=work
    )
    assert mapped.returncode == 0, mapped.stderr
    assert "%PER 0.00 [ 0 / 6, 0 ins, 0 del, 0 sub ]" in mapped.stdout
    plain = _run([asr, "score", "--metric", "PER", "ref", "hyp"], cwd=work)
    assert "%PER 66.67 [ 4 / 6, 0 ins, 0 del, 4 sub ]" in plain.stdout


def test_installed_package_generates_prompts_from_its_grammar(installed: Path) -> None:
    code = (
        "from asr.corpora.synthetic.prompts import generate_prompts, grammar_path\n"
        "print(grammar_path())\n"
        "for p in generate_prompts(5, seed=1): print(p)\n"
    )
    out = _run([str(installed / "bin" / "python"), "-c", code], cwd=installed.parent)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert Path(lines[0]).is_relative_to(installed) and Path(lines[0]).is_file()
    prompts = lines[1:]
    assert len(prompts) == 5 and all(p.strip() and p == p.lower() for p in prompts)
    assert len(set(prompts)) > 1
