#!/usr/bin/env python3
"""A run that fails before writing must not forget what a killed run
wrote (found by t-kill-anywhere once accounts ran in parallel).

Run 1 is SIGKILLed while writing the second of two large messages into
an mbox: the first is whole, the second half there, both recorded in the
journal as intents.  Run 2 finds the mbox locked by another program and
is stopped (SIGTERM) while it waits: nothing is written, and the intents
must stay.  Run 3 then finds the first message where run 1 left it and
only marks it, cuts the half copy away, and writes the second once: the
mbox holds each message exactly once, byte-exact."""

import fcntl
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    dv = t.dovecot()
    big = [h.sample_message(1, 6000000), h.sample_message(2, 6000000)]
    dv.append_many("alice", "INBOX", big)
    mbox = t.path("inbox.mbox")
    cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox)})
    first = len(h.lf(big[0]))

    # Run 1: killed with the first message whole and the second half written.
    run = t.start(["-v"], cfg)
    h.wait_for(lambda: os.path.exists(mbox) and os.path.getsize(mbox) > first + 200000 or run.poll(),
               timeout=60, step=0.001)
    if run.poll():
        raise h.Failure("run 1 ended before it could be killed mid-write; the test needs a slower write")
    run.kill(signal.SIGKILL)
    run.wait()
    size1 = os.path.getsize(mbox)
    t.check(first < size1 < first + len(h.lf(big[1])), "run 1 killed mid-write (%d bytes in the mbox)" % size1)
    jpath = os.path.join(t.dir, "home", ".local", "state", "mailfetch", "acct.state")
    intents = {l.split()[2] for l in h.read_file(jpath).decode().splitlines() if l.startswith("I ")}
    t.eq(intents, {"1", "2"}, "the journal holds intents for both messages")

    # Run 2: the mbox locked by another program; stopped while it waits.
    with open(mbox, "rb+") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        run = t.start(["-v"], cfg)
        time.sleep(1.5)
        run.kill(signal.SIGTERM)
        r = run.wait()
    t.eq(r.code, 143, "run 2: stopped while the mbox was locked")
    t.check("locked" in r.stderr, "run 2 says the mbox was locked", r.stderr[-1500:])
    t.eq(os.path.getsize(mbox), size1, "run 2 wrote nothing")
    t.check(h.read_file(jpath).count(b"\nI ") >= 1 and b"\nV " not in h.read_file(jpath),
            "run 2 kept run 1's intents (voided none)", h.read_file(jpath))

    # Run 3: each message exactly once.
    r = t.run(["-v"], cfg)
    t.exit_code(r, h.EX_OK, "run 3")
    t.check("UID 1, " in r.stderr and "already delivered by an interrupted run" in r.stderr,
            "run 3 found the first message where run 1 wrote it", r.stderr[-1500:])
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), big, "each message once, byte-exact")


h.main(test)
