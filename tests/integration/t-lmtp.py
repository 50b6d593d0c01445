#!/usr/bin/env python3
"""deliver = lmtp into Dovecot's own LMTP service (dovecot-lmtpd), over its
unix socket and over TCP on 127.0.0.1: every message of alice's INBOX
arrives in bob's INBOX (read back over IMAP) byte for byte, after the
Return-Path Dovecot prepends (the envelope sender: the message's own
Return-Path, <> without one) and the Received: header mailfetch prepends
(naming the IMAP server and the recipient); the source messages are
\\Seen afterwards.  One LMTP session carries every message (one greeting,
one QUIT), MAIL, RCPT and BDAT go out together with the data (Dovecot
offers CHUNKING), and -v -v shows the session with LMTP> / LMTP< and
each message's data as its size, never its lines.  A second run finds nothing new.  With deliver_sessions = 2
two sessions carry the messages, each delivered once, whole.  The
baseline binary does not know deliver = lmtp (exit 5)."""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def corpus(tag):
    """Messages that test the data path: dots at line starts, no
    Return-Path, an empty one, a large one (spooled to a file), 8-bit."""
    msgs = h.sample_messages(5)
    msgs.append(h.sample_message(50, 2000, marker=tag + "-dots") +
                b".leading dot\n..two dots\n.\n. space after a dot\nend\n")
    no_rp = h.sample_message(51, 1200, marker=tag + "-no-return-path")
    msgs.append(b"\n".join(l for l in no_rp.split(b"\n") if not l.startswith(b"Return-Path:")))
    empty_rp = h.sample_message(52, 900, marker=tag + "-null-sender")
    msgs.append(empty_rp.replace(b"Return-Path: <sender52@example.org>", b"Return-Path: <>", 1))
    msgs.append(h.sample_message(53, 300 * 1024, marker=tag + "-big"))
    return msgs


def sender_of(m):
    mm = re.search(rb"^Return-Path: <([^>]*)>", m, re.M)
    return mm.group(1) if mm else b""


def check_delivered(t, dv, uids_before, msgs, what, rcpt="bob"):
    """bob's new messages: Dovecot's Return-Path, our Received:, then the
    message itself (CRLF, as the IMAP server keeps it)."""
    new = [u for u in dv.uids(rcpt) if u not in uids_before]
    got = [dv.fetch(rcpt, "INBOX", u) for u in new]
    t.eq(len(got), len(msgs), "%s: %d messages in %s's INBOX" % (what, len(msgs), rcpt))
    bodies, rps, recs = [], [], []
    for g in got:
        rp, rest = h.strip_received(g)
        rec, body = h.strip_received(rest)
        rps.append(rp)
        recs.append(rec)
        bodies.append(body)
    t.messages_equal(bodies, [h.crlf(m) for m in msgs], "%s: byte-exact after the two prepended headers" % what)
    t.eq(rps, [b"Return-Path: <%s>\r\n" % sender_of(m) for m in msgs][: len(rps)],
         "%s: envelope sender = the message's Return-Path, <> without one" % what)
    bad = [r for r in recs if not re.match(
        rb"Received: from 127\.0\.0\.1\r\n\tby \S+ with IMAP \(mailfetch [^)]*\)\r\n\tfor <%s>; "
        rb"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n$" % rcpt.encode(), r)]
    t.check(not bad and recs, "%s: one Received: header naming the IMAP server and the recipient" % what,
            bad[:2])


def test(t):
    dv = t.dovecot(lmtp=True)
    t.require(os.path.exists(dv.lmtp_socket), "Dovecot's LMTP socket exists")

    # 1. Over the unix socket, with the protocol trace.
    msgs = corpus("unix")
    uids = dv.append_many("alice", "INBOX", msgs)
    keys = h.dovecot_keys(dv, deliver="lmtp", lmtp=dv.lmtp_socket, recipient="bob")
    cfg = h.config({"acct": keys})
    r = t.run(["-v", "-v"], cfg)
    t.exit_code(r, h.EX_OK, "unix socket")
    check_delivered(t, dv, [], msgs, "unix socket")
    fl = dv.flags("alice")
    t.check(all("\\Seen" in fl[u] for u in uids), "unix socket: every source message \\Seen")
    err = r.stderr
    t.eq(err.count("LMTP< 220 "), 1, "one LMTP session for %d messages (one greeting)" % len(msgs))
    t.eq(err.count("LMTP> LHLO "), 1, "one LHLO")
    t.eq(err.count("LMTP> QUIT"), 1, "QUIT at the end")
    t.check("LMTP> MAIL FROM:<sender1@example.org>" in err, "the trace shows MAIL FROM", err[-3000:])
    t.check("LMTP> RCPT TO:<bob>" in err, "the trace shows RCPT TO")
    t.check(re.search(r"LMTP> \{\d+ bytes\}", err) is not None, "message data traced as its size")
    t.check("this is message number" not in err and "padding line" not in err,
            "no line of any message in the trace")
    # Dovecot offers CHUNKING: MAIL, RCPT and BDAT go out with the data,
    # before the first reply, and BDAT's size is the data's.
    seq = re.findall(r"LMTP([<>]) (MAIL|RCPT|DATA|BDAT|250|354)", err)
    first = seq[seq.index((">", "MAIL")):][:4]
    t.eq(first, [(">", "MAIL"), (">", "RCPT"), (">", "BDAT"), ("<", "250")],
         "MAIL, RCPT and BDAT go out before the first reply (RFC 2033 pipelining, RFC 3030 CHUNKING)")
    t.check("LMTP> DATA" not in err, "no DATA when the server offers CHUNKING")
    pairs = re.findall(r"LMTP> BDAT (\d+) LAST\n(?:.*\n)*?.*LMTP> \{(\d+) bytes\}", err)
    t.eq(len(pairs), len(msgs), "one BDAT ... LAST per message")
    t.check(pairs and all(a == b for a, b in pairs), "each BDAT announces exactly the bytes sent", pairs[:3])

    # 2. A second run: nothing new, nothing delivered again.
    before = dv.uids("bob")
    r = t.run([], cfg)
    t.exit_code(r, h.EX_NOMAIL, "second run")
    t.eq(dv.uids("bob"), before, "second run delivers nothing again")

    # 3. Over TCP on 127.0.0.1 (loopback: no STARTTLS needed).
    msgs2 = corpus("tcp")
    uids2 = dv.append_many("alice", "INBOX", msgs2)
    cfg2 = h.config({"acct": dict(keys, lmtp="127.0.0.1:%d" % dv.lmtp_port)})
    r = t.run(["-v", "-v"], cfg2)
    t.exit_code(r, h.EX_OK, "TCP")
    check_delivered(t, dv, before, msgs2, "TCP")
    fl = dv.flags("alice")
    t.check(all("\\Seen" in fl[u] for u in uids2), "TCP: every source message \\Seen")
    t.check("LMTP> STARTTLS" not in r.stderr, "TCP to 127.0.0.1: no STARTTLS (loopback)")

    # 4. A recipient Dovecot does not know: refused (5xx), each message
    # stays unseen, exit 10, and the error says what to do.
    uids3 = dv.append_many("alice", "INBOX", h.sample_messages(2))
    cfg3 = h.config({"acct": dict(keys, recipient="nosuchuser")})
    r = t.run([], cfg3)
    t.exit_code(r, h.EX_DELIVERY, "unknown recipient")
    fl = dv.flags("alice")
    t.check(all("\\Seen" not in fl[u] for u in uids3), "unknown recipient: messages stay unseen")
    t.check("RCPT TO with 550" in r.stderr and "check recipient in the config" in r.stderr
            and "mailfetch: acct (alice@127.0.0.1): " in r.stderr,
            "unknown recipient: the error names the account, the reply and what to do", r.stderr)

    # 5. deliver_sessions = 2: two LMTP sessions (two Dovecot lmtp
    # processes) at once; each message once, whole, the order aside.
    before = dv.uids("bob")
    msgs5 = [h.sample_message(90 + k, 1000 + 700 * k, marker="two-%d" % k) for k in range(12)]
    uids5 = dv.append_many("alice", "INBOX", msgs5)
    r = t.run(["-v", "-v"], h.config({"acct": dict(keys, deliver_sessions="2")}))
    t.exit_code(r, h.EX_OK, "deliver_sessions = 2")
    new = [u for u in dv.uids("bob") if u not in before]
    got = sorted(h.strip_received(h.strip_received(dv.fetch("bob", "INBOX", u))[1])[1] for u in new)
    # with the two that step 4 left unseen
    want = sorted(h.crlf(m) for m in msgs5 + h.sample_messages(2))
    t.messages_equal(got, want, "two sessions: every message once, byte-exact")
    t.eq(r.stderr.count("LMTP> LHLO "), 2, "two sessions: two LHLO")
    fl = dv.flags("alice")
    t.check(all("\\Seen" in fl[u] for u in uids5), "two sessions: every source message \\Seen")

    # 6. The baseline binary does not know deliver = lmtp.
    base = os.environ.get("MAILFETCH_BASELINE")
    if base and os.access(base, os.X_OK):
        r = t.run([], cfg, binary=base)
        t.exit_code(r, h.EX_USAGE, "baseline binary: deliver = lmtp unknown")


h.main(test)
