#!/usr/bin/env python3
"""-v -v shows the protocol (IMAP> and IMAP< lines) with LOGIN arguments
and AUTHENTICATE payloads masked: neither the password, nor its quoted
form, nor the base64 of the SASL PLAIN or LOGIN payloads appears anywhere
in stdout or stderr, for auth = login (the LOGIN mechanism, and the
LOGIN command where no AUTH=LOGIN is offered) and auth = plain, with and
without SASL-IR, and at -v -v -v too.  Literal bodies show as {N bytes}."""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def check_trace(t, r, what, user, pw, bodies_masked=True):
    text = r.output
    t.check(re.search(r"^mailfetch: acct: IMAP> ", text, re.M) is not None, "%s: IMAP> lines" % what, r.stderr)
    t.check(re.search(r"^mailfetch: acct: IMAP< ", text, re.M) is not None, "%s: IMAP< lines" % what)
    t.no_secrets(r.out + r.err, user, pw, what)
    if bodies_masked:
        t.check(re.search(r"IMAP< .*\{\d+ bytes\}", text) is not None, "%s: literal shown as {N bytes}" % what)
        t.check("this is message number" not in text, "%s: message bodies not in the trace" % what)


def test(t):
    dv = t.dovecot()
    user, pw = "alice", dv.users["alice"]
    mbox = t.path("inbox.mbox")
    n = 0
    for auth in ("login", "plain"):
        for tls in ("implicit", "starttls"):
            n += 1
            dv.append(user, "INBOX", h.sample_message(n, 2000))
            what = "auth = %s, %s" % (auth, tls)
            r = t.run(["-v", "-v"], h.config({"acct": h.dovecot_keys(dv, tls=tls, auth=auth,
                                                                     deliver="mbox", mbox=mbox)}))
            t.exit_code(r, h.EX_OK, what)
            check_trace(t, r, what, user, pw)
            if auth == "login":
                # Dovecot offers AUTH=LOGIN: the LOGIN mechanism, both answers masked
                t.check(re.search(r"IMAP> \S+ AUTHENTICATE LOGIN\s*$", r.stderr, re.M) is not None,
                        "%s: trace shows AUTHENTICATE LOGIN" % what, r.stderr)
                t.eq(len(re.findall(r"^mailfetch: acct: IMAP> \*$", r.stderr, re.M)), 2,
                     "%s: user name and password masked" % what)
                t.check(not re.search(r"IMAP> \S+ LOGIN ", r.stderr), "%s: no LOGIN command" % what)
            else:
                t.check(re.search(r"IMAP> \S+ AUTHENTICATE PLAIN( \*)?\s*$", r.stderr, re.M) is not None,
                        "%s: trace shows AUTHENTICATE PLAIN masked" % what, r.stderr)
                t.check(not re.search(r"IMAP> \S+ LOGIN ", r.stderr), "%s: LOGIN was not used" % what)
            if tls == "starttls":
                t.check(re.search(r"IMAP> \S+ STARTTLS", r.stderr) is not None, "%s: STARTTLS in the trace" % what)
            t.check(re.search(r"^mailfetch: acct: TLS: ", r.stderr, re.M) is not None,
                    "%s: TLS: lines in the trace" % what)
    t.eq(len(h.parse_mbox(h.read_file(mbox))), n, "all runs delivered")

    # -v -v -v shows bodies, still no password.
    dv.append(user, "INBOX", h.sample_message(50, 2000))
    r = t.run(["-v", "-v", "-v"], h.config({"acct": h.dovecot_keys(dv, auth="plain", deliver="mbox", mbox=mbox)}))
    t.exit_code(r, h.EX_OK, "-v -v -v")
    check_trace(t, r, "-v -v -v", user, pw, bodies_masked=False)

    # -v: one line per message and a summary, no protocol.
    dv.append(user, "INBOX", h.sample_message(51, 2000))
    r = t.run(["-v"], h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox)}))
    t.exit_code(r, h.EX_OK, "-v")
    t.check(re.search(r"^mailfetch: acct: INBOX: UID \d+, \d+ bytes: delivered", r.stderr, re.M) is not None,
            "-v: one line per message", r.stderr)
    t.check("IMAP>" not in r.output, "-v: no protocol trace")
    t.check(re.search(r"^mailfetch: acct: 1 message \(\d+ bytes\) for alice@127\.0\.0\.1: 1 delivered, 0 failed$",
                      r.stderr, re.M) is not None, "-v: the summary says 1 message, not 1 messages", r.stderr)
    t.no_secrets(r.out + r.err, user, pw, "-v")

    # Fake server without SASL-IR and LITERAL+: AUTHENTICATE PLAIN by
    # continuation, the LOGIN mechanism, and the LOGIN command (a server
    # that lists no AUTH=LOGIN) perhaps with a synchronising literal.
    for mech in ("plain", "login", "login-command"):
        srv = t.fake(tls="implicit", sasl_ir=False, literal_plus=False, messages=[h.sample_message(60)],
                     auth_mechs={"plain": ("PLAIN", "LOGIN"), "login": ("LOGIN",), "login-command": ()}[mech])
        box = t.path("fake-%s.mbox" % mech)
        r = t.run(["-v", "-v"], h.config({"acct": h.fake_keys(srv, auth=mech.replace("-command", ""),
                                                               deliver="mbox", mbox=box)}))
        srv.stop()
        what = "fake server without SASL-IR or LITERAL+, auth = %s" % mech
        t.exit_code(r, h.EX_OK, what)
        check_trace(t, r, what, srv.user, srv.password)
        if mech == "login-command":
            t.check(srv.saw("LOGIN") and not srv.saw("AUTHENTICATE"), "%s: the LOGIN command was used" % what,
                    srv.command_names())
            t.check(re.search(r'IMAP> \S+ LOGIN "alice" \*\s*$', r.stderr, re.M) is not None,
                    '%s: trace shows LOGIN "alice" *' % what, r.stderr)
        else:
            t.check(srv.saw("AUTHENTICATE"), "%s: AUTHENTICATE was used" % what, srv.command_names())


h.main(test)
