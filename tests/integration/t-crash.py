#!/usr/bin/env python3
"""Crash safety with grouped fsyncs: mailfetch is killed with SIGKILL at
many points of a fetch into an mbox (when the mbox has grown by a
pseudo-random amount, so every kill lands while mail is being delivered),
then runs to the end.  After every kill, each message the server shows
\\Seen is complete in the mbox (marks never precede a durable delivery);
at the end every message is in the mbox exactly once, whole, and nothing
is left unseen: the journal's intents let the next run find what a
killed one wrote (marking it instead of writing it again) and cut away
the half message it was writing."""

import os
import random
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

KILLS = 25


def mboxrd(data):
    """data with mboxrd quoting, as it stands in the mbox."""
    return re.sub(rb"(?m)^(>*From )", rb">\1", data)


def test(t):
    dv = t.dovecot()
    msgs = [h.sample_message(i + 1, (i * 7919) % 40000 + 500) for i in range(600)]
    uids = dv.append_many("alice", "INBOX", msgs)
    by_uid = dict(zip(uids, msgs))
    mbox = t.path("inbox.mbox")
    cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox)})
    rnd = random.Random(20261126)
    kills = mid_fetch = 0
    before = 0

    for i in range(KILLS):
        size0 = len(h.read_file(mbox))
        grow = rnd.uniform(1, 4000000)
        run = t.start([], cfg)
        deadline = time.time() + 30
        while not run.poll() and time.time() < deadline:
            try:
                if os.path.getsize(mbox) - size0 >= grow:
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.002)
        killed = not run.poll()
        if killed:
            try:
                run.kill()
            except ProcessLookupError:
                killed = False
        r = run.wait()
        kills += killed
        have = h.parse_mbox(h.read_file(mbox))
        mid_fetch += killed and len(have) > before
        before = len(have)
        complete = set(have)
        seen = [u for u, f in dv.flags("alice").items() if "\\Seen" in f]
        lost = [u for u in seen if by_uid[u] not in complete]
        t.check(not lost, "after run %d (%s): every \\Seen message is whole in the mbox"
                % (i + 1, "killed" if killed else "exit %s" % r.code), lost[:10])
        if len(seen) == len(msgs):
            break

    r = t.run([], cfg, timeout=120)
    t.exit_code(r, {h.EX_OK, h.EX_NOMAIL}, "the last run finishes")
    t.log("%d runs killed, %d of them while delivering" % (kills, mid_fetch))
    t.check(mid_fetch >= 3, "the test really killed runs mid-fetch (%d)" % mid_fetch)
    have = h.parse_mbox(h.read_file(mbox))
    whole = [m for m in have if m in set(msgs)]
    partial = [m for m in have if m not in set(msgs)]
    missing = [i + 1 for i, m in enumerate(msgs) if m not in set(whole)]
    t.eq(missing, [], "every message is in the mbox whole")
    dups = len(whole) - len(set(whole))
    t.log("duplicates: %d, truncated copies: %d" % (dups, len(partial)))
    # Compared in the mbox's own (mboxrd-quoted) form: a kill can cut a
    # quoted line anywhere, ">Fro" say, which reads back unquoted.
    quoted = [mboxrd(full) for full in msgs]
    bad = [m[:80] for m in partial if not any(q.startswith(mboxrd(m.rstrip(b"\n"))) for q in quoted)]
    t.eq(bad, [], "anything else in the mbox is a truncated copy of a real message")
    t.eq(len(partial), 0, "no truncated copy is left behind")
    t.eq(dups, 0, "no message is in the mbox twice")
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "all \\Seen at the end")


h.main(test)
