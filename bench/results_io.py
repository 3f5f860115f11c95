"""Cost of trusting results: a stream written through pa.OSFile (before) vs the hashing writer
(now: SHA-256 of every byte as it is written), the same batches side by side; and, if a run
directory is given, the time to check and seal it (every stream parsed, Parquet written).

    /work/measure python bench/results_io.py [RUN_DIR]
"""
import time

import numpy as np
import pyarrow as pa

from atleus_dist.results.writer import _HashingFile  # noqa: PLC2701 (the writer's own file, measured)

t = pa.table({f"c{i}": np.arange(65536, dtype=np.int64) for i in range(10)})
b = t.to_batches()[0]
def osfile(p):
    return pa.OSFile(p, "wb")
def hashing(p):
    return pa.PythonFile(_HashingFile(__import__("pathlib").Path(p)), mode="w")
res = {"osfile": [], "hashing": []}
for rep in range(5):
    for name, mk in (("osfile", osfile), ("hashing", hashing)):
        t0 = time.perf_counter()
        for r in range(8):
            f = mk(f"/tmp/mw_{name}.arrows"); w = pa.ipc.new_stream(f, b.schema)
            for i in range(16): w.write_batch(b)
            w.close(); f.close()
        res[name].append(time.perf_counter() - t0)
mb = 8 * 16 * b.nbytes / 1e6
for k, v in res.items():
    print(f"{k}: {mb:.0f} MB in {min(v):.3f} s (best of 5) = {mb / min(v):,.0f} MB/s")
print(f"ratio hashing/osfile {min(res['hashing']) / min(res['osfile']):.2f}")

if len(__import__("sys").argv) > 1:  # seal a copy of a run directory (its Parquet files rewritten)
    import shutil
    import sys
    from pathlib import Path

    from atleus_dist.results.manifest import read_manifest
    from atleus_dist.results.seal import seal_run
    from atleus_dist.results.verify import check_table, stream_table_names

    src, dst = Path(sys.argv[1]), Path("/tmp/results_io_seal")
    best = None
    for _ in range(3):
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        t0 = time.perf_counter()
        for name in stream_table_names(dst):
            check_table(dst, name, None)
        t1 = time.perf_counter()
        files, tables = seal_run(dst, read_manifest(dst))
        t2 = time.perf_counter()
        best = min(best or (9e9, 9e9), (t1 - t0, t2 - t1))
    rows = sum(t["rows"] for t in tables.values())
    streams = sum(v["bytes"] for k, v in files.items() if k.endswith(".arrows")) / 1e6
    parquet = sum(v["bytes"] for k, v in files.items() if k.endswith(".parquet")) / 1e6
    print(f"{src}: {rows:,} rows, streams {streams:.2f} MB, parquet {parquet:.2f} MB; "
          f"check {best[0]:.3f} s, seal {best[1]:.3f} s (best of 3)")
    shutil.rmtree(dst, ignore_errors=True)
