"""Workload compiler: model shapes -> op graph of a step, quantisation, mapping, tiling."""
