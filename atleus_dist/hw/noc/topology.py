"""Topology registry and the 3D mesh: router coordinates, port wiring, link classes, DOR routing.

A topology is a registry entry ``name -> builder(spec, cfg)``, so another topology is one new
builder. Port numbering follows BookSim2's k-ary n-cube (output ``2d`` goes to +d, ``2d+1`` to -d,
then the local ports: the core NI's ``interface.ni_ports``, then a memory controller's
``interface.mc_ports``), which also fixes the round-robin order of the allocators (ports no flit
ever uses do not change it, so one local port is exactly BookSim2's router).
This module knows nothing of time, LPs or how routers are simulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from atleus_dist.hw.noc.traffic import check_pattern
from atleus_dist.kernel.errors import ConfigError

PLANAR, TSV, LOCAL = 0, 1, 2
LINK_CLASSES = ("planar", "tsv", "local")


@dataclass(frozen=True, eq=False)
class Topology:
    """Arrays describing the routers and links; router id == node id (one node per router)."""

    name: str
    dims: tuple[int, ...]            # routers along x, y, z (z = tiers)
    coords: np.ndarray               # (N, 3) int
    n_ports: int                     # 2 * len(dims) + ni_ports + mc_ports: the local ports last
    out_router: np.ndarray           # (N, P) neighbour router id or -1 (local port: -1)
    out_inport: np.ndarray           # (N, P) input port of the neighbour
    link_class: np.ndarray           # (N, P) PLANAR / TSV / LOCAL
    latency_cycles: np.ndarray       # (N, P) flit and credit wire latency
    busy_cycles: np.ndarray          # (N, P) cycles one flit occupies the link (serialisation)
    ni_ports: int = 1                # local ports of a router's core NI (first local ports)
    mc_ports: int = 0                # local ports of a router's memory-controller NI (0: none)

    @property
    def n_routers(self) -> int:
        return int(self.coords.shape[0])

    @property
    def local_port(self) -> int:
        """The first local port (the core NI's first); with one NI port, the last port."""
        return self.n_ports - self.ni_ports - self.mc_ports

    @property
    def n_nodes(self) -> int:
        """Node ids: 0..N-1 the routers' core NIs, N..2N-1 their memory controllers' (if any)."""
        return self.n_routers * (2 if self.mc_ports else 1)

    def route(self, cur: np.ndarray, dest: np.ndarray) -> np.ndarray:
        """Dimension-order output port at router ``cur`` for packets to ``dest`` (vectorised)."""
        c = self.coords[cur]
        d = self.coords[dest]
        diff = c != d
        any_diff = diff.any(axis=1)
        dim = np.argmax(diff, axis=1)
        rows = np.arange(len(cur))
        plus = c[rows, dim] < d[rows, dim]
        port = 2 * dim + np.where(plus, 0, 1)
        return np.where(any_diff, port, self.local_port).astype(np.int64)

    def hops(self, src: np.ndarray, dest: np.ndarray) -> np.ndarray:
        """Routers traversed by a DOR packet (BookSim2 counts the source router too)."""
        return np.abs(self.coords[src] - self.coords[dest]).sum(axis=1) + 1


def _parse_dims(spec: str, field: str = "topology") -> tuple[int, int, int]:
    try:
        parts = [int(p) for p in spec.lower().split("x")]
    except ValueError:
        raise ConfigError(field, f"mesh size must look like 4x4x4, got {spec!r}") from None
    if len(parts) == 2:
        parts.append(1)
    if len(parts) != 3 or any(p < 1 for p in parts):
        raise ConfigError(field, f"mesh size must be XxYxZ with positive integers, got {spec!r}")
    if parts[0] * parts[1] * parts[2] < 2:
        raise ConfigError(field, "a mesh needs at least 2 routers")
    return parts[0], parts[1], parts[2]


def build_mesh(spec: str, cfg) -> Topology:
    """``mesh:XxYxZ``: X x Y routers per tier, Z tiers of equal size joined by TSVs."""
    dims = _parse_dims(spec)
    n = dims[0] * dims[1] * dims[2]
    ids = np.arange(n)
    coords = np.stack([ids % dims[0], (ids // dims[0]) % dims[1], ids // (dims[0] * dims[1])], axis=1)
    ni_ports, mc_ports = cfg.interface.ni_ports, cfg.interface.mc_ports or 0
    n_ports = 2 * len(dims) + ni_ports + mc_ports  # BookSim2's port order, then the local ports
    out_router = np.full((n, n_ports), -1, dtype=np.int64)
    out_inport = np.full((n, n_ports), -1, dtype=np.int64)
    link_class = np.full((n, n_ports), LOCAL, dtype=np.int64)
    latency = np.full((n, n_ports), cfg.interface.local_latency_cycles, dtype=np.int64)
    busy = np.ones((n, n_ports), dtype=np.int64)
    stride = [1, dims[0], dims[0] * dims[1]]
    for d in range(3):
        link = cfg.tsv if d == 2 else cfg.planar
        for sign, port in ((1, 2 * d), (-1, 2 * d + 1)):
            nb = coords[:, d] + sign
            ok = (nb >= 0) & (nb < dims[d])
            out_router[ok, port] = ids[ok] + sign * stride[d]
            out_inport[ok, port] = port ^ 1
            link_class[:, port] = TSV if d == 2 else PLANAR
            latency[:, port] = link.latency_cycles
            busy[:, port] = max(1, math.ceil(cfg.interface.flit_bits / link.width_bits))
    return Topology(f"mesh:{dims[0]}x{dims[1]}x{dims[2]}", dims, coords, n_ports, out_router,
                    out_inport, link_class, latency, busy, ni_ports, mc_ports)


TOPOLOGIES: dict[str, Callable[[str, object], Topology]] = {"mesh": build_mesh}


def build_topology(cfg) -> Topology:
    """Build ``cfg.topology`` (``name:args``) and check the traffic pattern fits it."""
    text = cfg.topology
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError("topology", f"must be name:args such as mesh:4x4x4, got {text!r}",
                          allowed=", ".join(f"{k}:..." for k in TOPOLOGIES))
    name, args = text.split(":", 1)
    if name not in TOPOLOGIES:
        raise ConfigError("topology", f"unknown topology {name!r}", allowed=", ".join(TOPOLOGIES))
    topo = TOPOLOGIES[name](args, cfg)
    check_pattern(cfg.traffic, topo)
    return topo
