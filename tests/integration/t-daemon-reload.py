#!/usr/bin/env python3
"""SIGHUP that changes an account while it is being polled, for longer
than a reload would wait (a delivery agent that takes 6 s a message):
the old poll finishes, the account starts again with its new settings
only after that (never two polls of one account at once), every message
is delivered once; changed back, the account is still polled (SIGUSR1
reaches it), and the daemon stops on SIGTERM."""

import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    dv = t.dovecot()
    out = t.mkdir("out")
    mda = t.path("slow-mda")
    with open(mda, "w") as f:
        f.write("#!/bin/sh\necho x >> '%s/started'\nsleep 6\nexec cat > \"$(mktemp '%s/msg.XXXXXX')\"\n" % (out, out))
    os.chmod(mda, 0o755)
    keys = h.dovecot_keys(dv, "bob", deliver="mda", mda=mda)
    cfg = h.write_config(t.path("fetchrc"), h.config({"bob": keys}), 0o600)
    msgs = [h.sample_message(900 + i, 800, subject="reload %d" % i) for i in range(2)]
    dv.append_many("bob", "INBOX", msgs)
    d = h.start_mailfetch(["-c", cfg, "-d", "300", "-v", "--lockfile", t.path("lock")], tmpdir=t.dir, timeout=300,
                          on_result=t._finished)
    err = lambda: d.stderr_so_far().decode("utf-8", "replace")  # noqa: E731
    started = os.path.join(out, "started")
    t.check(h.wait_for(lambda: os.path.exists(started), timeout=20), "the first message is with the slow MDA")
    h.write_config(cfg, h.config({"bob": dict(keys, timeout="61")}), 0o600)
    d.kill(signal.SIGHUP)
    t.check(h.wait_for(lambda: "config re-read: 0 accounts started, 1 stopped, 0 unchanged" in err(), timeout=10),
            "SIGHUP: the changed account is asked to stop, nothing started yet", err()[-2000:])

    def delivered():
        return [h.read_file(os.path.join(out, f)) for f in os.listdir(out) if f.startswith("msg.")]

    t.check(h.wait_for(lambda: len(delivered()) >= 2 and "started with its new settings" in err(), timeout=60),
            "both delivered, and the account started again after its old poll ended", err()[-3000:])
    time.sleep(1)
    subjects = sorted(re.search(rb"Subject: (reload \d)", m).group(1) for m in delivered())
    t.eq(subjects, [b"reload 0", b"reload 1"], "each message once: no second poll ran beside the old one")
    lines = err().splitlines()
    stop_at = next(i for i, l in enumerate(lines) if "config re-read" in l)
    again_at = next(i for i, l in enumerate(lines) if "started with its new settings" in l)
    last_old = max(i for i, l in enumerate(lines) if "bob: 2 messages" in l or "bob: 1 message " in l)
    t.check(stop_at < last_old < again_at, "the new one started only after the old poll's summary", lines[stop_at:])

    # Changed back: still polled.
    h.write_config(cfg, h.config({"bob": keys}), 0o600)
    d.kill(signal.SIGHUP)
    t.check(h.wait_for(lambda: err().count("started with its new settings") >= 2, timeout=30),
            "changed back: started again", err()[-2000:])
    dv.append("bob", "INBOX", h.sample_message(950, 700, subject="reload 2"), create=False)
    d.kill(signal.SIGUSR1)
    t.check(h.wait_for(lambda: len(delivered()) == 3, timeout=40), "and polled (SIGUSR1)", err()[-2000:])
    d.kill(signal.SIGTERM)
    r = d.wait()
    t.eq(r.code, 143, "SIGTERM: 143")


h.main(test)
