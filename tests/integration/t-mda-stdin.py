#!/usr/bin/env python3
"""The MDA's stdin already holds the whole message when the MDA starts, so
no kill of mailfetch at any moment can make it deliver part of one.  The
MDA here first touches a marker, sleeps a second, then copies its stdin
to a file; mailfetch gets SIGKILL as soon as the marker is there.  The MDA
runs in a process group of its own, so it lives on, and what it delivers
must be the complete message, byte-exact with LF line ends: for a message
small enough for memory (a sealed memfd) and for a large one (an unlinked
file in $TMPDIR).  Both are bigger than a pipe's buffer, which is what an
MDA used to get cut off at.  The message stays unmarked on the server."""

import os
import shlex
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

MDA = """#!/bin/sh
touch %(marker)s
sleep 1
readlink /proc/$$/fd/0 > %(what)s
cat > %(out)s.tmp && mv %(out)s.tmp %(out)s
"""


def test(t):
    dv = t.dovecot()
    # 100 KB: spooled in memory; 300 KB: spooled to a file.  Either is
    # more than the 64 KiB a pipe holds.
    for user, size in (("alice", 100 * 1024), ("bob", 300 * 1024)):
        msg = h.sample_message(size // 1024, size)
        uid = dv.append(user, "INBOX", msg)
        d = t.mkdir("mda-%s" % user)
        marker, out, what = (os.path.join(d, n) for n in ("started", "out", "stdin"))
        mda = os.path.join(d, "mda.sh")
        with open(mda, "w") as f:
            f.write(MDA % {k: shlex.quote(v) for k, v in (("marker", marker), ("out", out), ("what", what))})
        os.chmod(mda, 0o755)

        run = t.start([], h.config({"acct": h.dovecot_keys(dv, user=user, deliver="mda", mda=mda)}))
        started = h.wait_for(lambda: os.path.exists(marker), timeout=30)
        t.require(started, "%d KB: the MDA started" % (size // 1024))
        run.kill(signal.SIGKILL)
        r = run.wait()
        t.eq(r.code, -signal.SIGKILL, "%d KB: mailfetch was killed while the MDA ran" % (size // 1024))

        t.check(h.wait_for(lambda: os.path.exists(out), timeout=15), "%d KB: the MDA finished" % (size // 1024))
        t.log("%d KB: the MDA's stdin was %s" % (size // 1024, h.read_file(what).decode(errors="replace").strip()))
        t.messages_equal([h.read_file(out)], [msg], "%d KB: the MDA delivered the whole message" % (size // 1024))
        t.eq(dv.flags(user).get(uid), set(), "%d KB: the message is not marked" % (size // 1024))


h.main(test)
