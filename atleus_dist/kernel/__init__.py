"""Kernel: time, messages, logical processes, channels and conservative synchronisation.

It knows nothing of hardware, processes, Ray or files; backends drive :class:`LPGroup` objects.
"""

from atleus_dist.kernel.channels import ChannelMap
from atleus_dist.kernel.errors import CausalityError, ConfigError, SimulationAborted
from atleus_dist.kernel.group import LPFactory, LPGroup, RunSpec, StepResult, contiguous_groups, global_next
from atleus_dist.kernel.lp import EventLP, LogicalProcess
from atleus_dist.kernel.messages import Block, decode_outbox, encode_outbox, message_dtype, order_index
from atleus_dist.kernel.time import NEVER_PS, check_time_ps

__all__ = [
    "Block", "CausalityError", "ChannelMap", "ConfigError", "EventLP", "LPFactory", "LPGroup", "LogicalProcess",
    "NEVER_PS", "RunSpec", "SimulationAborted", "StepResult", "check_time_ps", "contiguous_groups",
    "decode_outbox", "encode_outbox", "global_next", "message_dtype", "order_index",
]
