"""Names of the rows and fields of the NoC engine's int64 state arrays (see ``engine``).

Constants only. They are frozen into the compiled code: ``engine_cache`` drops numba's cache
whenever any engine source file changes, so a change here is never served stale.
"""

from __future__ import annotations

from atleus_dist.kernel.time import NEVER_PS as NEVER

IDLE, VA, ACTIVE = 0, 1, 2
# prm: parameters
# P_L0: the first local port (2 x dimensions); P_NP: ports of a core's NI; P_MP: ports of a memory
# controller's NI (0: none); P_NN: NIs per router (1, or 2 with memory controllers); P_L: local
# ports per router (P_NP + P_MP); P_NR: routers in the network (node ids above it are MC NIs)
(P_R, P_P, P_V, P_B, P_RD, P_VAD, P_SAD, P_CB, P_CD, P_WFT, P_LL, P_W0, P_W1, P_W, P_K, P_PSIZE,
 P_L0, P_NP, P_MP, P_NN, P_L, P_NR, N_PRM) = range(23)
# sc: scalar state
(S_CYCLE, S_BUFFERED, S_VA, S_QUEUED, S_HOPS, S_RUN, S_NFREE, S_PKN, S_TDN, S_OFN, S_OCN, S_FLAG,
 S_INF, S_INC, S_CALN, S_NEXT, S_STOP, N_SC) = range(18)
# flags returned at the end of a cycle (F_TAIL: a transfer's tail was ejected and S_STOP is set)
F_REFILL, F_QGROW, F_POOL, F_FLUSH, F_ERROR, F_TAIL = 1, 2, 4, 8, 16, 32
# rv: per input VC (and per output VC: the downstream buffer state seen by this router)
(V_HEAD, V_CNT, V_STATE, V_READY, V_ROUTE, V_OVC, V_OCC, V_INUSE, V_TAILSENT, V_VAIN, V_VAOUT,
 N_RV) = range(12)
# rp: per router port; st: static per router port (wiring)
RP_SWIN, RP_SWOUT, RP_SWOFF, RP_BUSYUNTIL, RP_LINKFLITS, RP_BUF, N_RP = range(7)  # RP_BUF: flits buffered at an input port
ST_OUTR, ST_OUTIP, ST_LAT, ST_BUSY, ST_DOWNL, N_ST = range(6)
# rr: per router counts (to skip idle routers)
RR_BUF, RR_VA, N_RR = range(3)
# An NI (node) is a set of local ports of its router: node n of a region is NI n % NN of local
# router n // NN (0: the core's, 1: the memory controller's). Each port is a BookSim2 injection
# channel with its own source queue; a new packet run joins the node's port with the fewest
# flits queued (ties: the first). ni: per NI port, column l * L + k for local port L0 + k of
# router l (the generation rows only in the column of a core NI's first port). nsv: per NI port
# and VC. nq: per NI port. nst: per router statistics.
(N_GENCOUNT, N_CHUNK, N_NEXTGEN, N_QHEAD, N_QLEN, N_QFLITS, N_CURFIDX, N_CURVC, N_CURHITIME, N_LASTVC,
 N_NI) = range(11)
SV_OCC, SV_INUSE, SV_TAILSENT, N_SV = range(4)
NS_GENMEAS, NS_ACC, NS_FLATN, NS_FLATSUM, NS_FLATSUMSQ, N_NS = range(6)
# a source-queue entry is a run of Q_COUNT packets to one destination (a transfer): all of
# Q_SIZE flits but the last, of Q_LAST; Q_IDX is the per-source index of its next packet
Q_CTIME, Q_DEST, Q_IDX, Q_SIZE, Q_TAG, Q_NPK, Q_COUNT, Q_LAST, N_Q = range(9)
# pool: one row per flit slot (FIELDS order); src = source router, dest = destination node (its
# router, or P_NR + router for a memory controller's NI); tag = transfer tag (-1: none), npk = its packets
FIELDS = ("pkt", "fidx", "size", "src", "dest", "ctime", "itime", "hitime", "hops", "meas", "tag", "npk")
(F_PKT, F_FIDX, F_SIZE, F_SRC, F_DEST, F_CTIME, F_ITIME, F_HITIME, F_HOPS, F_MEAS, F_TAG, F_NPK) = range(12)
PACKET_COLS = ("pkt", "src", "dest", "ctime_cycle", "itime_cycle", "atime_cycle", "hops", "flits")
PKT_SHIFT = 32  # packet id = source router << 32 | per-source index
# per-source packet indices: synthetic from 0, a core NI's explicit ones from EXPLICIT0, a memory
# controller NI's from MC_EXPLICIT0 (so the two NIs of one router never share a packet id)
EXPLICIT0, MC_EXPLICIT0 = 1 << 31, 3 << 30
# calendar kinds: flit arrival, router credit, NI (source) credit (NI port, vc), ejection
# (router, slot, vc, output port)
K_FLIT, K_CREDIT, K_SRC, K_EJECT = range(4)
