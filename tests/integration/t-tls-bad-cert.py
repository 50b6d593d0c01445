#!/usr/bin/env python3
"""A server with a certificate for the wrong host name, or one that no
trusted CA signed: exit 2, and not one byte of IMAP sent after the TLS
handshake (fake server, implicit TLS and STARTTLS)."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def after_tls(srv):
    """Events received after the first TLS handshake event of each connection."""
    out = []
    started = set()
    for conn, kind, data in list(srv.events):
        if kind in ("tls-ok", "tls-failed"):
            started.add(conn)
        elif kind == "recv" and conn in started:
            out.append(data)
    return out


def test(t):
    for which, label in (("wrong", "wrong host name"), ("untrusted", "self-signed, unknown CA")):
        for tls in ("implicit", "starttls"):
            what = "%s certificate, %s" % (label, tls)
            srv = t.fake(tls=tls if tls == "implicit" else "none", cert=which,
                         messages=[h.sample_message(1)])
            mbox = t.path("%s-%s.mbox" % (which, tls))
            r = t.run([], h.config({"acct": h.fake_keys(srv, tls=tls, deliver="mbox", mbox=mbox)}))
            srv.stop()
            t.exit_code(r, h.EX_CONNECT, what)
            kinds = srv.kinds()
            t.check("tls-ok" in kinds or "tls-failed" in kinds, "%s: a TLS handshake was attempted" % what,
                    srv.log_tail())
            t.eq(after_tls(srv), [], "%s: nothing received after the handshake" % what, srv.log_tail())
            t.check(not srv.saw("LOGIN") and not srv.saw("AUTHENTICATE"), "%s: no LOGIN/AUTHENTICATE" % what)
            t.eq(h.read_file(mbox), b"", "%s: nothing delivered" % what)
            t.check("mailfetch: acct" in r.stderr, "%s: an error line names the account" % what, r.stderr)


h.main(test)
