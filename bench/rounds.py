"""Cost of a synchronisation round on each backend, with a model that does no work.

    python bench/rounds.py [--lps 4] [--workers 2] [--rounds 20000] [--ray]

Every LP has one event every 1000 ps and channels with a 1000 ps lookahead to every other LP,
so each round processes exactly one event per LP and sends nothing: what is left is the kernel
(horizons, group bookkeeping, windows) and the backend (exchange, barrier, driver round trip).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atleus_dist import backends  # noqa: E402
from atleus_dist.kernel import LogicalProcess, RunSpec, contiguous_groups  # noqa: E402


class NullLP(LogicalProcess):
    def __init__(self, lp_id: int, sink=None) -> None:
        super().__init__(lp_id)
        self.t = 0

    def next_time(self) -> int:
        return self.t

    def receive(self, blocks) -> None:
        pass

    def process(self, horizon_ps: int):
        while self.t < horizon_ps:
            self.t += 1000
            self.events_committed += 1
        return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lps", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=20000)
    ap.add_argument("--ray", action="store_true", help="also measure the Ray backend")
    args = ap.parse_args()
    n = args.lps
    chans = [(i, j, 1000) for i in range(n) for j in range(n) if i != j]
    names = ["inline", "local"] + (["ray"] if args.ray else [])
    for b in names:
        rounds = args.rounds if b != "ray" else max(args.rounds // 20, 100)
        spec = RunSpec(n_lps=n, channels=chans, end_ps=rounds * 1000, lp_factory=NullLP,
                       groups=contiguous_groups(n, args.workers))
        st = backends.run(spec, b)
        print(f"{b:7} {st.rounds:7,} rounds  {st.run_s / st.rounds * 1e6:8.1f} us/round wall  "
              f"{st.work_s / st.rounds / st.groups * 1e6:8.1f} us/round work per group")


if __name__ == "__main__":
    main()
