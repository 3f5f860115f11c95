"""Results: per-LP Arrow stream files, the manifest, readers and the run digest.

Knows nothing of hardware or of how LPs are scheduled.
"""

from atleus_dist.results.digest import digest
from atleus_dist.results.manifest import finish_manifest, read_manifest, start_manifest
from atleus_dist.results.reader import open, read_table, table_names
from atleus_dist.results.writer import LPSink, SinkFactory

__all__ = ["LPSink", "SinkFactory", "digest", "finish_manifest", "open", "read_manifest",
           "read_table", "start_manifest", "table_names"]
