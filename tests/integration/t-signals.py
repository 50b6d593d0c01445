#!/usr/bin/env python3
"""SIGTERM, SIGINT and SIGHUP stop a run cleanly (real Dovecot, and the
scripted fake server for a server that stalls):
- the signal arrives while the MDA is delivering a message: the delivery
  finishes, is journaled and marked, nothing more is fetched, the run
  logs out and exits 128+N within 10 s; the next run delivers the rest
  and nothing twice;
- the signal arrives while an MDA hangs: it is given the grace period,
  then killed with its process group; the message stays unmarked;
- the signal arrives while the server stalls in the middle of a batch
  (mbox sink): the run is gone within 10 s, what was delivered is in the
  mbox once and journaled, and the next run marks it without fetching it
  again."""

import fcntl
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

MDA = r"""#!/bin/sh
# Test MDA: slow; announces itself, then keeps the message as a file.
OUT='%(out)s'
touch '%(started)s'
sleep 1
tmp=$(mktemp "$OUT/.tmp.XXXXXX") || exit 74
cat > "$tmp" || exit 74
mv "$tmp" "$OUT/msg.$(date +%%s%%N).$$"
"""


def uid_set(arg):
    text = arg.decode() if isinstance(arg, bytes) else str(arg)
    nums = set()
    for part in text.split(","):
        a, _, b = part.partition(":")
        nums.update(range(int(a), int(b or a) + 1))
    return nums


def wait_for(path, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.01)
    return False


def test(t):
    dv = t.dovecot()
    out = t.mkdir("delivered")
    started = t.path("started")
    mda = t.path("mda.sh")
    with open(mda, "w") as f:
        f.write(MDA % dict(out=out, started=started))
    os.chmod(mda, 0o755)
    msgs = [h.sample_message(i + 1, 800 + 100 * i) for i in range(6)]
    uids = dv.append_many("alice", "INBOX", msgs)
    cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda=mda)})

    delivered = 0
    for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        name = signal.Signals(signo).name
        if os.path.exists(started):
            os.unlink(started)
        run = t.start([], cfg)
        t.require(wait_for(started), "%s: the MDA started" % name)
        t0 = time.time()
        os.kill(run.pid, signo)
        r = run.wait()
        took = time.time() - t0
        t.eq(r.code, 128 + signo, "%s: exit 128+%d" % (name, signo), r.stderr)
        t.check(took < 10, "%s: gone within 10 s (%.1f s)" % (name, took))
        got = h.read_maildir_like(out)
        t.check(len(got) == delivered + 1, "%s: the message in hand was delivered, nothing after it" % name,
                len(got))
        delivered = len(got)
        seen = [u for u, f in dv.flags("alice").items() if "\\Seen" in f]
        t.eq(len(seen), delivered, "%s: what was delivered is marked \\Seen" % name)
        t.check("stopped by signal" in r.stderr or r.stderr == "", "%s: no error but the stop" % name, r.stderr)

    r = t.run([], cfg, timeout=120)
    t.exit_code(r, h.EX_OK, "the next run delivers the rest")
    t.messages_equal(sorted(h.read_maildir_like(out)), sorted(msgs), "every message exactly once")
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "all \\Seen")

    # An MDA that hangs: it gets the grace period, then it is killed; the
    # run is gone within 10 s and the message stays unmarked.
    hang = t.path("hang.sh")
    with open(hang, "w") as f:
        f.write("#!/bin/sh\ntouch '%s'\nexec sleep 60\n" % started)
    os.chmod(hang, 0o755)
    os.unlink(started)
    ub = dv.append("bob", "INBOX", h.sample_message(99, 700))
    run = t.start([], h.config({"acct": h.dovecot_keys(dv, "bob", deliver="mda", mda=hang)}))
    t.require(wait_for(started), "hanging MDA: it started")
    t0 = time.time()
    os.kill(run.pid, signal.SIGTERM)
    r = run.wait()
    took = time.time() - t0
    t.eq(r.code, 128 + signal.SIGTERM, "hanging MDA: exit 143", r.stderr)
    t.check(took < 10, "hanging MDA: gone within 10 s (%.1f s)" % took)
    t.eq(dv.flags("bob").get(ub), set(), "hanging MDA: its message stays unmarked")
    t.check("before mailfetch had to stop" in r.stderr, "hanging MDA: the error says why", r.stderr)

    # The mbox is locked by another program: mailfetch waits for it, and a
    # SIGTERM ends that wait.
    lmsgs = [h.sample_message(i + 1, 700) for i in range(3)]
    srv = t.fake(tls="implicit", messages=lmsgs)
    locked = t.path("locked.mbox")
    with open(locked, "wb"):
        pass
    holder = open(locked, "ab")
    fcntl.lockf(holder, fcntl.LOCK_EX)
    run = t.start([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=locked)}))
    deadline = time.time() + 20
    while not srv.saw("FETCH") and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # waiting for the lock by now
    t0 = time.time()
    os.kill(run.pid, signal.SIGTERM)
    r = run.wait()
    took = time.time() - t0
    holder.close()
    srv.stop()
    t.eq(r.code, 128 + signal.SIGTERM, "locked mbox: exit 143", r.stderr)
    t.check(took < 10, "locked mbox: gone within 10 s (%.1f s)" % took)
    t.check(not srv.saw("STORE"), "locked mbox: nothing marked")
    t.eq(h.read_file(locked), b"", "locked mbox: nothing written")

    # A server that stalls mid-batch; the signal comes during the stall.
    fmsgs = [h.sample_message(i + 1, 900) for i in range(5)]
    stalled = {}

    def stall_before_third(sess, m):
        if m.uid == 3 and not stalled:
            stalled["at"] = time.time()
            time.sleep(40)

    srv = t.fake(tls="implicit", messages=fmsgs, on_fetch_message=stall_before_third)
    mbox = t.path("inbox.mbox")
    fcfg = h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox, timeout=60)})
    run = t.start([], fcfg)
    deadline = time.time() + 20
    while "at" not in stalled and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    t0 = time.time()
    os.kill(run.pid, signal.SIGTERM)
    r = run.wait()
    took = time.time() - t0
    t.eq(r.code, 128 + signal.SIGTERM, "stalled server: exit 143", r.stderr)
    t.check(took < 10, "stalled server: gone within 10 s (%.1f s)" % took)
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), fmsgs[:2], "the two received before the stall are in the mbox")
    srv.stop()
    # The same mailbox again, unstalled: the two are only marked.
    srv = t.fake(tls="implicit", messages=fmsgs, uidvalidity=srv.uidvalidity)
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "the next run")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), fmsgs, "every message once")
    fetched = set()
    for (_c, _t, n, a) in srv.commands():
        if n == "UID FETCH":
            fetched |= uid_set(a[0])
    t.eq(sorted(fetched), [3, 4, 5], "the two delivered before the stop are not fetched again")
    t.eq(sorted(srv.flags()), [1, 2, 3, 4, 5], "all there")
    t.check(all("\\Seen" in f for f in srv.flags().values()), "all \\Seen")


h.main(test)
