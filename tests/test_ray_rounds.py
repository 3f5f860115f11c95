"""The Ray backend's peer rounds without Ray: groups on threads, joined by the same TCP mesh the
actors use, give inline's result tables; frames larger than the socket buffers cross both ways
in one round; a connection without the run's token is not taken for a peer."""

from __future__ import annotations

import secrets
import socket
import threading

from atleus_dist.backends.ray_rounds import HELLO, LEN, Mesh, PeerRounds
from tests.conftest import SMALL_PHOLD


def _meshes(n: int) -> tuple[list[Mesh], bytes]:
    meshes = [Mesh(g, n, "127.0.0.1") for g in range(n)]
    return meshes, secrets.token_bytes(32)


def _on_threads(n: int, fn) -> list:
    out: list = [None] * n
    errors: list = []

    def go(g: int) -> None:
        try:
            out[g] = fn(g)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(g,)) for g in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return out


def test_peer_rounds_give_the_inline_tables(tmp_path):
    from atleus_dist.cli import build_parser, main
    from atleus_dist.commands import phold
    from atleus_dist.results import digest
    from atleus_dist.run import prepare_out_dir

    ref = tmp_path / "inline"
    assert main(["phold", *SMALL_PHOLD, "--backend", "inline", "--out", str(ref)]) == 0
    out = tmp_path / "peer"
    args = build_parser().parse_args(["phold", *SMALL_PHOLD, "--workers", "3", "--out", str(out)])
    spec = phold.build(args)[1]
    prepare_out_dir(args.out)
    n = len(spec.groups)
    meshes, token = _meshes(n)
    addresses = [m.address for m in meshes]

    def run(g: int) -> list:
        meshes[g].connect(addresses, token)
        peer, sums = PeerRounds(spec, g), []
        while not sums or not sums[-1]["finished"]:
            sums.append(peer.run_chunk(meshes[g], 0.002))  # short chunks: many chunk boundaries
        peer.close()
        meshes[g].close()
        return sums

    sums = _on_threads(n, run)
    assert len(sums[0]) > 1  # the chunks did end early
    assert [len(s) for s in sums] == [len(sums[0])] * n  # every group ended every chunk together
    assert len({s[-1]["rounds"] for s in sums}) == 1 and sums[0][-1]["all_events"] == sum(s[-1]["events"] for s in sums)
    assert digest(out)[0] == digest(ref)[0]


def test_large_frames_cross_both_ways_in_one_round():
    meshes, token = _meshes(2)
    addresses = [m.address for m in meshes]
    big = [secrets.token_bytes(8 << 20), secrets.token_bytes(8 << 20)]  # well over the socket buffers

    def run(g: int):
        meshes[g].connect(addresses, token)
        frames = [None, None]
        frames[1 - g] = big[g]
        got = meshes[g].exchange(frames)
        small = meshes[g].exchange([b"" if v != g else None for v in range(2)])
        meshes[g].close()
        return bytes(got[1 - g]), small[1 - g]

    (got0, small0), (got1, small1) = _on_threads(2, run)
    assert got0 == big[1] and got1 == big[0] and small0 == small1 == b""


def test_a_connection_without_the_token_is_not_a_peer():
    meshes, token = _meshes(2)
    stranger = socket.create_connection(meshes[0].address)
    stranger.sendall(HELLO + secrets.token_bytes(32) + LEN.pack(1))
    addresses = [m.address for m in meshes]

    def run(g: int):
        meshes[g].connect(addresses, token)
        got = meshes[g].exchange([b"hi" if v != g else None for v in range(2)])
        meshes[g].close()
        return got[1 - g]

    assert _on_threads(2, run) == [b"hi", b"hi"]
    stranger.close()


def test_a_peer_that_stops_stops_the_others():
    import pytest

    from atleus_dist.kernel import SimulationAborted

    meshes, token = _meshes(2)
    addresses = [m.address for m in meshes]

    def run(g: int):
        meshes[g].connect(addresses, token)
        if g == 1:
            meshes[g].close()  # what a failing group's run_chunk does
            return None
        with pytest.raises(SimulationAborted):
            meshes[g].exchange([None, b"x"])
        return "aborted"

    assert _on_threads(2, run) == ["aborted", None]
