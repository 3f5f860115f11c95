"""The cluster path a user takes, end to end on this machine: the README's `ray up`, `ray submit`,
`ray rsync-down`, `ray job submit` and `ray down` commands, run as written on a copy of
cluster/local.yaml, against an sshd of the test's own on 127.0.0.1.

Everything lives in one short temp dir: sshd's config, host key, the user's key and
authorized_keys; the "remote" user's HOME (sshd's SetEnv), where Ray puts its bootstrap files and
the cluster's token; RAY_TMPDIR (sessions, address file, cluster state). Other sessions may run Ray
on this machine at the same time, so the cluster gets ports of its own, and `ray stop` - which
stops every Ray process of a machine, and which `ray down` runs on the head - is replaced on the
head's PATH by one that stops only the processes of this test's head (marked by an environment
variable sshd sets). Processes are ended by pid, never by name.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.test_cluster_docs import REPO, VENV_PLACEHOLDER, job_args, readme_commands, split_env

BIN = Path(sys.executable).parent
MARK = "ATLEUS_TEST_NODE"  # set by the test's sshd in every session: the head's processes carry it
SHARED = "/tmp/atleus/"  # the README's result paths on the head (this machine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_range(n: int) -> int:
    """The first port of ``n`` consecutive free ones, below the ephemeral range and above the
    10002-19999 Ray gives workers by default (other sessions' Ray instances use that)."""
    rng = secrets.SystemRandom()
    for _ in range(50):
        base = rng.randrange(20000, 30000 - n)
        try:
            socks = []
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def marked(marker: str) -> list:
    """Everything started on the head: processes whose environment carries ``MARK=marker`` and
    their descendants (Ray's workers and agents retitle themselves, which overwrites the
    environment /proc shows, but they are children of the raylet)."""
    import ray  # noqa: F401  (puts Ray's bundled psutil on sys.path)
    import psutil

    found = {}
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARK) == marker:
                found.update({q.pid: q for q in (p, *p.children(recursive=True))})
        except (psutil.Error, OSError):
            pass
    return list(found.values())


def stop_node(marker: str) -> int:
    """`ray stop` for this test's head only: end the marked processes but this one and its parents."""
    import ray  # noqa: F401
    import psutil

    me = psutil.Process()
    keep = {me.pid, *(p.pid for p in me.parents())}
    victims = [p for p in marked(marker) if p.pid not in keep]
    for p in victims:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(victims, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    print(f"stopped {len(victims)} processes of the test head {marker}")
    return 0


def kill_tree(pid: int) -> None:
    import ray  # noqa: F401
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)


def control_dir(cluster_name: str) -> Path:
    """The directory of Ray's SSH ControlMaster sockets for a cluster (command_runner.py)."""
    user = hashlib.sha256(getpass.getuser().encode()).hexdigest()[:10]
    return Path("/tmp") / f"ray_ssh_{user}" / hashlib.sha256(cluster_name.encode()).hexdigest()[:10]


class Sshd:
    """An sshd on 127.0.0.1 with keys, config and the session's HOME in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root, self.user, self.port = root, getpass.getuser(), free_port()
        self.home, self.raytmp = root / "home", root / "r"
        self.home.mkdir()
        self.raytmp.mkdir()
        self.key = root / "user_key"
        for key in (root / "host_key", self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        shutil.copy(root / "user_key.pub", root / "authorized_keys")
        config = root / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {root}/host_key",
            f"PidFile {root}/sshd.pid", f"AuthorizedKeysFile {root}/authorized_keys",
            "StrictModes no",  # the keys sit under /tmp, which is world-writable
            "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", f"AllowUsers {self.user}",
            f"SetEnv HOME={self.home} RAY_TMPDIR={self.raytmp} {MARK}={root}", ""]))
        self.made_privsep = None
        privsep = Path("/run/sshd")  # Debian's sshd refuses to start without it
        if not privsep.exists() and os.geteuid() == 0:
            privsep.mkdir(mode=0o755)
            self.made_privsep = privsep
        self.log = open(root / "sshd.log", "w")  # noqa: SIM115  (closed by stop())
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        unavailable(f"sshd did not start: {(root / 'sshd.log').read_text()[-500:]}")

    def stop(self) -> None:
        kill_tree(self.proc.pid)  # the listener and every session it forked
        self.proc.wait(timeout=10)
        self.log.close()
        if self.made_privsep is not None:
            self.made_privsep.rmdir()
            self.made_privsep = None


def unavailable(reason: str):
    """Skip where the test cannot work; in CI (which installs what it needs) that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"CI should have what the cluster test needs: {reason}")
    pytest.skip(reason)


def missing_tools() -> list[str]:
    need = {"/usr/sbin/sshd": "openssh-server", "ssh": "openssh-client", "ssh-keygen": "openssh-client",
            "rsync": "rsync", "nc": "netcat-openbsd"}
    return sorted({pkg for tool, pkg in need.items() if shutil.which(tool) is None})


def write_shims(root: Path, marker: str) -> Path:
    """The "venv" the copied YAML names: python and ray of this interpreter's venv, with `ray stop`
    narrowed to this test's head."""
    bin_dir = root / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    here = Path(__file__).resolve()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (bin_dir / "ray").write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = stop ]; then exec {sys.executable} {here} stop-node {marker}; fi\n'
        f'exec {BIN / "ray"} "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return root / "venv"


def cluster_yaml(root: Path, sshd: Sshd, venv: Path, ports: dict[str, int]) -> Path:
    """cluster/local.yaml with the keys its header says a user edits, pointed at the test's sshd."""
    config = yaml.safe_load((REPO / "cluster" / "local.yaml").read_text())
    config["cluster_name"] = f"atleus-test-{secrets.token_hex(4)}"
    config["auth"] = {"ssh_user": sshd.user, "ssh_private_key": str(sshd.key),
                      "ssh_proxy_command": f"nc %h {sshd.port}"}
    setup = config["setup_commands"][0]
    assert VENV_PLACEHOLDER in setup, "local.yaml: ATLEUS_VENV is no longer the documented placeholder"
    config["setup_commands"][0] = setup.replace(VENV_PLACEHOLDER, str(venv))
    start = config["head_start_ray_commands"][-1]
    for flag in ("--dashboard-host=127.0.0.1", "--node-ip-address=127.0.0.1", "--port=6379",
                 "--dashboard-port=8265"):
        assert flag in start, f"local.yaml: the head's start command lost {flag}"
    # later flags win (click): the test's own ports, clear of other sessions' Ray
    config["head_start_ray_commands"][-1] = start + " " + " ".join(
        f"--{k}={v}" for k, v in ports.items()) + " --num-cpus=2"
    path = root / "local.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip.startswith("::ffff:127.") or ip == "::1"


class Run:
    """Runs the README's commands as a user on this machine would, with the test's paths."""

    def __init__(self, root: Path, config: Path, dash_port: int, env: dict[str, str]) -> None:
        self.root, self.config, self.dash_port, self.env = root, config, dash_port, env
        self.log = root / "commands.log"

    def word(self, w: str) -> str:
        if w == "cluster/local.yaml":
            return str(self.config)
        if w.startswith(SHARED):
            return str(self.root / "out" / w[len(SHARED):])
        if w.startswith("runs/"):
            return str(self.root / "fetched" / w[len("runs/"):])
        return w.replace("http://127.0.0.1:8265", f"http://127.0.0.1:{self.dash_port}")

    def __call__(self, argv: list[str], timeout: float = 180) -> str:  # each takes 1-20 s here
        extra, argv = split_env(argv)
        assert argv[0] == "ray", argv
        cmd = [str(BIN / "ray"), *map(self.word, argv[1:])]
        t0 = time.monotonic()
        res = subprocess.run(cmd, cwd=REPO, env={**self.env, **extra}, capture_output=True, text=True,
                             timeout=timeout)
        out = res.stdout + res.stderr
        with self.log.open("a") as f:
            f.write(f"$ {shlex.join(argv)}   [{time.monotonic() - t0:.1f} s, exit {res.returncode}]\n{out}\n")
        assert res.returncode == 0, f"{shlex.join(argv)} exited {res.returncode}:\n{out[-4000:]}"
        return out


def head_listeners(marker: str) -> list[tuple[str, str, int]]:
    import psutil

    procs = {p.pid: p for p in marked(marker)}
    found = []
    for c in psutil.net_connections(kind="inet"):
        if c.status == psutil.CONN_LISTEN and c.pid in procs:
            try:
                found.append((procs[c.pid].name(), c.laddr.ip, c.laddr.port))
            except psutil.Error:
                pass
    return found


def token_is_required(dash_port: int, token_file: Path) -> None:
    """The head's job API refuses a request without the cluster's token and answers one with it."""
    url = f"http://127.0.0.1:{dash_port}/api/jobs/"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=30)
    assert refused.value.code == 401, refused.value  # missing token
    with pytest.raises(urllib.error.HTTPError) as wrong:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": "Bearer " + "0" * 32}),
                               timeout=30)
    assert wrong.value.code == 403, wrong.value  # invalid token
    auth = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    with urllib.request.urlopen(urllib.request.Request(url, headers=auth), timeout=30) as ok:
        assert ok.status == 200


@pytest.mark.cluster
@pytest.mark.ray  # it starts Ray: `-m "not ray"` skips it with the others
@pytest.mark.slow
def test_readme_cluster_commands_run_on_this_machine(cli, digest_of):
    missing = missing_tools()
    if missing:
        unavailable(f"needs Debian's {', '.join(missing)} (.ci/run installs them with apt)")
    pytest.importorskip("ray")
    import psutil

    commands = readme_commands()
    root = Path(tempfile.mkdtemp(prefix="atc-", dir="/tmp"))  # short: Ray's socket paths fit 107 bytes
    marker = str(root)
    # the single-process reference of every atleus-dist command the README runs on the cluster
    refs = {}
    for argv in commands:
        args = job_args(argv)
        if args is not None:
            i = args.index("--out")
            key = tuple(args[:i] + args[i + 2:])
            if key not in refs:
                out = root / "ref" / str(len(refs))
                code, _d, err = cli(*key, "--backend", "inline", "--quiet", "--out", str(out))
                assert code == 0, err
                refs[key] = digest_of(out)
            refs[args[i + 1]] = refs[key]

    ssh_dirs = control_dir("x").parent  # Ray makes it if missing: removed then
    made_ssh_dirs = not ssh_dirs.exists()
    try:
        sshd = Sshd(root)
    except BaseException:  # skipped or failed: leave nothing
        shutil.rmtree(root, ignore_errors=True)
        raise
    name, alive = None, []
    try:
        names = ["port", "dashboard-port", "ray-client-server-port", "node-manager-port",
                 "object-manager-port", "metrics-export-port", "dashboard-agent-listen-port",
                 "dashboard-agent-grpc-port", "runtime-env-agent-port"]
        ports = {n: free_port() for n in names}
        base = free_range(64)
        ports.update({"min-worker-port": base, "max-worker-port": base + 63})
        config = cluster_yaml(root, sshd, write_shims(root, marker), ports)
        name = yaml.safe_load(config.read_text())["cluster_name"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(HOME=str(sshd.home), RAY_TMPDIR=str(sshd.raytmp), TMPDIR=str(sshd.raytmp),
                   PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
        run = Run(root, config, ports["dashboard-port"], env)
        for argv in commands:
            verb = split_env(argv)[1][1]
            if verb == "down":
                break
            out = run(argv)
            if verb == "up":
                # what the head exposes: every Ray listener on loopback, the dashboard among them
                listeners = head_listeners(marker)
                procs = {n for n, _ip, _p in listeners}
                assert {"gcs_server", "raylet"} <= procs and any(n.startswith("ray::") for n in procs)
                assert [ln for ln in listeners if not loopback(ln[1])] == []
                assert ("127.0.0.1", ports["dashboard-port"]) in {(ip, p) for _n, ip, p in listeners}
                token_is_required(ports["dashboard-port"], sshd.home / ".ray" / "auth_token")
            if verb == "job":
                assert "succeeded" in out
        for argv in commands:  # the results, on the shared path and fetched, against the reference
            _e, argv = split_env(argv)
            args = job_args(argv)
            if args is not None:
                out = args[args.index("--out") + 1]
                assert digest_of(run.word(out)) == refs[out], argv
            if argv[1] == "rsync-down":  # rsync SRC DEST/ fetches SRC into DEST/<name of SRC>
                fetched = Path(run.word(argv[-1])) / Path(argv[-2]).name
                assert digest_of(fetched) == refs[argv[-2]], argv
        run(commands[-1])  # `ray down`, which must leave nothing of the head running
        deadline = time.monotonic() + 20
        while marked(marker) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [(p.pid, p.name()) for p in marked(marker)] == []
    finally:
        for p in marked(marker):  # a failed step: end what it left, by pid
            kill_tree(p.pid)
        sshd.stop()
        if name is not None:
            cdir = control_dir(name)
            masters = [p for p in psutil.process_iter(["cmdline"])
                       if str(cdir) in " ".join(p.info["cmdline"] or [])]
            _gone, alive = psutil.wait_procs(masters, timeout=10)
            for p in alive:
                p.kill()
            shutil.rmtree(cdir, ignore_errors=True)
            if made_ssh_dirs:
                shutil.rmtree(ssh_dirs, ignore_errors=True)
        log = root / "commands.log"
        if log.exists():
            print(log.read_text()[-20000:])  # shown by pytest when the test fails
        shutil.rmtree(root, ignore_errors=True)
    assert sshd.proc.poll() is not None
    assert alive == [], f"ssh control masters outlived sshd: {alive}"


if __name__ == "__main__" and sys.argv[1:2] == ["stop-node"]:
    sys.exit(stop_node(sys.argv[2]))
