"""Every bad input is refused the same way: generated bad values for every declared field of every
command, unknown paths, malformed ``--set`` items and broken files (strategies in
tests/strategies.py) must give exit code 2 and one line on stderr naming what the user typed -
never a traceback, an ``internal error``, or a run that starts (issue 11, item 4).

Nothing is simulated: the functions that would run or write a simulation are replaced by one that
raises, so an invocation that gets past validation shows up as an acceptance. The examples of
this module add up to more than 1,000 per run (checked by the last test).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import strategies as S
from atleus_dist import cli
from atleus_dist.config.load import load_run_config, resolve_scenario
from atleus_dist.kernel.errors import ConfigError

SHARE = 0.9  # of its declared examples, each test must run at least this share (filters reject some)


def fuzz(n: int):
    """Hypothesis settings for ``n`` examples; the ``examples`` fixture checks that they ran."""
    def deco(test):
        test = settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))(test)
        test.fuzz_examples = n
        return test

    return deco


class Examples:
    """The examples one test ran (hypothesis calls the test body once per example, all with the
    same fixture value): counted by :meth:`refused` or :meth:`add`."""

    def __init__(self) -> None:
        self.n = 0

    def add(self) -> None:
        self.n += 1

    def refused(self, argv: list[str], names: str | None) -> None:
        self.add()
        refused(argv, names)


@pytest.fixture
def examples(request):
    """Per test, no state shared between tests: it must have run ``SHARE`` of what it declared."""
    ex = Examples()
    yield ex
    want = getattr(request.function, "fuzz_examples", 0)
    assert ex.n >= SHARE * want, (request.function.__name__, ex.n, want)


class Accepted(Exception):
    """Raised instead of simulating: the invocation passed validation."""


@pytest.fixture(autouse=True, scope="module")
def _no_simulation():
    mp = pytest.MonkeyPatch()

    def accepted(*_a, **_k):
        raise Accepted("accepted")

    import atleus_dist.commands.phold as phold_cmd
    import atleus_dist.run as run_pkg
    import atleus_dist.run.baselines as baselines
    import atleus_dist.run.simulate as simulate
    import atleus_dist.workload.info as info

    mp.setattr(run_pkg, "execute", accepted)
    mp.setattr(simulate, "execute", accepted)  # run and baseline execute here
    mp.setattr(phold_cmd, "execute", accepted)
    mp.setattr(baselines, "write_gpu_baseline", accepted)
    mp.setattr(info, "model_info", accepted)
    yield
    mp.undo()


def invoke(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse's own errors (one line, exit 2)
            code = exc.code
    return code, err.getvalue()


def refused(argv: list[str], names: str | None) -> None:
    """``argv`` must be refused: exit 2, one line, naming ``names`` (if given), no out dir."""
    code, err = invoke(*argv)
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, (argv, err)
    if names is not None:
        assert names in lines[0], (argv, lines[0])


def out_dir() -> str:
    return os.path.join(tempfile.mkdtemp(prefix="fuzz-"), "out")


def test_the_harness_sees_an_acceptance():
    """A valid invocation gets past validation and hits the stand-in: the checks above can fail."""
    for argv in (["run", "--set", "scenario.seq=16", "--out", out_dir()], ["phold", "--out", out_dir()],
                 ["noc", "--rate", "0.1", "--out", out_dir()], ["model-info", "gpt2-medium", "--seq", "64"],
                 ["baseline", "gpu", "--out", out_dir()]):
        code, err = invoke(*argv)
        assert code == 1 and "Accepted" in err, (argv, err)


# --- the loader itself (what the API uses) ----------------------------------------------------
@fuzz(350)
@given(S.bad_run_item())
def test_loader_refuses_every_bad_value_naming_its_path(examples, item):
    examples.add()
    path, value = item
    with pytest.raises(ConfigError) as e:
        cfg, labels = load_run_config(None, None, {path: value})
        resolve_scenario(cfg, labels)
    assert path in e.value.field, (path, value, str(e.value))
    assert "\n" not in str(e.value)


# --- run and the simulated baselines: --set items ---------------------------------------------
@fuzz(220)
@given(S.bad_run_item(), st.sampled_from([["run"], ["run", "--transport", "stub"], ["baseline", "3d-tpu"],
                                          ["baseline", "2d-planar"]]))
def test_run_and_baselines_refuse_bad_set_items(examples, item, command):
    path, value = item
    out = out_dir()
    examples.refused(command + ["--set", f"{path}={S.yaml_text(value)}", "--out", out], f"--set {path}")
    assert not os.path.exists(out)


@fuzz(60)
@given(S.malformed_set_item, st.sampled_from(["run", "model-info", "noc", "gemm"]))
def test_malformed_set_items_are_refused(examples, item, command):
    argv = {"run": ["run"], "model-info": ["model-info", "gpt2-medium"], "noc": ["noc"],
            "gemm": ["gemm", "8", "8", "8"]}[command] + ["--set", item]
    if command in ("run", "noc"):
        argv += ["--out", out_dir()]
    examples.refused(argv, "--set")


# --- flags of every command ---------------------------------------------------------------------
NOC_FLAGS = {"router.num_vcs": "--vcs", "router.vc_buf_size_flits": "--vc-buf", "traffic.rate": "--rate",
             "traffic.pattern": "--traffic", "interface.flit_bits": "--flit-bits", "phases.measure_cycles": "--measure",
             "phases.warmup_cycles": "--warmup", "seed": "--seed", "partition": "--partition",
             "topology": "--topology", "traffic.hotspot_fraction": "--hotspot-fraction"}


@fuzz(150)
@given(st.sampled_from(S.NOC_LEAVES), st.data())
def test_noc_refuses_bad_fields_by_flag_or_set(examples, leaf, data):
    value = data.draw(S.bad_value(leaf))
    text = S.yaml_text(value)
    flag = NOC_FLAGS.get(leaf.path)
    if flag is not None and data.draw(st.booleans()) and text and not text.startswith("-"):
        argv, names = ["noc", flag, text], None  # argparse or the config names the flag
    else:
        argv, names = ["noc", "--set", f"{leaf.path}={text}"], f"--set {leaf.path}"
    out = out_dir()
    examples.refused(argv + ["--out", out], names)
    assert not os.path.exists(out)


@fuzz(80)
@given(st.sampled_from(S.PHOLD_LEAVES), st.data())
def test_phold_refuses_bad_flags(examples, leaf, data):
    value = data.draw(S.bad_value(leaf))
    text = S.yaml_text(value)
    if not text or text.startswith("-") and not text.lstrip("-").replace(".", "").isdigit():
        text = "x"
    out = out_dir()
    examples.refused(["phold", "--" + leaf.path.replace("_", "-"), text, "--out", out], None)
    assert not os.path.exists(out)


@fuzz(100)
@given(st.data())
def test_model_info_gemm_and_execution_flags_refuse_bad_values(examples, data):
    case = data.draw(st.sampled_from(["seq", "batch", "lora-rank", "quant", "lora-targets", "gemm-dim", "gemm-set",
                                      "workers", "partition", "out", "address", "gpu-set"]))
    big = st.integers(min_value=65537, max_value=10**30)
    if case in ("seq", "batch", "lora-rank"):
        v = data.draw(st.one_of(st.integers(max_value=0), big))
        if case == "batch" and v > 0:
            v = data.draw(st.integers(1025, 10**30))
        examples.refused(["model-info", "gpt2-medium", f"--{case}={v}"], f"--{case}")
    elif case == "quant":
        examples.refused(["model-info", "gpt2-medium", "--quant", data.draw(st.text(max_size=6).filter(
            lambda s: not S.QUANT.match(s)))], "quant")
    elif case == "lora-targets":
        examples.refused(["model-info", "gpt2-medium", "--lora-targets", data.draw(st.from_regex(r"zz[a-z]{1,4}",
                                                                                          fullmatch=True))], "lora")
    elif case == "gemm-dim":
        dims = ["8", "8", "8"]
        dims[data.draw(st.integers(0, 2))] = str(data.draw(st.one_of(st.integers(max_value=0),
                                                                      st.integers(1 << 24 + 1, 10**30))))
        examples.refused(["gemm", *dims, "--core", data.draw(st.sampled_from(["systolic", "reram"]))], None)
    elif case == "gemm-set":
        core = data.draw(st.sampled_from(["systolic", "reram"]))
        pool = [x for x in S.RUN_LEAVES if x.path.startswith(f"chip.{core}.")]
        leaf = data.draw(st.sampled_from(pool))
        name = leaf.path.rsplit(".", 1)[1]
        examples.refused(["gemm", "8", "8", "8", "--core", core, "--set", f"{name}={S.yaml_text(data.draw(S.bad_value(leaf)))}"],
                f"--set {name}")
    elif case == "workers":
        w = data.draw(st.one_of(st.integers(max_value=0), st.integers(1025, 10**30)))
        examples.refused(["run", "--workers", str(w), "--out", out_dir()], "--workers")
    elif case == "partition":
        p = data.draw(st.text(min_size=1, max_size=10).filter(lambda s: not S.PARTITION.fullmatch(s)
                                                              and not s.startswith("-")))
        examples.refused(["run", "--partition", p, "--out", out_dir()], "--partition")
    elif case == "out":
        examples.refused(["run", "--out", data.draw(st.sampled_from(["", " ", "  "]))], "--out")
    elif case == "address":
        backend = data.draw(st.sampled_from(["local", "inline"]))
        examples.refused(["run", "--backend", backend, "--address", "auto", "--out", out_dir()], "--address")
    else:
        field = data.draw(st.sampled_from(["compute_efficiency", "memory_efficiency"]))
        v = data.draw(st.one_of(st.floats(min_value=1.0001, max_value=1e300), st.floats(max_value=0.0, min_value=-1e300)))
        examples.refused(["baseline", "gpu", "--set", f"{field}={v!r}", "--out", out_dir()], field)


# --- files ----------------------------------------------------------------------------------------
@fuzz(80)
@given(S.bad_yaml_bytes, st.sampled_from(["arch", "scenario", "noc"]))
def test_broken_files_are_refused(examples, raw, where):
    d = Path(tempfile.mkdtemp(prefix="fuzz-file-"))
    f = d / "bad.yaml"
    f.write_bytes(raw)
    argv = {"arch": ["run", "--arch", str(f)], "scenario": ["run", str(f)], "noc": ["noc", "--config", str(f)]}[where]
    out = str(d / "out")
    examples.refused(argv + ["--out", out], "bad.yaml")
    assert not os.path.exists(out)


@fuzz(80)
@given(S.bad_arch_mapping())
def test_arch_files_with_a_bad_field_are_refused(examples, case):
    import yaml

    path, data = case
    d = Path(tempfile.mkdtemp(prefix="fuzz-arch-"))
    f = d / "arch.yaml"
    try:
        f.write_text(yaml.safe_dump(data))
    except (yaml.YAMLError, ValueError):
        return
    examples.refused(["run", "--arch", str(f), "--out", str(d / "out")], path.split(".")[0])
    assert not (d / "out").exists()


@fuzz(40)
@given(st.sampled_from(["report", "compare", "digest"]),
       st.one_of(st.text(min_size=1, max_size=12).filter(lambda s: not s.startswith("-") and "\x00" not in s),
                 st.sampled_from(["/", "/tmp", "/etc/passwd", "/nonexistent/run"])))
def test_commands_reading_runs_refuse_what_is_not_a_run(examples, command, path):
    argv = [command, path] + ([path] if command == "compare" else [])
    examples.refused(argv, None)


def test_the_module_asks_for_more_than_a_thousand_examples():
    """Each test checks that it ran ``SHARE`` of its declared examples (the ``examples`` fixture),
    so a whole run of this module runs >= 1,000: no counter shared between tests, no order."""
    declared = [f.fuzz_examples for f in globals().values() if callable(f) and hasattr(f, "fuzz_examples")]
    assert len(declared) == 9 and SHARE * sum(declared) >= 1000, declared
