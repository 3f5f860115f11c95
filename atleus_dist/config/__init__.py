"""The one configuration tree of a run (:class:`RunConfig`), its one loader (scenario and arch
YAML files, flags, ``--set path=value``) and its listing (``atleus-dist components``).

Each component declares its own fields where it lives (``hw/reram.py``, ``hw/noc/config.py``,
``workload/scenario.py``...) with :func:`atleus_dist.hw.params.param`; this package only puts them
together. Import the submodules (``atleus_dist.config.load``); this file imports nothing. The
hardware modules import nothing from here: the generic tree code they use sits below them
(:mod:`atleus_dist.hw.param_tree`).
"""
