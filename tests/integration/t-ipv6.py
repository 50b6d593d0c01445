#!/usr/bin/env python3
"""IPv6: mailfetch reaches a Dovecot listening on ::1, by address literal
(the certificate's IP SAN is checked, no SNI is sent for an address) and
through the name localhost, and delivers the mail."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    if not h.ipv6_loopback_works():
        raise h.Skip("this machine has no IPv6 loopback (::1)")
    dv = t.dovecot(ipv6=True)
    msgs = h.sample_messages(2)
    dv.append_many("alice", "INBOX", msgs)
    mbox = t.path("inbox.mbox")
    r = t.run(["-v", "-v"], h.config({"acct": h.dovecot_keys(dv, host="::1", deliver="mbox", mbox=mbox)}))
    t.exit_code(r, h.EX_OK, "fetch from ::1")
    t.check("certificate verified for ::1" in r.stderr, "the certificate was checked against ::1", r.stderr)
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "delivered over IPv6")
    t.check(":1" in dv.log() and "rip=::1" in dv.log(), "Dovecot saw a connection from ::1", dv.log()[-800:])

    for m in msgs:
        dv.append("alice", "INBOX", m)
    os.unlink(mbox)
    r = t.run([], h.config({"acct": h.dovecot_keys(dv, host="localhost", tls="starttls",
                                                    deliver="mbox", mbox=mbox)}))
    t.exit_code(r, h.EX_OK, "fetch from localhost with STARTTLS")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "delivered via localhost")


h.main(test)
