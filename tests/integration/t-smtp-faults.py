#!/usr/bin/env python3
"""deliver = smtp and lmtp against a scripted fake server (tests/lib/
fakesmtp.py), the IMAP side a fake IMAP server, three messages each:

- 4xx at MAIL, RCPT, DATA or after the data, and 421: temporary: nothing
  marked, nothing more tried this run (one transaction), RSET after a
  refused MAIL/RCPT/DATA, exit 10, an error line naming the account,
  the reply and what to do.  The same at the second message: the first
  stays delivered and \\Seen.
- 5xx at each step for the second message: that one stays unseen, the
  other two are delivered (after RSET) and \\Seen, exit 10.
- the connection dropped after DATA and after the data, a server that
  stalls (bounded by timeout), one that drips its reply (the low-speed
  rule), a 554 greeting, a malformed reply, nobody listening: exit 10,
  nothing more this run, unmarked.
- a server that ends the idle session (421 and close) after a message:
  the next message goes through a new session.
- without PIPELINING the client waits for each reply; with it MAIL, RCPT
  and DATA go out together; SIZE too small for one message: that one is
  refused without being sent; dot-stuffing and CRLF on the wire.
- LMTP over a unix socket: the reply after the data decides (452:
  temporary, 552: that message only); a missing socket: one error line,
  exit 10, nothing fetched.
- a server address that is not loopback (0.0.0.0, which Linux routes to
  this host, so the test stays on it): without STARTTLS refused before
  MAIL; with STARTTLS and a certificate for 0.0.0.0 from a CA the system
  store trusts (SSL_CERT_FILE) delivered over TLS; with a certificate
  for other names refused."""

import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

PREFIX = "mailfetch: acct (alice@127.0.0.1): "


def msgs3():
    return [h.sample_message(1, 900), h.sample_message(2, 5000), h.sample_message(3, 1200)]


def case(t, what, script=None, lmtp=False, unix=False, target=None, timeout=None, env=None, msgs=None,
         **smtp_kw):
    """Runs mailfetch once from a fresh fake IMAP server into a fresh fake
    SMTP (LMTP) server (at target, HOST:PORT, whose port is filled in);
    returns (imap, smtp, result)."""
    msgs = msgs or msgs3()
    imap = t.fake(tls="implicit", messages=msgs)
    if unix:
        smtp_kw["unix_path"] = t.path(t.unique("lmtp") + ".sock")
    smtp = t.fakesmtp(script=script, lmtp=lmtp, log_path=t.path(t.unique("fakesmtp") + ".log"), **smtp_kw)
    if target is None:
        target = smtp_kw["unix_path"] if unix else "127.0.0.1:%d"
    if "%d" in target:
        target = target % smtp.port
    keys = h.fake_keys(imap, deliver="lmtp" if lmtp else "smtp", recipient="alice@example.org")
    keys["lmtp" if lmtp else "smtp"] = target
    if timeout:
        keys["timeout"] = timeout
    r = t.run(["-v", "-v"], h.config({"acct": keys}), env=env)
    t.log("--- %s" % what)
    return imap, smtp, r


def errors(r):
    """stderr lines that are errors or warnings (not -v or trace lines)."""
    return [l for l in r.stderr.splitlines() if l.startswith(PREFIX)]


def check_data(t, smtp, msgs, what):
    """What the server accepted: our Received:, then the message, CRLF."""
    got = [h.strip_received(m.data)[1] for m in smtp.delivered()]
    t.messages_equal(got, [h.crlf(m) for m in msgs], what)


def test(t):
    # -- temporary refusals ------------------------------------------------
    for step, reply in (("MAIL", "451 4.3.0 try later"), ("RCPT", "452 4.2.2 over quota"),
                        ("DATA", "451 4.3.0 not now"), ("DOT", "451 4.3.0 queue full"),
                        ("MAIL", "421 4.3.2 shutting down")):
        imap, smtp, r = case(t, "%s at %s" % (reply[:3], step), {(step, 1): reply})
        what = "%s at %s of the first message" % (reply[:3], step)
        t.exit_code(r, h.EX_DELIVERY, what)
        t.eq(imap.seen(), [], "%s: nothing marked" % what)
        t.eq(smtp.ntrans, 1, "%s: nothing more tried this run" % what)
        t.check(any(reply in l and "not delivered" in l and
                    ("temporary refusal" in l or "closing" in l) for l in errors(r)),
                "%s: an error line with the reply and what it means" % what, r.stderr)
        t.check(any("delivering nothing more this run" in l for l in errors(r)), "%s: says it stops" % what)
        if step in ("MAIL", "RCPT", "DATA") and reply[:3] != "421":
            t.check("RSET" in smtp.verbs(), "%s: RSET after the refusal" % what, smtp.verbs())

    imap, smtp, r = case(t, "452 at RCPT of the second", {("RCPT", 2): "452 4.2.2 over quota"})
    t.exit_code(r, h.EX_DELIVERY, "452 at the second message")
    t.eq(imap.seen(), [1], "452 at the second message: the first delivered and \\Seen, the rest not")
    t.eq(smtp.ntrans, 2, "452 at the second message: the third not tried")

    # -- permanent refusals --------------------------------------------------
    for step, reply in (("MAIL", "550 5.7.1 sender rejected"), ("RCPT", "550 5.1.1 no such user"),
                        ("DATA", "554 5.6.0 no data for you"), ("DOT", "554 5.7.1 content rejected")):
        msgs = msgs3()
        imap, smtp, r = case(t, "%s at %s" % (reply[:3], step), {(step, 2): reply}, msgs=msgs)
        what = "%s at %s of the second message" % (reply[:3], step)
        t.exit_code(r, h.EX_DELIVERY, what)
        t.eq(imap.seen(), [1, 3], "%s: that one unseen, the others delivered and \\Seen" % what)
        check_data(t, smtp, [msgs[0], msgs[2]], "%s: the others arrived whole" % what)
        t.check(any(reply in l and "UID 2" in l and "stays on the IMAP server" in l for l in errors(r)),
                "%s: an error line for UID 2 with the reply" % what, r.stderr)
        t.check(not any("delivering nothing more" in l for l in errors(r)), "%s: the run goes on" % what)
        if step != "DOT":
            v = smtp.verbs()
            t.check("RSET" in v and v.index("RSET") < len(v) - 1 - v[::-1].index("MAIL"),
                    "%s: RSET before the next MAIL" % what, v)
        t.eq(smtp.connections, 1, "%s: one session" % what)
    imap, smtp, r = case(t, "550 RCPT", {"RCPT": "550 5.1.1 no such user"})
    t.check(any("check recipient in the config" in l for l in errors(r)), "550 at RCPT: check recipient",
            r.stderr)

    # -- lost, stalled, slow, broken ------------------------------------------
    imap, smtp, r = case(t, "drop after the data", {("DOT", 2): "DROP"})
    t.exit_code(r, h.EX_DELIVERY, "dropped after the data of the second")
    t.eq(imap.seen(), [1], "dropped after the data: the first \\Seen, the second and third not")
    t.check(any("server closed the connection" in l and "UID 2" in l for l in errors(r)),
            "dropped after the data: says so", r.stderr)
    t.eq(smtp.ntrans, 2, "dropped after the data: nothing more tried")

    imap, smtp, r = case(t, "drop after DATA", {("DATA", 1): "DROP"})
    t.exit_code(r, h.EX_DELIVERY, "dropped after DATA")
    t.eq(imap.seen(), [], "dropped after DATA: nothing marked")

    t0 = time.monotonic()
    imap, smtp, r = case(t, "stall after the data", {("DOT", 1): "STALL"}, timeout=2)
    took = time.monotonic() - t0
    t.exit_code(r, h.EX_DELIVERY, "stalled after the data")
    t.check(took < 15, "stalled: over within the timeout (%.1fs)" % took)
    t.eq(imap.seen(), [], "stalled: nothing marked")
    t.check(any("timed out" in l and "raise timeout" in l for l in errors(r)), "stalled: says it timed out",
            r.stderr)

    # A stop signal while the server stalls: the wait is cut to the grace
    # period, the message stays unmarked, exit 128+15.
    imap = t.fake(tls="implicit", messages=msgs3())
    smtp = t.fakesmtp(script={("DOT", 1): "STALL"})
    keys = h.fake_keys(imap, deliver="smtp", smtp="127.0.0.1:%d" % smtp.port, timeout=60)
    run = t.start([], h.config({"acct": keys}))
    h.wait_for(lambda: smtp.messages, timeout=20)
    t0 = time.monotonic()
    run.kill(h.signal.SIGTERM)
    r = run.wait()
    took = time.monotonic() - t0
    t.exit_code(r, 143, "SIGTERM while the SMTP server stalls")
    t.check(took < 12, "SIGTERM: gone within the grace period (%.1fs)" % took)
    t.eq(imap.seen(), [], "SIGTERM: nothing marked")
    t.check("had to stop before the server answered" in r.stderr and "may arrive twice" in r.stderr,
            "SIGTERM: says the message may come again", r.stderr)

    imap, smtp, r = case(t, "stalled greeting", {"GREETING": "STALL"}, timeout=2)
    t.exit_code(r, h.EX_DELIVERY, "stalled greeting")
    t.eq(imap.seen(), [], "stalled greeting: nothing marked")

    t0 = time.monotonic()
    imap, smtp, r = case(t, "dripping reply", {("DOT", 1): "DRIP 250 2.0.0 Ok: queued, one byte a second"},
                         timeout=2)
    took = time.monotonic() - t0
    t.exit_code(r, h.EX_DELIVERY, "a reply dripping a byte a second")
    t.check(took < 15, "dripping: cut by the low-speed rule (%.1fs)" % took)
    t.check(any("too slowly" in l for l in errors(r)), "dripping: says the server is too slow", r.stderr)
    t.eq(imap.seen(), [], "dripping: nothing marked")

    imap, smtp, r = case(t, "554 greeting", {"GREETING": "554 5.3.2 no service"})
    t.exit_code(r, h.EX_DELIVERY, "554 greeting")
    t.eq(imap.seen(), [], "554 greeting: nothing marked")
    t.check(any("answered the greeting with 554" in l for l in errors(r)), "554 greeting: says so", r.stderr)
    t.eq(smtp.ntrans, 0, "554 greeting: no MAIL")

    imap, smtp, r = case(t, "malformed reply", {("MAIL", 1): "hello there"})
    t.exit_code(r, h.EX_DELIVERY, "malformed reply")
    t.check(any("malformed reply to MAIL FROM" in l for l in errors(r)), "malformed reply: says so", r.stderr)
    t.eq(imap.seen(), [], "malformed reply: nothing marked")

    closed = h.free_port()
    imap, smtp, r = case(t, "nobody listening", target="127.0.0.1:%d" % closed)
    t.exit_code(r, h.EX_DELIVERY, "nobody listening")
    t.check(any("Connection refused" in l and "check smtp in the config" in l for l in errors(r)),
            "nobody listening: says what to check", r.stderr)
    t.eq(imap.seen(), [], "nobody listening: nothing marked")

    imap, smtp, r = case(t, "idle session ended", {("DOT", 1): "BYE 250 2.0.0 Ok"})
    t.exit_code(r, h.EX_OK, "the server ended the session after the first message")
    t.eq(imap.seen(), [1, 2, 3], "idle session ended: all delivered")
    t.eq(smtp.connections, 2, "idle session ended: a second session for the rest")

    if h.ipv6_loopback_works():
        imap, smtp, r = case(t, "IPv6", host="::1", target="[::1]:%d")
        t.exit_code(r, h.EX_OK, "smtp = [::1]:PORT")
        t.eq(imap.seen(), [1, 2, 3], "[::1]: all delivered (loopback: no STARTTLS)")

    # -- extensions and the data on the wire ------------------------------
    dots = h.sample_message(9, 700) + b".x\n..y\n.\n"
    msgs = [h.sample_message(1, 900), dots, h.sample_message(3, 1200)]
    imap, smtp, r = case(t, "pipelining", msgs=msgs)
    t.exit_code(r, h.EX_OK, "PIPELINING offered")
    t.eq([m.pipelined for m in smtp.messages], [True] * 3, "PIPELINING: MAIL, RCPT, DATA sent together")
    check_data(t, smtp, msgs, "PIPELINING: the data as sent")
    raw = smtp.messages[1].raw
    t.check(b"\r\n..x\r\n...y\r\n..\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b""),
            "dot-stuffing and CRLF on the wire", raw[-60:])
    t.check(all(m.mail_params[:1] == ["SIZE=%d" % (len(h.crlf(msgs[k])) + len(h.strip_received(
        m.data)[0]))] for k, m in enumerate(smtp.messages)), "SIZE= the size of what is sent",
            [m.mail_params for m in smtp.messages])

    imap, smtp, r = case(t, "no pipelining", caps=("8BITMIME",))
    t.exit_code(r, h.EX_OK, "no PIPELINING offered")
    t.eq(smtp.sync_violations, [], "no PIPELINING: every command waits for the reply before it")
    t.eq([m.pipelined for m in smtp.messages], [False] * 3, "no PIPELINING: one command at a time")
    t.check(all(m.mail_params == ["BODY=8BITMIME"] for m in smtp.messages), "no SIZE offered: no SIZE=",
            [m.mail_params for m in smtp.messages])

    imap, smtp, r = case(t, "SIZE too small", caps=("PIPELINING", "SIZE 3000"))
    t.exit_code(r, h.EX_DELIVERY, "SIZE 3000 and a 5000-byte message")
    t.eq(imap.seen(), [1, 3], "SIZE: the large one stays, the others are delivered")
    t.eq(smtp.ntrans, 2, "SIZE: the large one is not even offered")
    t.check(any("larger than" in l and "UID 2" in l for l in errors(r)), "SIZE: says so", r.stderr)

    # -- LMTP ------------------------------------------------------------------
    imap, smtp, r = case(t, "LMTP 452 after the data", {("DOT", 2): "452 4.2.2 mailbox full"}, lmtp=True,
                         unix=True)
    t.exit_code(r, h.EX_DELIVERY, "LMTP: 452 for the recipient after the data of the second")
    t.eq(imap.seen(), [1], "LMTP 452: the first \\Seen, the rest not")
    t.check("LMTP> LHLO " in r.stderr and "LMTP< 250" in r.stderr, "LMTP: LHLO, traced as LMTP")
    imap, smtp, r = case(t, "LMTP 552 after the data", {("DOT", 2): "552 5.2.2 over quota"}, lmtp=True,
                         unix=True)
    t.exit_code(r, h.EX_DELIVERY, "LMTP: 552 for the recipient after the data of the second")
    t.eq(imap.seen(), [1, 3], "LMTP 552: that one unseen, the others \\Seen")

    imap = t.fake(tls="implicit", messages=msgs3())
    missing = t.path("no-such-dir", "lmtp")
    keys = h.fake_keys(imap, deliver="lmtp", lmtp=missing)
    r = t.run([], h.config({"acct": keys}))
    t.exit_code(r, h.EX_DELIVERY, "LMTP socket missing")
    t.eq(len(r.stderr.splitlines()), 1, "LMTP socket missing: one line", r.stderr)
    t.check(r.stderr.startswith(PREFIX + "LMTP socket %s" % missing) and "check lmtp in the config" in r.stderr,
            "LMTP socket missing: names the account, the socket and what to do", r.stderr)
    t.check(not imap.saw("FETCH"), "LMTP socket missing: nothing fetched")
    t.eq(imap.seen(), [], "LMTP socket missing: nothing marked")

    # -- a server that is not on a loopback address ----------------------------
    # 0.0.0.0 is not a loopback address, but Linux connects to this host
    # for it: the fake server on 127.0.0.1 answers.
    imap, smtp, r = case(t, "0.0.0.0 without STARTTLS", target="0.0.0.0:%d")
    t.exit_code(r, h.EX_DELIVERY, "0.0.0.0 without STARTTLS")
    t.check(any("does not offer STARTTLS" in l and "not on a loopback address" in l for l in errors(r)),
            "no STARTTLS: refused, says why", r.stderr)
    t.eq(smtp.ntrans, 0, "no STARTTLS: no MAIL sent in the clear")
    t.eq(imap.seen(), [], "no STARTTLS: nothing marked")

    # The server's certificate is checked against the system's CAs (here
    # the test CA, through SSL_CERT_FILE) and the name as configured.
    cert = h.make_leaf(t.certs, "anyaddr", "0.0.0.0", "IP:0.0.0.0")
    env = {"SSL_CERT_FILE": t.certs.ca, "SSL_CERT_DIR": t.path("no-such-dir")}
    imap, smtp, r = case(t, "0.0.0.0 with STARTTLS", target="0.0.0.0:%d", env=env, starttls=True, cert=cert)
    t.exit_code(r, h.EX_OK, "0.0.0.0 with STARTTLS and a certificate for it")
    kinds = [k for (_c, k, _d) in smtp.events]
    t.check("tls-ok" in kinds, "STARTTLS: the handshake", smtp.log_tail())
    t.eq(len(smtp.delivered()), 3, "STARTTLS: all delivered")
    t.eq(smtp.verbs()[:4], ["EHLO", "STARTTLS", "EHLO", "MAIL"], "STARTTLS first, EHLO again after it")
    t.eq(imap.seen(), [1, 2, 3], "STARTTLS: all \\Seen")
    t.check("SMTP: " not in r.stderr and "TLS: certificate verified for 0.0.0.0" in r.stderr,
            "STARTTLS: the trace shows the verification", r.stderr[-2500:])

    imap, smtp, r = case(t, "0.0.0.0 with a certificate for other names", target="0.0.0.0:%d", env=env,
                         starttls=True, cert="good")
    t.exit_code(r, h.EX_DELIVERY, "STARTTLS with a certificate not for 0.0.0.0")
    t.eq(smtp.ntrans, 0, "wrong certificate: no MAIL")
    t.check(any("STARTTLS" in l and "certificate" in l.lower() for l in errors(r)),
            "wrong certificate: says so", r.stderr)
    t.eq(imap.seen(), [], "wrong certificate: nothing marked")


h.main(test)
