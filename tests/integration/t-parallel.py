#!/usr/bin/env python3
"""One-shot runs poll their accounts in parallel (parallel = N in
[defaults], default 8), and the exit status is still the worst in the
documented order.

Three fake servers hold their greeting until all three have a client
(a barrier, given up after 8 s): with the default, all three accounts
are connected at once and the barrier is passed; with parallel = 1 they
come one after the other and it is not.  Both deliver everything.
Then three accounts that end differently (delivered, refused login,
server error on SELECT) give exit 3, the worst, and --json lists them in
the file's order."""

import json
import os
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def run_with_barrier(t, parallel):
    barrier = threading.Barrier(3, timeout=8)
    state = {"broken": False, "passed": 0}
    lock = threading.Lock()

    def hold(sess):
        try:
            barrier.wait()
            with lock:
                state["passed"] += 1
        except threading.BrokenBarrierError:
            with lock:
                state["broken"] = True

    servers, sections = [], {}
    for i in range(3):
        srv = t.fake(tls="implicit", messages=[h.sample_message(10 * parallel + i)], before_greeting=hold)
        servers.append(srv)
        sections["acct%d" % i] = h.fake_keys(srv, deliver="mbox", mbox=t.path("p%d.mbox" % parallel))
    defaults = {"parallel": str(parallel)} if parallel != 8 else None
    r = t.run([], h.config(sections, defaults=defaults), timeout=120)
    for s in servers:
        s.stop()
    return r, state


def test(t):
    r, state = run_with_barrier(t, 8)
    t.exit_code(r, h.EX_OK, "three accounts, parallel = 8 (the default)")
    t.check(not state["broken"] and state["passed"] == 3, "all three connected at once", state)
    t.eq(len(h.parse_mbox(h.read_file(t.path("p8.mbox")))), 3, "all delivered")

    r, state = run_with_barrier(t, 1)
    t.exit_code(r, h.EX_OK, "parallel = 1")
    t.check(state["broken"], "parallel = 1: one after the other (the barrier was never passed)", state)
    t.eq(len(h.parse_mbox(h.read_file(t.path("p1.mbox")))), 3, "parallel = 1: all delivered")

    # Worst-of, in parallel.
    dv = t.dovecot()
    dv.append("alice", "INBOX", h.sample_message(1))
    mbox = t.path("mix.mbox")
    cfg = h.config({
        "good": h.dovecot_keys(dv, "alice", deliver="mbox", mbox=mbox),
        "refused": h.dovecot_keys(dv, "bob", password="wrong", deliver="mbox", mbox=mbox),
        "nofolder": h.dovecot_keys(dv, "bob", folders="Nope", deliver="mbox", mbox=mbox),
    })
    r = t.run(["--json"], cfg)
    t.exit_code(r, h.EX_AUTH, "delivered + refused login + server error: the worst is 3")
    d = json.loads(r.out.decode())
    t.eq([(a["name"], a["exit"]) for a in d["accounts"]], [("good", 0), ("refused", 3), ("nofolder", 7)],
         "--json lists the accounts in the file's order with their own status")
    r = t.run(["good", "nofolder"], cfg)
    t.exit_code(r, 7, "only the named accounts: delivered + server error is 7")

    # parallel outside [defaults] is refused.
    bad = h.config({"acct": dict(h.dovecot_keys(dv, "alice"), parallel="2")})
    r = t.run(["--check-config"], bad)
    t.exit_code(r, h.EX_USAGE, "parallel in an account's section")
    t.check("a setting of the whole run; put it in [defaults]" in r.stderr, "it says where it goes", r.stderr)


h.main(test)
