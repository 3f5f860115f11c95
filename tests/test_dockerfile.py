"""The Docker image's COPY list covers what the installed package needs.

No Docker here: the files the Dockerfile copies, and only those, go to a temp dir; a wheel built
from them is installed into a fresh venv (which sees the shared venv's dependencies through a
.pth, not its editable atleus-dist) and `model-info` and a stub `run` run from another directory
with no PYTHONPATH - so nothing of the repository can stand in for what the image lacks. The stub
run's digest must equal the same run from the source tree.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUB_RUN = ["run", "--set", "scenario.seq=32", "--transport", "stub", "--backend", "inline", "--quiet"]


def dockerfile_copies(dockerfile: Path = REPO / "Dockerfile") -> list[tuple[str, str]]:
    """``(source, destination)`` of every COPY, destinations relative to the WORKDIR."""
    pairs = []
    for line in dockerfile.read_text().splitlines():
        if not line.upper().startswith("COPY "):
            continue
        words = shlex.split(line)
        args = [w for w in words[1:] if not w.startswith("--")]
        *sources, dest = args
        for src in sources:
            into = dest.endswith("/") or len(sources) > 1
            pairs.append((src, str(Path(dest) / Path(src).name) if into else dest))
    return pairs


def test_dockerfile_copy_list_parses_and_names_the_package():
    pairs = dockerfile_copies()
    dests = {os.path.normpath(d) for _s, d in pairs}
    assert {"pyproject.toml", "README.md", "atleus_dist", "cluster"} <= dests, pairs
    for src, _d in pairs:
        assert (REPO / src).exists(), f"Dockerfile copies {src!r}, which is not in the repository"


@pytest.mark.slow
def test_wheel_from_the_dockerfile_files_runs_model_info_and_a_stub_step(tmp_path, cli, digest_of):
    try:
        import wheel  # noqa: F401  (bdist_wheel of setuptools < 70.1)
    except ImportError:
        pytest.skip("no `wheel` in this venv: pip install wheel (.ci/run does)")
    src = tmp_path / "context"
    for s, d in dockerfile_copies():
        target = src / d
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / s).is_dir():
            shutil.copytree(REPO / s, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / s, target)
    dist = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(src)], check=True, env=env, timeout=300, capture_output=True)
    (whl,) = dist.glob("atleus_dist-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the shared venv's packages (numpy, ray, ...) as a plain path: its .pth files, among them the
    # editable atleus-dist, are not processed from there
    (site / "shared_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                    "--no-index", str(whl)], check=True, env=env, timeout=300, capture_output=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def installed(*args):
        res = subprocess.run([str(venv / "bin" / "atleus-dist"), *args], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"atleus-dist {shlex.join(args)}: {res.stdout[-2000:]}{res.stderr[-2000:]}"
        return res.stdout

    where = subprocess.run([py, "-c", "import atleus_dist; print(atleus_dist.__file__)"], cwd=elsewhere,
                           env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert where.startswith(str(site)), where  # the wheel's package, not the repository
    assert "gpt2-medium" in installed("model-info", "gpt2-medium")
    out = tmp_path / "stub"
    installed(*STUB_RUN, "--out", str(out))
    ref = tmp_path / "ref"
    code, _d, err = cli(*STUB_RUN, "--out", str(ref))
    assert code == 0, err
    assert digest_of(out) == digest_of(ref)
