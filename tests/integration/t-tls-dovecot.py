#!/usr/bin/env python3
"""TLS against a real Dovecot: implicit TLS and STARTTLS both fetch mail and
log in over TLS; host = localhost is checked against the DNS name; a
certificate for the wrong host or from an unknown CA gives exit 2 with
nothing fetched; tls_fingerprint pins a certificate the CA did not sign."""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    dv = t.dovecot()
    mbox = t.path("inbox.mbox")
    want = []

    for n, (label, tls, host) in enumerate([
        ("implicit TLS", "implicit", "127.0.0.1"),
        ("STARTTLS", "starttls", "127.0.0.1"),
        ("implicit TLS to localhost", "implicit", "localhost"),
    ]):
        batch = [h.sample_message(10 * n + 1, 700), h.sample_message(10 * n + 2, 4000)]
        uids = dv.append_many("alice", "INBOX", batch)
        want += batch
        dv.settle_log()
        before = len(dv.login_lines("alice"))
        cfg = h.config({"acct": h.dovecot_keys(dv, tls=tls, host=host, deliver="mbox", mbox=mbox)})
        r = t.run([], cfg)
        t.exit_code(r, h.EX_OK, label)
        dv.settle_log()
        mine = dv.login_lines("alice")[before:]
        t.eq(len(mine), 1, "%s: mailfetch logged in once" % label)
        t.check(len(mine) == 1 and re.search(r"\bTLS\b", mine[0]) is not None,
                "%s: Dovecot saw the login over TLS" % label, mine)
        t.messages_equal(h.parse_mbox(h.read_file(mbox)), want, "%s: mbox contents" % label)
        fl = dv.flags("alice")
        t.check(all("\\Seen" in fl.get(u, ()) for u in uids), "%s: messages \\Seen" % label, fl)

    # Certificate failures against Dovecot itself.
    for which, label in (("wrong", "wrong host name"), ("untrusted", "unknown CA")):
        bad = t.dovecot(cert=which)
        uid = bad.append("alice", "INBOX", h.sample_message(90))
        box = t.path("bad-%s.mbox" % which)
        for tls in ("implicit", "starttls"):
            bad.settle_log()
            logins = bad.login_count()
            r = t.run([], h.config({"acct": h.dovecot_keys(bad, tls=tls, deliver="mbox", mbox=box)}))
            t.exit_code(r, h.EX_CONNECT, "%s certificate, %s" % (label, tls))
            bad.settle_log()
            t.eq(bad.login_count(), logins, "%s certificate, %s: no login reached Dovecot" % (label, tls))
        t.eq(h.read_file(box), b"", "%s certificate: nothing delivered" % label)
        t.eq(bad.flags("alice").get(uid), set(), "%s certificate: message still unseen" % label)

        if which == "untrusted":
            pin = t.certs.fingerprint("untrusted")
            r = t.run([], h.config({"acct": h.dovecot_keys(bad, deliver="mbox", mbox=box,
                                                         tls_ca_file=None, tls_fingerprint=pin)}))
            t.exit_code(r, h.EX_OK, "tls_fingerprint pins the self-signed certificate")
            t.eq(len(h.parse_mbox(h.read_file(box))), 1, "pinned: message delivered")
            other = t.certs.fingerprint("good")
            bad.append("alice", "INBOX", h.sample_message(91))
            box2 = t.path("pin-mismatch.mbox")
            r = t.run([], h.config({"acct": h.dovecot_keys(bad, deliver="mbox", mbox=box2,
                                                         tls_fingerprint=other)}))
            t.exit_code(r, h.EX_CONNECT, "tls_fingerprint of another certificate")
            t.eq(h.read_file(box2), b"", "pin mismatch: nothing delivered")


h.main(test)
