"""Bad NoC input: one line naming the field, exit code 2; beyond saturation is reported, not hung."""

import pytest

from atleus_dist.hw.noc.config import NocConfig, RouterConfig, TrafficConfig
from atleus_dist.kernel import ConfigError

BASE = ["noc", "--warmup", "20", "--measure", "50", "--drain", "20", "--quiet", "--backend", "inline"]


@pytest.mark.parametrize("args,field", [
    (["--mesh", "4xx4"], "topology"),
    (["--mesh", "0x4x4"], "topology"),
    (["--topology", "torus:4x4"], "topology"),
    (["--traffic", "zipf"], "traffic"),
    (["--mesh", "3x3x1", "--traffic", "transpose"], "traffic"),
    (["--mesh", "4x4x2", "--traffic", "transpose"], "traffic"),
    (["--rate", "1.5"], "rate"),
    (["--rate", "-0.1"], "rate"),
    (["--vcs", "0"], "num_vcs"),
    (["--vc-alloc-delay", "0"], "vc_alloc_delay_cycles"),
    (["--credit-delay", "-1"], "credit_delay_cycles"),
    (["--packet-flits", "0"], "packet_flits"),
    (["--partition", "stripes"], "partition"),
    (["--partition", "blocks:8x1"], "partition"),
    (["--partition", "map:0,1"], "partition"),
    (["--hotspots", "99", "--traffic", "hotspot"], "hotspots"),
    (["--vc-allocator", "islip"], "vc_allocator"),
    (["--workers", "0"], "workers"),
])
def test_bad_input_names_the_field(tmp_path, cli, args, field):
    code, _data, err = cli(*BASE, "--out", str(tmp_path / "x"), *args)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and (field in lines[0] or args[0] in lines[0]), err


def test_config_keys_are_checked():
    with pytest.raises(ConfigError) as exc:
        NocConfig.from_dict({"router": {"num_vc": 4}})
    assert exc.value.field == "router.num_vc"
    with pytest.raises(ConfigError):
        RouterConfig(wait_for_tail_credit="yes")
    with pytest.raises(ConfigError):
        TrafficConfig(pattern="uniform", rate=float("nan"))


def test_rate_beyond_saturation_is_reported_saturated(tmp_path, cli):
    code, data, err = cli("noc", "--mesh", "4x4x1", "--rate", "0.9", "--warmup", "100", "--measure", "200",
                          "--drain", "100", "--backend", "inline", "--quiet", "--json", "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert data["saturated"] is True
    assert data["accepted_flit_rate"] < data["offered_flit_rate"]
