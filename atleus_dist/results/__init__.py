"""Results: per-LP Arrow stream files, the manifest, readers, verification, Parquet and the digest.

Every reader checks a file before it trusts it (``verify``); ``open`` gives the user-facing form
(``parquet``). Knows nothing of hardware or of how LPs are scheduled.
"""

from atleus_dist.results.digest import digest, run_digest
from atleus_dist.results.manifest import read_manifest, start_manifest
from atleus_dist.results.reader import open, read_table, table_names
from atleus_dist.results.seal import finish_manifest
from atleus_dist.results.verify import check_run, verify_run
from atleus_dist.results.writer import LPSink, SinkFactory

__all__ = ["LPSink", "SinkFactory", "check_run", "digest", "finish_manifest", "open", "read_manifest",
           "read_table", "run_digest", "start_manifest", "table_names", "verify_run"]
