#!/usr/bin/env python3
"""Deliver through the real procmail (mda = procmail -m RCFILE) into a
Maildir; every message arrives byte-exact and is \\Seen afterwards."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

PROCMAIL = "/usr/bin/procmail"


def test(t):
    if not os.access(PROCMAIL, os.X_OK):
        raise h.Skip("procmail is not installed")
    dv = t.dovecot()
    msgs = h.sample_messages(4)
    uids = dv.append_many("alice", "INBOX", msgs)

    maildir = t.path("mail", "inbox")
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(maildir, sub))
    rc = t.path("procmailrc")
    with open(rc, "w") as f:
        f.write("MAILDIR=%s\nLOGFILE=%s\nVERBOSE=no\n\n:0\n%s/\n"
                % (t.path("mail"), t.path("procmail.log"), maildir))
    os.chmod(rc, 0o644)
    cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda="%s -m %s" % (PROCMAIL, rc))})

    r = t.run([], cfg)
    t.exit_code(r, h.EX_OK, "run through procmail")
    got = h.read_maildir(maildir)
    t.messages_equal(sorted(got), sorted(msgs), "procmail's Maildir holds every message")
    fl = dv.flags("alice")
    t.check(all("\\Seen" in fl.get(u, ()) for u in uids), "all messages \\Seen on the server", fl)
    t.check(not os.path.exists(t.path("home", "Maildir")) and not os.path.exists(t.path("home", "mbox")),
            "procmail delivered only where the rcfile said")

    r = t.run([], cfg)
    t.exit_code(r, h.EX_NOMAIL, "second run: no new mail")
    t.eq(len(h.read_maildir(maildir)), len(msgs), "second run delivers nothing more")


h.main(test)
