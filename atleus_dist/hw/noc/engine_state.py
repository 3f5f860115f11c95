"""The NoC engine's state as a few named groups of int64 arrays: what every compiled function of
``engine``, ``engine_router`` and ``engine_rounds`` takes instead of dozens of positional arrays.

Each group is a namedtuple (numba compiles attribute access to the same loads as a positional
argument; a call costs ~2 us more than with plain arrays, measured, against ~1 ms of work per
call). Python owns the arrays (:class:`~atleus_dist.hw.noc.region.Region`,
:class:`~atleus_dist.hw.noc.router.RouterArray`, :class:`~atleus_dist.hw.noc.interface.Interfaces`)
and may replace some between calls (a pool or queue that grows, an inbox), so the groups are
built afresh for every call (:meth:`Region.groups`); the compiled code never keeps one. Row and
column names are in ``engine_layout``. Shapes: R routers in the region, P ports, V VCs, B flits
per buffer, L local (NI) ports per router, NN NIs per router, W calendar slots, n nodes in the
whole network. All int64 but ``buf``. A "bit set" is an int64 array whose bit ``i & 63`` of
word ``i >> 6`` marks element i; the engine keeps them equal to what the rows say
(``S_MASKS_OK``), so it visits only what has work. A VC whose allocation failed for want of a
free output VC or a credit is *parked* (out of ``va_vcs`` / ``sa_vcs``, in ``va_wait`` /
``sa_wait``) until a VC frees or a credit returns: with one-cycle VC and switch allocation its
re-tries change nothing but its ready cycle, which stays due (``engine_router``).
"""

from __future__ import annotations

from collections import namedtuple

# control: prm (N_PRM,) parameters (P_*); sc (N_SC,) scalars (S_*); scr (7, max(P*V, P))
# scratch of the allocators (rows: see engine_router)
Control = namedtuple("Control", "prm sc scr")

Routers = namedtuple("Routers", [
    "coords",     # (2 * n routers, dims) mesh coordinates per node id (a controller's NI: its router's)
    "rids",       # (R,) global id of each local router
    "st",         # (R * P, N_ST) static wiring per port (ST_*)
    "rv",         # (R * P * V, N_RV) per VC: input and output state (V_*)
    "buf",        # (R * P * V, B) int32, per input VC: ring of pool slots
    "rp",         # (R * P, N_RP) per port: arbiters, link busy, counts (RP_*)
    "rr",         # (R, N_RR) per router counts (RR_*)
    "va_vcs",     # (R * P,) per input port: bit set of its VCs in state VA
    "sa_vcs",     # (R * P,) per input port: bit set of its ACTIVE VCs holding a flit
    "free_vcs",   # (R * P,) per output port: bit set of its output VCs not in use
    "va_ports",   # (R,) per router: bit set of input ports with va_vcs
    "sa_ports",   # (R,) per router: bit set of input ports with sa_vcs
    "busy",       # (ceil(R / 64),) bit set of routers with va_ports or sa_ports
    "va_wait",    # (R * P,) per output port: bit set of input VCs (port * V + vc) parked until it frees a VC
    "sa_wait",    # (R * P * V,) per output VC: the input VC row parked until its credit returns (-1: none)
])

Nis = namedtuple("Nis", [
    "ni",         # (N_NI, R * L) per NI port: generation and injection state (N_*)
    "nsv",        # (N_SV, R * L, V) per NI port and VC: the NI's credits (SV_*)
    "nst",        # (N_NS, R * NN) per node: statistics (NS_*)
    "gd",         # (2, R, K) per core NI: synthetic draws, row 0 gaps (cycles), row 1 destination nodes
    "nq",         # (N_Q, R * L, capacity) per NI port: source-queue ring (Q_*)
    "queued",     # (ceil(R * L / 64),) bit set of NI ports with a queue entry
])

# pool (slots, len(FIELDS)) one row per flit slot (F_*); free (slots,) stack of free slots,
# free[:sc[S_NFREE]]
Flits = namedtuple("Flits", "pool free")

# counts (W, 4) items due in each slot per kind (K_*); flit, credit, src, eject: (W, R * P, 4)
# the items of each kind (fields: engine_layout's K_* lines)
Calendar = namedtuple("Calendar", "counts flit credit src eject")

# flits (5, n): flit inbox sorted by cycle: cycle read, local router, input port, vc, pool slot;
# credits (4, n): credit inbox: cycle applied, local router, output port, vc
Inbox = namedtuple("Inbox", "flits credits")

# pko (len(PACKET_COLS), n) packet rows; tdo (5, T) tail records and countdown table (TD_*);
# outf (2 * R * P, 4 + len(FIELDS)) flits leaving the region: cycle read, router, port, vc,
# FIELDS; outc (2 * R * P, 4) credits leaving: cycle read, router, port, vc
Records = namedtuple("Records", "pko tdo outf outc")
