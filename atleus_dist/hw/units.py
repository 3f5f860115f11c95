"""The serial units and core ids of the op table, in one place.

An op occupies one *serial unit* while it runs (:mod:`atleus_dist.hw.compute` runs one op at a
time per unit) and is recorded with a *core* id (the ``core`` column of the ``ops`` table). Both
share one int64 space; the kind of an id is its range, and only this module builds or reads them:

=============================================  ==========================  ======================
what                                           unit id                     core id
=============================================  ==========================  ======================
core c (ReRAM 0.., then systolic)              c                           c
ReRAM weight block whose first crossbar is x   ``-(x + 2)``: -2, -3, ...   its core
HBM, one memory (tier LPs)                     ``HBM_CORE`` = -1           -1
HBM port k of the chip (ops striped)           ``HBM_PORT_UNIT0 - k``      ``HBM_CORE - k``
off-chip link port k, sending                  ``LINK_UNIT0 - k``          the unit id
off-chip link port k, receiving                ``LINK_UNIT0 - 2**20 - k``  the unit id
=============================================  ==========================  ======================

A weight block is its own unit because ISAAC's tiles work independently: blocks of one core
overlap, one op at a time on each. Port units start at -2**40, clear of every weight block (a chip
has far fewer than 2**40 crossbars). The encodings are part of the result tables (the ``core``
column), so they stay as they are; what changed is that nothing else spells them out. Knows
nothing of the op graph, LPs, files or Ray.
"""

from __future__ import annotations

import enum

HBM_CORE = -1
HBM_PORT_UNIT0 = -(1 << 40)
# link ports (systems of chips) below every weight block (fewer than 2**30 crossbars) and above
# the HBM ports
LINK_UNIT0 = -(1 << 30)
_LINK_RX = 1 << 20


class UnitKind(enum.Enum):
    CORE = "core"
    WEIGHT_BLOCK = "weight block"
    HBM = "hbm"
    HBM_PORT = "hbm port"
    LINK_TX = "link port (send)"
    LINK_RX = "link port (receive)"


def weight_block_unit(first_xbar: int) -> int:
    """The unit of the ReRAM weight block whose first crossbar is ``first_xbar``."""
    return -(first_xbar + 2)


def hbm_port_unit(port: int) -> int:
    return HBM_PORT_UNIT0 - port


def hbm_port_core(port: int) -> int:
    """The core id of HBM port ``port``'s ops (port 0 is the tier LPs' single HBM, -1)."""
    return HBM_CORE - port


def link_tx_unit(port: int) -> int:
    """The unit (and core id) of a chip's off-chip link port ``port``, sending."""
    return LINK_UNIT0 - port


def link_rx_unit(port: int) -> int:
    """The unit (and core id) of a chip's off-chip link port ``port``, receiving."""
    return LINK_UNIT0 - _LINK_RX - port


def unit_kind(unit: int) -> tuple[UnitKind, int]:
    """(kind, index) of a unit id: the core, the first crossbar, the HBM port or the link port."""
    if unit >= 0:
        return UnitKind.CORE, unit
    if unit == HBM_CORE:
        return UnitKind.HBM, 0
    if unit <= HBM_PORT_UNIT0:
        return UnitKind.HBM_PORT, HBM_PORT_UNIT0 - unit
    if unit <= LINK_UNIT0:
        k = LINK_UNIT0 - unit
        return (UnitKind.LINK_RX, k - _LINK_RX) if k >= _LINK_RX else (UnitKind.LINK_TX, k)
    return UnitKind.WEIGHT_BLOCK, -unit - 2


def describe(unit: int) -> str:
    """A unit id in words, for error messages (``weight block at crossbar 96``)."""
    kind, index = unit_kind(unit)
    return {UnitKind.CORE: f"core {index}", UnitKind.WEIGHT_BLOCK: f"weight block at crossbar {index}",
            UnitKind.HBM: "the HBM", UnitKind.HBM_PORT: f"HBM port {index}",
            UnitKind.LINK_TX: f"link port {index} (send)", UnitKind.LINK_RX: f"link port {index} (receive)"}[kind]
