"""Hardware component models: NoC (``hw.noc``), ReRAM and systolic cores, HBM, energy tables.

Knows nothing of Ray, processes or files; builds on ``atleus_dist.kernel`` only.
"""
