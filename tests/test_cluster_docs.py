"""The cluster files say what tests/test_cluster.py relies on, without starting anything: the
README's cluster block is the session the end-to-end test runs, both YAMLs are valid Ray cluster
configs that bind the dashboard to 127.0.0.1 and require Ray's token, and the keys a user edits
are where the YAML's header says."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
README_HEADING = "### On a Ray cluster"
VENV_PLACEHOLDER = "/path/to/atleus-dist/.venv"  # local.yaml's ATLEUS_VENV until a user edits it
YAMLS = ("local.yaml", "aws.yaml")


def readme_commands(readme: Path = REPO / "README.md") -> list[list[str]]:
    """The first ``sh`` block of the README's cluster section, one argv per command."""
    text = readme.read_text()
    section = text[text.index(README_HEADING):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def split_env(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` words (the shell's per-command environment) and the command."""
    env = {}
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):
        name, value = argv[0].split("=", 1)
        env[name] = value
        argv = argv[1:]
    return env, argv


def job_args(argv: list[str]) -> list[str] | None:
    """The atleus-dist command line a ``ray submit``/``ray job submit`` command runs, if any."""
    if "cluster/job.py" not in argv:
        return None
    rest = argv[argv.index("cluster/job.py") + 1:]
    return rest[1:] if rest[:1] == ["--"] else rest


def test_readme_cluster_block_is_a_whole_session():
    commands = [split_env(c) for c in readme_commands()]
    verbs = [argv[1] for _env, argv in commands]
    assert all(argv[0] == "ray" for _env, argv in commands)
    assert verbs[0] == "up" and verbs[-1] == "down" and "up" not in verbs[1:] and "down" not in verbs[:-1]
    assert {"submit", "rsync-down", "job"} <= set(verbs)
    for env, argv in commands:
        if argv[1] in ("up", "down"):
            assert "-y" in argv and "cluster/local.yaml" in argv
        if argv[1] == "job":
            assert env.get("RAY_AUTH_MODE") == "token"  # the head requires its token
        args = job_args(argv)
        if args is not None:
            assert "--out" in args and args[args.index("--out") + 1].startswith("/tmp/atleus/")
    # a small stub `run` and a PHOLD, as issue 15 asks
    jobs = [job_args(argv)[0] for _e, argv in commands if job_args(argv)]
    assert "phold" in jobs and "run" in jobs


def test_cluster_yamls_are_valid_and_bind_dashboards_to_loopback():
    from ray.autoscaler._private.util import prepare_config, validate_config

    for name in YAMLS:
        text = (REPO / "cluster" / name).read_text()
        config = yaml.safe_load(text)
        validate_config(prepare_config(config))
        start = " ".join(config["head_start_ray_commands"])
        assert "--dashboard-host=127.0.0.1" in start, name
        assert "0.0.0.0" not in text, name
        assert "RAY_AUTH_MODE=token" in text, name


def test_local_yaml_keeps_the_user_edited_keys_documented():
    text = (REPO / "cluster" / "local.yaml").read_text()
    config = yaml.safe_load(text)
    header = text.split("\ncluster_name:")[0]
    for key in ("ssh_user", "ssh_private_key", "ssh_proxy_command", "ATLEUS_VENV", "--port",
                "--dashboard-port", "ssh -L 8265:127.0.0.1:8265"):
        assert key in header, key
    assert VENV_PLACEHOLDER in config["setup_commands"][0]
    start = config["head_start_ray_commands"][-1]
    assert "--node-ip-address=127.0.0.1" in start
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0" in config["setup_commands"][0]  # drivers too
    assert config["provider"] == {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []}
