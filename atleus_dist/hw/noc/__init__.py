"""Flit-level 3D network-on-chip: VC routers (BookSim2 iq_router semantics), planar and TSV links,
network interfaces, topology registry, synthetic traffic, statistics and NoC-region LPs.

Knows nothing of Ray, processes or files beyond the result sink handed to an LP.
"""
