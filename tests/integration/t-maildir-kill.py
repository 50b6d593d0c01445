#!/usr/bin/env python3
"""Kills while delivering into a Maildir (real Dovecot), then a clean run:
every message exactly once in new/ or cur/, byte-exact, all \\Seen, tmp/
empty.  The journal's intents name each message's file, so the next run
finds what a killed one got into new/ (and marks it instead of writing it
again), also when a mail reader has moved it to cur/ meanwhile, and
removes what it left in tmp/.  Without strace only the random kills run.

- SIGKILL at the fsync of new/ (strace): every message of the batch is in
  new/, none is journaled or marked; a "mail reader" then moves some of
  them to cur/ (with flags);
- SIGKILL in the middle of writing the third message (a large one, at its
  second writev): half a file in tmp/;
- SIGKILL (and now and then SIGTERM) at random moments, over many runs,
  with a mail reader moving new/ to cur/ between some of them; after
  every kill each \\Seen message is whole in the Maildir."""

import os
import random
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

ROUNDS = 20
PER_ROUND = 40
SIZES = (600, 2500, 9000, 40000, 150000, 700, 300000, 1200)



def listing(md, sub):
    return sorted(os.listdir(os.path.join(md, sub)))


def reader_moves(md, names, flags="S"):
    """What a mail reader does with mail it has shown: new/X -> cur/X:2,FLAGS."""
    for n in names:
        os.rename(os.path.join(md, "new", n), os.path.join(md, "cur", n + ":2," + flags))


def clean_run(t, dv, cfg, md, msgs, what, n_already=None):
    r = t.run(["-v"], cfg, timeout=180)
    t.exit_code(r, {h.EX_OK, h.EX_NOMAIL}, "%s: the clean run" % what)
    if n_already is not None:
        t.eq(r.stderr.count("already delivered by an interrupted run"), n_already,
             "%s: %d messages found whole, only marked" % (what, n_already), r.stderr)
    got = h.read_maildir(md)
    t.messages_equal(sorted(got), sorted(msgs), "%s: every message exactly once, byte-exact" % what)
    t.eq(listing(md, "tmp"), [], "%s: tmp/ is empty" % what)
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "%s: all \\Seen" % what)
    return r


def test(t):
    dv = t.dovecot()
    allmsgs = []
    md = t.path("Maildir")
    cfg = h.config({"acct": h.dovecot_keys(dv, deliver="maildir", maildir=md)})
    os.makedirs(md)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub))
    if shutil.which("strace") is None:
        t.log("note: strace is not installed: the kills at chosen points are not run")
    else:
        chosen_kills(t, dv, cfg, md, allmsgs)
    random_kills(t, dv, cfg, md, allmsgs)


def chosen_kills(t, dv, cfg, md, allmsgs):
    """Kills at chosen points, by strace."""
    # 1. Killed at the fsync of new/: the whole batch is there, unmarked.
    msgs = [h.sample_message(i + 1, SIZES[i % len(SIZES)]) for i in range(6)]
    dv.append_many("alice", "INBOX", msgs)
    allmsgs += msgs
    wrapper, log = t.strace_wrapper("killsync", "-P '%s/new' -e trace=fsync -e inject=fsync:signal=KILL" % md)
    r = t.run([], cfg, binary=wrapper)
    t.check(r.code in (-signal.SIGKILL, 128 + signal.SIGKILL, 137), "killed at the fsync of new/ (%s)" % r.code, r)
    new = listing(md, "new")
    t.eq(len(new), len(msgs), "the batch had reached new/")
    t.check(all("\\Seen" not in f for f in dv.flags("alice").values()), "nothing marked before the kill")
    reader_moves(md, new[:2], "S")
    reader_moves(md, new[2:3], "RS")
    clean_run(t, dv, cfg, md, allmsgs, "kill after the moves into new/", n_already=len(msgs))

    # 2. Killed in the middle of a large message: half a file in tmp/.
    msgs = [h.sample_message(100 + i, s) for i, s in enumerate((900, 1200, 200000, 800))]
    dv.append_many("alice", "INBOX", msgs)
    allmsgs += msgs
    wrapper, log = t.strace_wrapper("killwrite", "-e trace=writev -e inject=writev:signal=KILL:when=4")
    r = t.run([], cfg, binary=wrapper)
    t.check(r.code in (-signal.SIGKILL, 128 + signal.SIGKILL, 137), "killed while writing (%s)" % r.code, r)
    t.eq(len(listing(md, "tmp")), 3, "three files in tmp/, the last one partial")
    r = clean_run(t, dv, cfg, md, allmsgs, "kill in the middle of a message", n_already=0)
    t.check("left by an interrupted run" in r.stderr, "-v says the leftover in tmp/ was removed", r.stderr)


def random_kills(t, dv, cfg, md, allmsgs):
    """Kills at random moments, with a mail reader now and then."""
    rnd = random.Random(20261203)
    kills = 0
    for i in range(ROUNDS):
        more = [h.sample_message(1000 + len(allmsgs) + k, SIZES[(len(allmsgs) + k) % len(SIZES)]) for k in range(PER_ROUND)]
        dv.append_many("alice", "INBOX", more)
        allmsgs += more
        if i % 3 == 2:
            reader_moves(md, listing(md, "new"), rnd.choice(("S", "RS", "FS")))
        new0 = len(listing(md, "new"))
        run = t.start([], cfg)
        # Half the kills at a random moment (connecting, logging in,
        # marking...), half once a random number of files was written
        # to tmp/ or the batch has reached new/.
        by_time = i % 2 == 0
        deadline = time.time() + (rnd.uniform(0.0, 0.3) if by_time else 10)
        written = rnd.randint(1, PER_ROUND)
        while time.time() < deadline and not run.poll():
            if not by_time and (len(listing(md, "tmp")) >= written or len(listing(md, "new")) > new0):
                break
            time.sleep(0.001)
        if not run.poll():
            sig = signal.SIGTERM if rnd.random() < 0.2 else signal.SIGKILL
            try:
                os.kill(run.pid, sig)
            except ProcessLookupError:
                pass
        r = run.wait()
        kills += r.code == -signal.SIGKILL
        have = set(h.read_maildir(md))
        by_uid = dict(enumerate(allmsgs, 1))
        lost = [u for u, f in dv.flags("alice").items() if "\\Seen" in f and by_uid[u] not in have]
        t.check(not lost, "round %d (exit %s): every \\Seen message is whole in the Maildir" % (i + 1, r.code), lost[:5])
    t.log("%d runs killed" % kills)
    t.check(kills >= ROUNDS // 4, "runs were really killed (%d)" % kills)
    clean_run(t, dv, cfg, md, allmsgs, "random kills")


h.main(test)
