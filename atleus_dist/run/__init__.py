"""Run layer: validate inputs, prepare the output directory, drive a backend, write the manifest."""

from atleus_dist.run.driver import execute, prepare_out_dir

__all__ = ["execute", "prepare_out_dir"]
