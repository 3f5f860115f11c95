"""Running a built configuration to a complete run directory: check what a checkpoint needs,
create the directory, execute, and write the ``summary`` table as the run's last act. The one
place ``run``, ``baseline`` and the sweep's points finish a simulation (:mod:`atleus_dist.api`
and :mod:`atleus_dist.run.sweep` call it). Knows nothing of argument parsing.
"""

from __future__ import annotations

from pathlib import Path

from atleus_dist.config.load import load_run_config
from atleus_dist.results import SinkFactory
from atleus_dist.results.summary import summary_figures, write_summary
from atleus_dist.run.checkpoint_resume import checkpoint_setup
from atleus_dist.run.driver import execute, prepare_out_dir
from atleus_dist.run.scenario_run import Built, build
from atleus_dist.workload.scenario import ScenarioConfig


def scenario_name(scenario: str | None) -> str | None:
    """None for the default scenario named by its own name (the loader's default)."""
    return None if scenario == ScenarioConfig().name else scenario


def build_named(scenario: str | None, arch: str | None, sets, out: str, **flags) -> Built:
    """The configuration of a scenario name/file with ``sets`` and flags, built for ``out``."""
    cfg, labels = load_run_config(scenario_name(scenario), arch, sets, **flags)
    return build(cfg, sink_factory=SinkFactory(out), labels=labels)


def summary_finalize(built: Built, baseline_kind: str | None = None):
    """The ``finalize`` of a simulated run: its ``summary`` table and figures (``resume`` too)."""

    def finalize(run_dir, manifest, _figures):
        if baseline_kind:
            manifest["baseline"] = baseline_kind  # report/compare label it
        fig = summary_figures(run_dir, dict(manifest, config=built.config))
        write_summary(run_dir, fig)
        fig.pop("absent_tables", None)
        return fig

    return finalize


def execute_built(built: Built, command: str, out: str, progress: bool, baseline_kind: str | None = None,
                  checkpoint_every_ps: int | None = None) -> tuple[Path, dict, object]:
    """(run directory, manifest, stats) of ``built`` run to completion into ``out``."""
    ex = built.run_config.execution
    options = {"address": ex.address, "placement": ex.placement} if ex.backend == "ray" else {}
    plan, extra = checkpoint_setup(built, command, out, checkpoint_every_ps)
    path = prepare_out_dir(out)  # only now: every input was checked
    stats, manifest = execute(command, built.config, built.spec, ex.backend, path, progress=progress,
                              finalize=summary_finalize(built, baseline_kind), checkpoint=plan,
                              manifest_extra=extra, **options)
    return path, manifest, stats
