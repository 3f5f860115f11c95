"""NoC statistics: mergeable summaries (count, sum, sum of squares, min, max, histogram) and the
run figures computed from the per-packet, per-node and per-link tables every region writes.

The tables have one row per packet / node / link, so they do not depend on the partition; the
figures are computed from them after the run. Knows nothing of routers or LPs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIST_EDGES = np.array([0, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 1 << 62])


@dataclass(frozen=True)
class Summary:
    count: int
    total: float
    sumsq: float
    minimum: float
    maximum: float
    hist: tuple[int, ...]

    @classmethod
    def of(cls, values: np.ndarray) -> "Summary":
        v = np.asarray(values, dtype=np.float64)
        hist = np.histogram(v, bins=HIST_EDGES)[0] if v.size else np.zeros(len(HIST_EDGES) - 1)
        return cls(int(v.size), float(v.sum()), float((v * v).sum()),
                   float(v.min()) if v.size else float("nan"), float(v.max()) if v.size else float("nan"),
                   tuple(int(h) for h in hist))

    def merge(self, other: "Summary") -> "Summary":
        return Summary(self.count + other.count, self.total + other.total, self.sumsq + other.sumsq,
                       float(np.fmin(self.minimum, other.minimum)), float(np.fmax(self.maximum, other.maximum)),
                       tuple(a + b for a, b in zip(self.hist, other.hist)))

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")


def figures(cfg, n_nodes: int, packets: dict, nodes: dict, links: dict) -> dict:
    """BookSim2-style figures (cycles; flits per node per cycle) from the result tables."""
    ph = cfg.phases
    plat = Summary.of(packets["atime_cycle"] - packets["ctime_cycle"])
    nlat = Summary.of(packets["atime_cycle"] - packets["itime_cycle"])
    hops = Summary.of(packets["hops"])
    fn = int(np.sum(nodes["flit_lat_n"]))
    fsum = float(np.sum(nodes["flit_lat_sum"]))
    generated = int(np.sum(nodes["generated_measured"]))
    delivered = plat.count
    accepted = float(np.sum(nodes["accepted_flits"])) / (n_nodes * ph.measure_cycles)
    saturated = delivered < generated or (delivered > 0 and plat.mean > ph.latency_thres_cycles)
    out = {
        "packet_latency_mean": plat.mean, "packet_latency_min": plat.minimum,
        "packet_latency_max": plat.maximum, "packet_latency_hist": list(plat.hist),
        "network_latency_mean": nlat.mean, "network_latency_min": nlat.minimum,
        "network_latency_max": nlat.maximum,
        "flit_latency_mean": fsum / fn if fn else float("nan"),
        "accepted_flit_rate": accepted,
        "offered_flit_rate": cfg.traffic.rate * cfg.interface.packet_flits,
        "hops_mean": hops.mean, "packets_measured": generated, "packets_delivered": delivered,
        "saturated": bool(saturated), "hist_edges_cycles": HIST_EDGES[:-1].tolist(),
    }
    if links:
        cls = links["link_class"]
        util = links["flits"] / ph.measure_cycles
        for k, name in enumerate(("planar", "tsv", "local")):
            m = cls == k
            out[f"{name}_link_utilisation_mean"] = float(util[m].mean()) if m.any() else 0.0
            out[f"{name}_energy_pj"] = float(links["energy_pj"][m].sum())
    return out
