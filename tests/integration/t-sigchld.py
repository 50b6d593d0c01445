#!/usr/bin/env python3
"""mailfetch started with SIGCHLD ignored (as Perl and Python parents often
leave it; exec keeps it), so the kernel would reap its children and no
exit status could be read.  A status is never made up: an MDA that exits
0 is never reported as "MDA exited 16" and the message is never delivered
twice over two runs: mailfetch puts SIGCHLD back to its default at start,
delivers it once and marks it.  An MDA that exits 75 leaves its message
unmarked.  password_command gives its password and the run logs in.
(Were SIGCHLD still ignored, proc.c would refuse to start a child rather
than lose its status.)"""

import os
import shlex
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

# Runs its arguments with SIGCHLD ignored, the way a Python parent that
# set SIG_IGN and then exec'd (or spawned) mailfetch would.
WRAPPER = """#!%(py)s -S
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])
"""

SIGCHLD_BIT = 1 << (17 - 1)  # SIGCHLD is 17 on Linux; SigIgn is a bit mask


def script(t, name, text):
    p = t.path(name)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, 0o755)
    return p


def copies(data, msg):
    """How many times msg is in data, and whether data is nothing else."""
    n = data.count(msg)
    return n, data == msg * n


def test(t):
    wrap = script(t, "sigchld-ignored", WRAPPER % dict(py=sys.executable))
    p = subprocess.run([wrap, "/bin/grep", "^SigIgn:", "/proc/self/status"], capture_output=True, timeout=30)
    ign = int(p.stdout.split()[1], 16) if p.returncode == 0 and p.stdout else 0
    t.require(ign & SIGCHLD_BIT, "the wrapper leaves SIGCHLD ignored across exec", p)

    # The harness runs BINARY -c CFG: a script that puts the real binary
    # behind the wrapper.
    mf = h.mailfetch_binary()
    ignoring = script(t, "mailfetch-sigchld-ignored", "#!/bin/sh\nexec %s %s \"$@\"\n"
                      % (shlex.quote(wrap), shlex.quote(mf)))

    def run(cfg):
        return t.run([], cfg, binary=ignoring)

    dv = t.dovecot()

    # An MDA that delivers and exits 0, over two runs.
    m1 = h.sample_message(1, 1200)
    u1 = dv.append("alice", "INBOX", m1)
    out = t.path("mda-out")
    cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda="cat >> %s" % shlex.quote(out))})
    r1 = run(cfg)
    r2 = run(cfg)
    for k, r in ((1, r1), (2, r2)):
        t.check("exited 16" not in r.stderr and "exited" not in r.stderr,
                "run %d: no made-up MDA exit status" % k, r.stderr)
    n, clean = copies(h.read_file(out), m1)
    t.check(n <= 1 and clean, "never delivered twice over two runs (%d copies)" % n, h.read_file(out)[:300])
    seen = dv.flags("alice").get(u1)
    # mailfetch puts SIGCHLD back to its default at start (signals_setup).
    t.eq(n, 1, "delivered exactly once")
    t.exit_code(r1, h.EX_OK, "run 1 delivers")
    t.eq(seen, {"\\Seen"}, "the delivered message is marked")
    t.exit_code(r2, h.EX_NOMAIL, "run 2: nothing new")

    # An MDA that exits 75: never marked, whatever happens to SIGCHLD.
    m2 = h.sample_message(2, 900)
    u2 = dv.append("alice", "INBOX", m2)
    tempfail = script(t, "tempfail-mda.sh", "#!/bin/sh\ncat > /dev/null\necho 'test mda: try later' >&2\nexit 75\n")
    r = run(h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda=tempfail)}))
    t.exit_code(r, h.EX_DELIVERY, "MDA exit 75")
    t.eq(dv.flags("alice").get(u2), set(), "the message of the MDA that exited 75 stays unmarked")
    t.check("exited 16" not in r.stderr, "exit 75: no made-up exit status", r.stderr)

    # password_command: the password, or exit 3 naming SIGCHLD.
    fl = dv.flags("alice")
    unmarked = [(u, m) for u, m in ((u1, m1), (u2, m2)) if fl.get(u) == set()]
    pw = dv.users["alice"]
    mbox = t.path("inbox.mbox")
    keys = h.dovecot_keys(dv, password=None, password_command="printf '%%s\\n' %s" % shlex.quote(pw),
                          deliver="mbox", mbox=mbox)
    r = run(h.config({"acct": keys}))
    t.exit_code(r, h.EX_OK, "password_command with SIGCHLD back at its default: login and delivery")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), [m for u, m in unmarked],
                     "the unmarked messages delivered to the mbox")
    t.check(pw not in r.output, "password_command: password not printed")


h.main(test)
