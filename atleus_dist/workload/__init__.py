"""Workload compiler: model shapes -> op graph of a step, quantisation, mapping, tiling.

Knows nothing of Ray, processes or result files; reads model/scenario YAML only in ``model`` and
``scenario``.
"""

from atleus_dist.workload.compiler import compile_step
from atleus_dist.workload.graph import Op, OpGraph
from atleus_dist.workload.mapper import Mapper, Mapping
from atleus_dist.workload.model import ModelSpec, available_models, load_model
from atleus_dist.workload.scenario import Quant, Scenario, load_scenario, parse_quant

__all__ = ["Mapper", "Mapping", "ModelSpec", "Op", "OpGraph", "Quant", "Scenario", "available_models",
           "compile_step", "load_model", "load_scenario", "parse_quant"]
