"""``atleus-dist verify RUN``: check every file of a run directory and say what it holds.

Prints the status, per table its kind, rows and files, and each bad file with what is wrong.
Exit 0: the run is complete and every file matches the manifest; 1: every file is readable but the
run is not complete (running, failed or interrupted: its tables may be partial); 2: a file is bad
(corrupt, truncated, changed, foreign or missing) or the manifest itself is malformed.
Only argument handling and output live here (the checks are ``results.verify.verify_run``).
"""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import emit
from atleus_dist.results.verify import verify_run

EXIT_INCOMPLETE = 1
EXIT_BAD = 2


def register(subs) -> None:
    p = subs.add_parser("verify", help="check a run directory's files against its manifest")
    p.add_argument("run_dir", metavar="RUN", help="a run directory")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=main)


def format_verify(v: dict) -> list[str]:
    how = ("rows, sizes and SHA-256 recorded at completion" if v["checksums"]
           else "no checksums recorded; streams parsed only")
    lines = [f"run {v['run_dir']}: status {v['status']} ({how})"]
    if v["tables"]:
        lines.append(f"  {'table':<12} {'kind':<10} {'rows':>12} {'files':>6}  state")
        for name, t in v["tables"].items():
            state = "ok" if not t["bad"] else f"{t['bad']} bad"
            if v["status"] != "complete":  # how each stream ends: closed, open (between batches), torn
                state += " (" + ", ".join(f"{n} {end}" for end, n in sorted(t["ends"].items())) + ")"
            lines.append(f"  {name:<12} {t['kind'] or '?':<10} {t['rows']:>12,} {t['files']:>6}  {state}")
    else:
        lines.append("  no tables")
    for f in v["files"]:
        if not f["ok"]:
            lines.append(f"BAD {f['file']}: {f['problem']}")
    lines.append(f"files: {v['ok']} ok, {v['bad']} bad")
    if v["bad"]:
        lines.append("verdict: BAD - do not trust this run's tables")
    elif v["status"] != "complete":
        lines.append(f"verdict: readable but not complete (status {v['status']}); tables may be partial")
    else:
        lines.append("verdict: complete and verified")
    return lines


def main(args: argparse.Namespace) -> int:
    v = verify_run(args.run_dir)
    emit(args, v, format_verify(v))
    if v["bad"]:
        return EXIT_BAD
    return 0 if v["status"] == "complete" else EXIT_INCOMPLETE
