"""The package installs: a wheel built from this repository, installed in a fresh venv and run
from another directory, finds its models and scenarios and runs (issue 11, item 5).

Offline and fast: the venv has no pip and no dependencies of its own - a .pth file lends it the
test interpreter's site-packages (numpy, pyarrow...), which holds no atleus_dist code (at most an
editable install's metadata, whose finder a .pth path line does not activate)."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    pytest.importorskip("wheel")
    pytest.importorskip("setuptools")  # --no-build-isolation builds with the test venv's own
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "dist"), str(REPO)], check=True, env=env, cwd=tmp, capture_output=True)
    wheel = next((tmp / "dist").glob("atleus_dist-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
    py = tmp / "venv" / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "lend-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
                   check=True, env=env, capture_output=True)
    return tmp, py, env


def _run(venv, *args):
    tmp, py, env = venv
    cli = py.parent / "atleus-dist"
    return subprocess.run([str(cli), *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


def test_installed_package_is_the_wheel_and_carries_its_workloads(venv):
    tmp, py, env = venv
    out = subprocess.run([py, "-c", "import atleus_dist, atleus_dist.workload as w; print(atleus_dist.__file__); "
                          "print(','.join(w.available_models()))"], cwd=tmp, env=env, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert str(tmp / "venv") in out[0]
    assert {"llama-2-7b", "gpt2-medium", "vit-b-16"} <= set(out[1].split(","))


def test_wheel_runs_model_info_and_a_stub_run_from_elsewhere(venv):
    r = _run(venv, "model-info", "llama-2-7b", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] == 6_738_415_616  # the published Llama 2 7B count
    r = _run(venv, "run", "gpt2-medium-lora32-s1024", "--set", "scenario.seq=8", "--transport", "stub",
             "--backend", "inline", "--quiet", "--json", "--out", str(venv[0] / "r1"))
    assert r.returncode == 0, r.stderr
    fig = json.loads(r.stdout)
    assert (fig["model"], fig["seq"], fig["transport"]) == ("gpt2-medium", 8, "stub") and fig["step_latency_ps"] > 0
