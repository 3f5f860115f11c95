"""hw.units: every kind of serial unit decodes back to what built it, and the kinds never collide."""

from atleus_dist.hw.units import (HBM_CORE, UnitKind, describe, hbm_port_core, hbm_port_unit, unit_kind,
                                  weight_block_unit)


def test_units_decode_to_what_built_them():
    assert unit_kind(5) == (UnitKind.CORE, 5)
    assert unit_kind(HBM_CORE) == (UnitKind.HBM, 0)
    assert unit_kind(weight_block_unit(0)) == (UnitKind.WEIGHT_BLOCK, 0)
    assert unit_kind(weight_block_unit(86_295)) == (UnitKind.WEIGHT_BLOCK, 86_295)
    assert unit_kind(hbm_port_unit(3)) == (UnitKind.HBM_PORT, 3)
    assert hbm_port_core(0) == HBM_CORE and hbm_port_core(2) == -3
    assert describe(weight_block_unit(96)) == "weight block at crossbar 96"


def test_kinds_never_collide():
    blocks = {weight_block_unit(x) for x in range(0, 10**7, 997)}
    ports = {hbm_port_unit(k) for k in range(4096)}
    assert not blocks & ports and HBM_CORE not in blocks | ports and all(u < 0 for u in blocks | ports)
