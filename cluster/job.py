"""Ray job entry point: run one atleus-dist command on the Ray cluster this job runs in.

The README's "On a Ray cluster" commands (tests/test_cluster.py runs them) use it both ways:

    ray submit cluster/local.yaml cluster/job.py -- phold --lps 8 --out /tmp/atleus/p1
    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python cluster/job.py phold --lps 8 --out /tmp/atleus/p2

Any ``atleus-dist`` command line is accepted; ``--backend ray --address auto`` are added to the
simulating ones unless given. Results go to ``--out`` (give an absolute path on storage the head
node can write: the job's working directory is temporary). The exit code is the command's.
"""

from __future__ import annotations

import os
import sys

# under `ray job submit --working-dir .` the package comes with the working directory
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from atleus_dist.cli import main  # noqa: E402

SIMULATING = {"phold", "noc", "run", "sweep"}  # the commands with --backend and --address


def job_argv(argv: list[str]) -> list[str]:
    if not argv:
        raise SystemExit("usage: job.py COMMAND [ARGS...]   (any atleus-dist command)")
    cmd, rest = argv[0], list(argv[1:])
    if cmd in SIMULATING:
        if "--backend" not in rest:
            rest += ["--backend", "ray"]
        if "--address" not in rest and rest[rest.index("--backend") + 1] == "ray":
            rest += ["--address", os.environ.get("RAY_ADDRESS", "auto")]
    return [cmd, *rest]


if __name__ == "__main__":
    sys.exit(main(job_argv(sys.argv[1:])))
