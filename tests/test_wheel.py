"""The built wheel is usable on its own: installed in a fresh venv, its conformance kit runs against the embedded
store (what a third-party store package does). torch is installed first, pinned, so pip takes the local CPU
build instead of downloading one; the other dependencies come from the package index (or pip's cache)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

KIT_TEST = '''
import sys

import pytest

from ragkit.index.embedded import EmbeddedStore
from ragkit.testing import StoreConformance


def test_ragkit_comes_from_the_wheel():
    import ragkit
    assert "site-packages" in ragkit.__file__, ragkit.__file__


class TestEmbeddedStoreFromTheWheel(StoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path):
        made = iter(range(100))
        return lambda: EmbeddedStore(tmp_path / f"index-{next(made)}")
'''


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 1200) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, \
        f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_the_installed_wheel_runs_the_store_conformance_kit(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    dist = tmp_path / "dist"
    # the build runs with this environment's setuptools: no build dependencies to download
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
         str(ROOT)], tmp_path, env)
    wheel = next(dist.glob("ragkit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {"ragkit/testing/__init__.py", "ragkit/testing/store.py", "ragkit/index/embedded/store.py",
            "ragkit/generate/prompts/answer-v1.j2"} <= set(names), sorted(n for n in names if "testing" in n)
    assert not [n for n in names if n.startswith("tests/")]

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    py = str(venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "-q", "--no-compile"]
    run([*pip, "torch==2.13.0"], tmp_path, env)  # the local CPU build, before anything can ask for torch
    run([*pip, str(wheel), "pytest"], tmp_path, env)

    # importing ragkit does not need pytest; ragkit.testing does
    run([py, "-c", "import sys, ragkit; assert 'pytest' not in sys.modules and 'ragkit.testing' not in sys.modules"],
        tmp_path, env)
    work = tmp_path / "thirdparty"
    work.mkdir()
    (work / "test_kit.py").write_text(textwrap.dedent(KIT_TEST), encoding="utf-8")
    out = run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_kit.py"], work, env)
    assert " passed" in out and "failed" not in out and "error" not in out, out
