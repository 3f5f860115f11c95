"""Build a simulation of one scenario on a system of chips (``system.chips`` > 1): split the step
over the chips (:mod:`atleus_dist.workload.stages`), map each chip's graph on its own chip, and
join them by the off-chip links (:mod:`atleus_dist.hw.system`). The configuration comes from
:mod:`atleus_dist.config`; this module parses nothing itself.
"""

from __future__ import annotations

from atleus_dist.config.run_config import RunConfig
from atleus_dist.config.tree import rename
from atleus_dist.hw.system import system_run_spec
from atleus_dist.kernel import ConfigError
from atleus_dist.workload import Mapper
from atleus_dist.workload.stages import system_work


def build_system(cfg: RunConfig, sc, labels, sink_factory):
    """(spec, config additions, work) of the system run ``cfg`` of the resolved scenario ``sc``."""
    sysc, arch = cfg.system, cfg.chip
    try:
        work = system_work(sc, arch, sysc, sc.micro_batches, sc.schedule)
    except ConfigError as exc:
        if exc.field.startswith(("scenario.", "system.")) and labels is not None:
            raise rename(exc, labels(tuple(exc.field.split(".")))) from None
        raise
    mappings = [Mapper(arch, system=sysc, chip=c).map(sc, g) for c, g in enumerate(work.graphs)]
    try:
        spec, info = system_run_spec(mappings, work.transfers, sysc, cfg.transport, cfg.partition,
                                     cfg.execution.workers, sink_factory, stub=cfg.stub,
                                     packet_rows=cfg.results.packet_rows)
    except ConfigError as exc:
        if exc.field == "partition" and labels is not None:
            raise rename(exc, labels(("execution", "partition"))) from None
        raise
    streamed = [c for c, m in enumerate(mappings) if m.stream_region_xbars]
    system = dict(work.meta(), **info, chips=sysc.chips, topology=sysc.topology,
                  link=dict(latency_ps=sysc.link.resolved.latency_ps, bytes_per_s=sysc.link.resolved.bytes_per_s,
                            energy_pj_per_bit=sysc.link.resolved.energy_pj_per_bit, preset=sysc.link.preset),
                  crossbars_needed=[m.crossbars_needed for m in mappings],
                  crossbars_resident=[m.crossbars_resident for m in mappings],
                  streamed_chips=streamed, transfers=len(work.transfers),
                  reram_writes=[int(m.writes.total_writes) for m in mappings])
    return spec, system, sum(len(m.graph) for m in mappings)
