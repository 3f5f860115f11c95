"""A private Ray instance on this machine, reachable from this machine only.

The Ray backend starts one when it is given no cluster address. Ray's node address is the
machine's network address even for ``ray.init()`` - it replaces 127.0.0.1 by it - and its
servers (GCS, raylet, agents, workers) then listen on every interface. Ray's own switch for a
single node on the loopback address (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the default on
macOS and Windows) is read when Ray is imported, so it is set here as the module constant it
becomes, for the duration of the start only: a later ``ray.init(address=...)`` to a real cluster
in the same process is unaffected. tests/test_ray_binding.py lists the listening sockets.
Knows nothing of the simulation.
"""

from __future__ import annotations


def start_private(num_cpus: int, log_to_driver: bool = True):
    """``ray.init`` of a new local instance: node IP 127.0.0.1, no dashboard, loopback listeners."""
    import ray
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        return ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                        _node_ip_address="127.0.0.1", log_to_driver=log_to_driver)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
