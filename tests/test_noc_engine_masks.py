"""The engine's bit sets (engine_state.Routers / Nis) stay equal to what its rows say: kept
incrementally by the kernels, they match a rebuild from the rows, parked VCs counted back in."""

import dataclasses

import numpy as np
import pytest

from atleus_dist.hw.noc import engine as E
from atleus_dist.hw.noc.config import NocConfig, PhaseConfig, TrafficConfig
from atleus_dist.hw.noc.engine_router import rebuild_masks
from atleus_dist.hw.noc.region import Region
from atleus_dist.hw.noc.topology import build_topology


def _bits(words: np.ndarray, n: int) -> list[int]:
    return [i for i in range(n) if (int(words[i >> 6]) >> (i & 63)) & 1]


@pytest.mark.parametrize("rate, wft", [(0.3, True), (0.3, False), (0.05, True)])
def test_bit_sets_match_a_rebuild_from_the_rows(rate, wft):
    cfg = NocConfig(topology="mesh:4x4x4", traffic=TrafficConfig(rate=rate),
                    phases=PhaseConfig(warmup_cycles=100, measure_cycles=400, drain_cycles=0))
    cfg = dataclasses.replace(cfg, router=dataclasses.replace(cfg.router, vc_buf_size_flits=4,
                                                              wait_for_tail_credit=wft))
    topo = build_topology(cfg)
    reg = Region(cfg, topo, np.arange(topo.n_routers), np.zeros(topo.n_routers, dtype=np.int64), 0)
    ra = reg.routers
    P, V = ra.P, ra.V
    parked = 0
    for stop in (150, 300, 450):
        reg.run(stop)
        va, sa = ra.va_vcs.copy(), ra.sa_vcs.copy()
        for rpo in np.flatnonzero(ra.va_wait):  # heads parked on an output port, still in VA
            l = rpo // P
            for iv in range(P * V):
                q = l * P * V + iv
                if (int(ra.va_wait[rpo]) >> iv) & 1 and ra.rv[q, E.V_STATE] == E.VA:
                    va[q // V] |= 1 << (q % V)
                    parked += 1
        for oq in np.flatnonzero(ra.sa_wait >= 0):  # flits parked for a credit
            q = int(ra.sa_wait[oq])
            sa[q // V] |= 1 << (q % V)
            parked += 1
        kept = {"free": ra.free_vcs.copy(), "queued": _bits(reg.nis.queued, reg.nis.ni.shape[1])}
        ctl, rt, nis = reg.groups()[:3]
        rebuild_masks(ctl, rt, nis)
        assert (ra.va_vcs == va).all() and (ra.sa_vcs == sa).all()
        assert (ra.free_vcs == kept["free"]).all()
        assert _bits(reg.nis.queued, reg.nis.ni.shape[1]) == kept["queued"]
        busy = [l for l in range(ra.R) if ra.va_ports[l] or ra.sa_ports[l]]
        assert _bits(ra.busy, ra.R) == busy
        assert int(ra.rr[:, E.RR_BUF].sum()) == int(reg.sc[E.S_BUFFERED]) == int(ra.rv[:, E.V_CNT].sum())
    if rate > 0.1:
        assert parked > 0  # the saturated runs exercise parking
