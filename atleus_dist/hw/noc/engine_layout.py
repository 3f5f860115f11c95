"""Names of the rows and columns of the NoC engine's int64 state arrays (see ``engine_state`` for
the arrays themselves, their shapes and owners).

Constants only, every one documented here once. They are frozen into the compiled code:
``engine_cache`` drops numba's cache whenever any engine source file changes, so a change here is
never served stale. Prefixes: ``P_`` parameters, ``S_`` scalars, ``FLAG_`` what a cycle asks of
Python, ``F_`` flit fields, ``V_`` VC columns, ``RP_``/``ST_``/``RR_`` port and router columns,
``N_`` ni rows (an NI port's injection state), ``SV_``/``NS_``/``Q_`` NI VC, statistics and queue
rows, ``K_`` calendar kinds; ``N_PRM`` ... ``N_RV`` (a count of the rows above) end each group.
"""

from __future__ import annotations

from atleus_dist.kernel.time import NEVER_PS as NEVER  # "no such cycle" (every cycle compares below it)

IDLE, VA, ACTIVE = 0, 1, 2  # an input VC's state: empty, waiting for VC allocation, holding an output VC

# prm: parameters of a region, set once by Region (units: cycles unless stated)
(P_R,      # routers in this region
 P_P,      # ports per router: 2 x dimensions planar/TSV ports, then P_L local (NI) ports
 P_V,      # virtual channels per port
 P_B,      # flits per VC buffer
 P_RD,     # routing delay: a head is VC-allocated >= RD cycles after it arrives
 P_VAD,    # VC allocation delay: a VC-allocated head may be switch-allocated VAD cycles later
 P_SAD,    # switch allocation delay
 P_CB,     # crossbar delay
 P_CD,     # credit delay (added where a credit is read)
 P_WFT,    # 1: an output VC is freed only when its tail's credit returns (wait_for_tail_credit)
 P_LL,     # NI <-> router channel latency (injection, ejection, NI credits)
 P_W0,     # first cycle of the measurement phase
 P_W1,     # first cycle after it
 P_W,      # calendar slots: a power of two above the longest delay
 P_K,      # synthetic draws per node and chunk (interface.Interfaces.K)
 P_PSIZE,  # flits per synthetic packet
 P_L0,     # the first local port (2 x dimensions)
 P_NP,     # ports of a core's NI
 P_MP,     # ports of a memory controller's NI (0: none)
 P_NN,     # NIs per router (1, or 2 with memory controllers)
 P_L,      # local ports per router (P_NP + P_MP)
 P_NR,     # routers in the whole network (node ids >= P_NR are memory controllers' NIs)
 N_PRM) = range(23)

# sc: scalar state of a region
(S_CYCLE,     # every cycle < this has been simulated
 S_BUFFERED,  # flits in router input buffers
 S_VA,        # input VCs in state VA
 S_QUEUED,    # source-queue entries at the NIs
 S_HOPS,      # flits switched (flit-hops) since the start
 S_RUN,       # cycles simulated (those with work) since the start
 S_NFREE,     # free flit slots: free[:S_NFREE]
 S_PKN,       # packet rows in Records.pko
 S_TDN,       # tail records in Records.tdo (rows 0-2)
 S_OFN,       # rows in Records.outf (flits leaving the region)
 S_OCN,       # rows in Records.outc (credits leaving the region)
 S_FLAG,      # FLAG_* bits raised in the current cycle
 S_INF,       # next unread column of the flit inbox
 S_INC,       # next unread column of the credit inbox
 S_CALN,      # items in the calendar
 S_NEXT,      # the first cycle with work, as last computed (the LP's next time)
 S_STOP,      # 1: raise FLAG_TAIL when a transfer completes here
 S_MASKS_OK,  # 1: the bit sets of Routers and Nis match the rows (0 after an outside write: rebuilt)
 N_SC) = range(19)

# what a cycle asks Python to do (S_FLAG bits, returned by engine.run)
FLAG_REFILL = 1   # a node used its last synthetic draw: the next chunk (Interfaces.refill)
FLAG_QGROW = 2    # a source queue is nearly full: double it (Interfaces.grow)
FLAG_POOL = 4     # too few free flit slots for the next cycle: grow the pool
FLAG_FLUSH = 8    # a record buffer (packets, tails, outf, outc) is nearly full: drain
FLAG_ERROR = 16   # calendar overflow or a late inbox item: a bug
FLAG_TAIL = 32    # a transfer's last tail was ejected here and S_STOP is set

# rv: one row per VC (l * P + port) * V + vc. The same row serves the VC as an *input* VC of
# router l (the first seven columns) and as an *output* VC of l towards the downstream buffer
# (the last four: what l knows of that buffer through credits)
(V_STATE,     # input: IDLE / VA / ACTIVE
 V_READY,     # input: first cycle at which the next allocation step may act on it
 V_CNT,       # input: flits buffered
 V_HEAD,      # input: ring position of the first buffered flit in Routers.buf
 V_ROUTE,     # input: output port of the packet at the head (DOR; the chosen ejection port)
 V_OVC,       # input: output VC allocated to that packet
 V_VAIN,      # input: VC allocator's input pointer (port * V + vc of the next output VC to prefer)
 V_OCC,       # output: flits sent and not yet credited back (downstream buffer occupancy)
 V_INUSE,     # output: 1 while allocated to a packet
 V_TAILSENT,  # output: 1 once that packet's tail has been sent
 V_VAOUT,     # output: VC allocator's output pointer (input port * V + vc to prefer)
 N_RV) = range(12)

# rp: one row per router port l * P + port (input side and output side of the same port)
(RP_SWIN,        # switch allocator, input arbiter: output port to prefer
 RP_SWOUT,       # switch allocator, output arbiter: input port to prefer
 RP_SWOFF,       # switch allocator, input arbiter: VC to prefer
 RP_BUSYUNTIL,   # the output link is busy until this cycle
 RP_LINKFLITS,   # flits sent on the output link during the measurement phase
 RP_BUF,         # flits buffered at the input port
 N_RP) = range(7)

# st: static wiring per router port l * P + port
(ST_OUTR,   # global router the output link enters (-1: none)
 ST_OUTIP,  # its input port there
 ST_LAT,    # link latency (cycles)
 ST_BUSY,   # cycles the link is busy per flit
 ST_DOWNL,  # local index of that router here (-1: another region, or none)
 N_ST) = range(6)

# rr: per router counts
RR_BUF, RR_VA, N_RR = range(3)  # flits buffered; input VCs in state VA

# An NI (node) is a set of local ports of its router: node n of a region is NI n % NN of local
# router n // NN (0: the core's, 1: the memory controller's). Each port is a BookSim2 injection
# channel with its own source queue; a new packet run joins the node's port with the fewest
# flits queued (ties: the first). ni: one column per NI port, l * L + k for local port L0 + k of
# router l (the generation rows only in the column of a core NI's first port)
(N_GENCOUNT,   # synthetic packets generated so far by the node
 N_CHUNK,      # index of the first draw in Nis.gd
 N_NEXTGEN,    # cycle of the next synthetic packet (NEVER: none; -1: draws to refill)
 N_QHEAD,      # ring position of the source queue's first entry
 N_QLEN,       # entries in the source queue
 N_QFLITS,     # flits in the source queue
 N_CURFIDX,    # index in its packet of the next flit to inject
 N_CURVC,      # VC the current packet is injected on (-1: none yet)
 N_CURHITIME,  # cycle the current packet's head was injected
 N_LASTVC,     # VC the previous packet used (round-robin; -1: none yet)
 N_NI) = range(11)
# nsv: per NI port and VC, the NI's view of the router's input buffer
SV_OCC, SV_INUSE, SV_TAILSENT, N_SV = range(4)  # flits not yet credited; VC in use; tail sent
# nst: statistics per node (l * NN + j)
(NS_GENMEAS,    # packets created in the measurement phase
 NS_ACC,        # flits ejected in the measurement phase
 NS_FLATN,      # measured flits ejected
 NS_FLATSUM,    # sum of their latencies (cycles, from injection)
 NS_FLATSUMSQ,  # sum of squares
 N_NS) = range(6)
# nq: a source-queue entry is a run of Q_COUNT packets to one destination (a transfer): all of
# Q_SIZE flits but the last, of Q_LAST; Q_IDX is the per-source index of its next packet
(Q_CTIME, Q_DEST, Q_IDX, Q_SIZE, Q_TAG, Q_NPK, Q_COUNT, Q_LAST, N_Q) = range(9)

# pool: one row per flit slot (FIELDS order). src = source node, dest = destination node (its
# router, or P_NR + router for a memory controller's NI); ctime / itime / hitime: cycle the packet
# was created / the flit injected / the packet's head injected; meas: 1 if created in the
# measurement phase; tag = transfer tag (-1: none), npk = its packets. The four fields every hop
# reads or writes come first: a 96-byte row's first 32 bytes never straddle a cache line
FIELDS = ("dest", "fidx", "size", "hops", "pkt", "src", "ctime", "itime", "hitime", "meas", "tag", "npk")
(F_DEST, F_FIDX, F_SIZE, F_HOPS, F_PKT, F_SRC, F_CTIME, F_ITIME, F_HITIME, F_MEAS, F_TAG, F_NPK) = range(12)
PACKET_COLS = ("pkt", "src", "dest", "ctime_cycle", "itime_cycle", "atime_cycle", "hops", "flits")
PKT_SHIFT = 32  # packet id = source router << 32 | per-source index
# per-source packet indices: synthetic from 0, a core NI's explicit ones from EXPLICIT0, a memory
# controller NI's from MC_EXPLICIT0 (so the two NIs of one router never share a packet id)
EXPLICIT0, MC_EXPLICIT0 = 1 << 31, 3 << 30

# calendar kinds and their item fields (Calendar.items[kind][slot, i] = a, b, c, d):
(K_FLIT,    # a flit arrives: local router, input port, vc, pool slot
 K_CREDIT,  # a router credit arrives: local router, output port, vc, 0
 K_SRC,     # an NI (source) credit arrives: NI port column, vc, 0, 0
 K_EJECT,   # a flit reaches its NI: local router, pool slot, output vc, output port
 N_K) = range(5)
# tdo: rows 0-2 tail records for Python (tag, packets, cycle ejected); rows 3-4 the engine's
# open-addressing countdown table (tag, packets left; TD_EMPTY / TD_DELETED free it)
TD_TAG, TD_NPK, TD_CYCLE, TD_KEY, TD_LEFT = range(5)
TD_EMPTY, TD_DELETED = -1, -2
