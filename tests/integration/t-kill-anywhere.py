#!/usr/bin/env python3
"""Kills at random points (real Dovecot): a bounded loop of runs, each
stopped after a pseudo-random delay by SIGKILL (most) or SIGTERM, landing
anywhere: connecting, logging in, selecting, fetching, delivering, in the
middle of an MDA's run or an mbox write, sending marks, logging out.  Two
accounts, one delivering into an mbox, one through an MDA; messages of
mixed size, some larger than the in-memory spool.  After a final clean
run, every message the server holds is in its sink exactly once,
byte-exact, and \\Seen; the MDA's sink may hold a second copy only of a
message whose MDA was running when the run was stopped (at most one per
kill, as mailfetch(1) says), and a SIGTERM ends the run cleanly (exit
143) within 10 s."""

import os
import random
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

ROUNDS = 24
PER_ROUND = 32
SIZES = (600, 2500, 9000, 40000, 150000, 700, 300000, 1200)

MDA = r"""#!/bin/sh
# Test MDA: keeps each message as a file; a little slow, so kills land in it.
tmp=$(mktemp '%(out)s/.tmp.XXXXXX') || exit 74
cat > "$tmp" || exit 74
sleep 0.02
mv "$tmp" "%(out)s/msg.$(date +%%s%%N).$$"
"""


def test(t):
    dv = t.dovecot()
    rnd = random.Random(20261203)
    mbox_msgs, mda_msgs = [], []
    mbox = t.path("alice.mbox")
    out = t.mkdir("bob")
    mda = t.path("mda.sh")
    with open(mda, "w") as f:
        f.write(MDA % dict(out=out))
    os.chmod(mda, 0o755)
    cfg = h.config({
        "alice": h.dovecot_keys(dv, "alice", deliver="mbox", mbox=mbox),
        "bob": h.dovecot_keys(dv, "bob", deliver="mda", mda=mda),
    })

    kills = terms = 0
    for i in range(ROUNDS):
        # New mail every round, so that every run has work to be killed in.
        more = [h.sample_message(len(mbox_msgs) + k + 1, SIZES[(len(mbox_msgs) + k) % len(SIZES)])
                for k in range(PER_ROUND)]
        dv.append_many("alice", "INBOX", more)
        mbox_msgs += more
        more = [h.sample_message(100000 + len(mda_msgs) + k, SIZES[(len(mda_msgs) + k) * 3 % len(SIZES)])
                for k in range(PER_ROUND // 4)]
        dv.append_many("bob", "INBOX", more)
        mda_msgs += more
        size0 = len(h.read_file(mbox))
        files0 = len(os.listdir(out))
        run = t.start([], cfg)
        # A third of the kills at a random moment (connect, login, select,
        # marks, logout...), a third once the mbox has grown by a random
        # amount (mid-write), a third once the MDA has delivered again.
        how = i % 3
        grow = rnd.uniform(1, 3000000)
        deadline = time.time() + (rnd.uniform(0.0, 0.6) if how == 0 else 10)
        while time.time() < deadline and not run.poll():
            if how == 1 and len(h.read_file(mbox)) - size0 >= grow:
                break
            if how == 2 and len(os.listdir(out)) > files0:
                break
            time.sleep(0.002)
        if run.poll():
            run.wait()
            continue
        sig = signal.SIGTERM if rnd.random() < 0.25 else signal.SIGKILL
        t0 = time.time()
        try:
            os.kill(run.pid, sig)
        except ProcessLookupError:
            pass
        r = run.wait()
        took = time.time() - t0
        if sig == signal.SIGKILL and r.code == -signal.SIGKILL:
            kills += 1
        elif sig == signal.SIGTERM and r.code not in (-signal.SIGTERM,):
            terms += 1
            t.check(r.code in (128 + signal.SIGTERM, h.EX_OK, h.EX_NOMAIL) and took < 10,
                    "round %d: SIGTERM: a clean stop within 10 s (%.1f s)" % (i + 1, took), r)
        # Whatever is \Seen must be in its sink, whole.
        have = set(h.parse_mbox(h.read_file(mbox)))
        lost = [u for u, f in dv.flags("alice").items() if "\\Seen" in f and mbox_msgs[u - 1] not in have]
        t.check(not lost, "round %d: every \\Seen message of alice is in the mbox" % (i + 1), lost[:5])
        have = set(h.read_maildir_like(out))
        lost = [u for u, f in dv.flags("bob").items() if "\\Seen" in f and mda_msgs[u - 1] not in have]
        t.check(not lost, "round %d: every \\Seen message of bob was delivered" % (i + 1), lost[:5])

    t.log("%d runs killed, %d stopped by SIGTERM" % (kills, terms))
    t.check(kills >= ROUNDS // 2, "runs were really killed (%d)" % kills)
    r = t.run([], cfg, timeout=180)
    t.exit_code(r, {h.EX_OK, h.EX_NOMAIL}, "the final clean run")

    got = h.parse_mbox(h.read_file(mbox))
    t.eq(len(got), len(mbox_msgs), "the mbox holds as many messages as the server")
    t.messages_equal(sorted(got), sorted(mbox_msgs), "mbox: every message exactly once, byte-exact")
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "alice: all \\Seen")

    got = h.read_maildir_like(out)
    missing = [m for m in mda_msgs if m not in got]
    t.eq(len(missing), 0, "MDA: every message delivered")
    extra = [m for m in got if m not in set(mda_msgs)]
    t.eq(len(extra), 0, "MDA: nothing but whole messages (no truncated input)")
    dups = len(got) - len(set(got))
    t.log("MDA duplicates: %d (after %d kills)" % (dups, kills))
    t.check(dups <= kills, "MDA: at most one second copy per kill (%d <= %d)" % (dups, kills))
    t.check(all("\\Seen" in f for f in dv.flags("bob").values()), "bob: all \\Seen")


h.main(test)
