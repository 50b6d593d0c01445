#!/usr/bin/env python3
"""deliver = smtp into a real Exim (Debian's default MTA) that the harness
runs on a free 127.0.0.1 port with a config of its own, delivering into a
Maildir: every message of the IMAP INBOX arrives byte for byte after the
Received: header mailfetch prepends (naming the IMAP server and the
recipient), with the envelope Exim logged: MAIL FROM from the message's
Return-Path, <> without one (and for Return-Path: <>), an 8-bit sender
with SMTPUTF8; RCPT TO the recipient key, a bare local part as
LOCAL@localhost, and by default the user running mailfetch.  The source
messages are \\Seen afterwards.  One SMTP session for all of them, EHLO,
SIZE, BODY=8BITMIME and SMTPUTF8 as Exim offers them, pipelined (Exim
enforces the order of a non-pipelining client), with BDAT (Exim offers
CHUNKING), data traced as its size.  With CHUNKING turned off in Exim the
same corpus goes through DATA, dot-stuffed, byte-exact.  Past Exim's
limit of messages per connection (a 421 to MAIL), the next message goes
through a new session.
The baseline binary does not know deliver = smtp (exit 5)."""

import os
import pwd
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def corpus(tag):
    msgs = h.sample_messages(5)
    msgs.append(h.sample_message(60, 2000, marker=tag + "-dots") +
                b".leading dot\n..two dots\n.\n. space after a dot\nend\n")
    no_rp = h.sample_message(61, 1200, marker=tag + "-no-return-path")
    msgs.append(b"\n".join(l for l in no_rp.split(b"\n") if not l.startswith(b"Return-Path:")))
    msgs.append(h.sample_message(62, 900, marker=tag + "-null").replace(
        b"Return-Path: <sender62@example.org>", b"Return-Path: <>", 1))
    # 8-bit in the header and in the sender: SMTPUTF8.
    msgs.append(h.sample_message(63, 900, marker=tag + "-utf8", subject="Gr\u00fc\u00dfe",
                                 sender="j\u00f6rg@example.org"))
    msgs.append(h.sample_message(64, 300 * 1024, marker=tag + "-big"))
    return msgs


def sender_of(m):
    mm = re.search(rb"^Return-Path: <([^>]*)>", m, re.M)
    return mm.group(1).decode("utf-8") if mm else ""


def marker(m):
    mm = re.search(rb"^Message-ID: (.*)$", m, re.M)
    return mm.group(1) if mm else b""


def test(t):
    dv = t.dovecot()
    ex = t.exim()
    msgs = corpus("smtp")
    uids = dv.append_many("alice", "INBOX", msgs)
    keys = h.dovecot_keys(dv, deliver="smtp", smtp="127.0.0.1:%d" % ex.port, recipient="bob")
    cfg = h.config({"acct": keys})

    base = os.environ.get("MAILFETCH_BASELINE")
    if base and os.access(base, os.X_OK):
        r = t.run([], cfg, binary=base)
        t.exit_code(r, h.EX_USAGE, "baseline binary: deliver = smtp unknown")

    r = t.run(["-v", "-v"], cfg)
    t.exit_code(r, h.EX_OK, "deliver = smtp into Exim")
    got = ex.wait_messages(len(msgs))
    recs, bodies = [], []
    for g in got:
        rec, body = h.strip_received(g)
        recs.append(rec)
        bodies.append(body)
    t.messages_equal(sorted(bodies, key=marker), sorted(msgs, key=marker),
                     "Exim's Maildir: byte-exact after our Received: header")
    bad = [x for x in recs if not re.match(
        rb"Received: from 127\.0\.0\.1\n\tby \S+ with IMAP \(mailfetch [^)]*\)\n\tfor <bob@localhost>; "
        rb"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n$", x)]
    t.check(recs and not bad, "one Received: header naming the IMAP server and the recipient", bad[:2])
    env = ex.envelopes()
    t.eq([s for s, _r in env], [sender_of(m) for m in msgs],
         "MAIL FROM: the Return-Path, <> without one or for <>, an 8-bit one as it is", ex.log_tail())
    t.eq(set(a for _s, rc in env for a in rc), {"bob@localhost"}, "RCPT TO: bob@localhost for a bare 'bob'")
    fl = dv.flags("alice")
    t.check(all("\\Seen" in fl[u] for u in uids), "every source message \\Seen")

    err = r.stderr
    t.eq(err.count("SMTP< 220 "), 1, "one SMTP session for %d messages" % len(msgs))
    t.eq(err.count("SMTP> EHLO "), 1, "one EHLO")
    t.eq(err.count("SMTP> QUIT"), 1, "QUIT at the end")
    t.check(re.search(r"SMTP> MAIL FROM:<sender1@example\.org> SIZE=\d+ BODY=8BITMIME\n", err) is not None,
            "MAIL FROM with SIZE and BODY=8BITMIME (Exim offers both), no SMTPUTF8 for ASCII", err[-3000:])
    t.check(re.search("SMTP> MAIL FROM:<j\u00f6rg@example\\.org>"
                      r" SIZE=\d+ BODY=8BITMIME SMTPUTF8\n", err)
            is not None, "SMTPUTF8 for the message with an 8-bit sender and header")
    t.check(re.search(r"SMTP> \{\d+ bytes\}", err) is not None and "padding line" not in err,
            "message data traced as its size, not its lines")
    seq = re.findall(r"SMTP([<>]) (MAIL|RCPT|DATA|BDAT|250|354)", err)
    first = seq[seq.index((">", "MAIL")):][:4]
    t.eq(first, [(">", "MAIL"), (">", "RCPT"), (">", "BDAT"), ("<", "250")],
         "MAIL, RCPT and BDAT go out before the first reply (Exim offers PIPELINING and CHUNKING)")
    t.check("SMTP> DATA" not in err, "no DATA when Exim offers CHUNKING")
    t.check("SMTP> STARTTLS" not in err, "127.0.0.1 is loopback: no STARTTLS")

    # The default recipient: the user running mailfetch, @localhost.
    more = [h.sample_message(70, 1500), h.sample_message(71, 2500)]
    uids2 = dv.append_many("alice", "INBOX", more)
    cfg2 = h.config({"acct": {k: v for k, v in keys.items() if k != "recipient"}})
    r = t.run([], cfg2)
    t.exit_code(r, h.EX_OK, "default recipient")
    ex.wait_messages(len(msgs) + len(more))
    me = pwd.getpwuid(os.getuid()).pw_name
    t.eq([rc for _s, rc in ex.envelopes()[len(msgs):]], [["%s@localhost" % me]] * len(more),
         "default recipient: %s@localhost" % me)
    fl = dv.flags("alice")
    t.check(all("\\Seen" in fl[u] for u in uids2), "default recipient: \\Seen")

    # Nothing new: no SMTP session at all.
    r = t.run(["-v", "-v"], cfg)
    t.exit_code(r, h.EX_NOMAIL, "no new mail")
    t.check("SMTP" not in r.stderr, "no new mail: no SMTP session opened")


    # Without CHUNKING: DATA, dot-stuffed, the same corpus byte-exact.
    exd = t.exim(extra_conf="chunking_advertise_hosts =")
    msgs4 = corpus("data")
    dv.append_many("alice", "INBOX", msgs4)
    r = t.run(["-v", "-v"], h.config({"acct": dict(keys, smtp="127.0.0.1:%d" % exd.port)}))
    t.exit_code(r, h.EX_OK, "Exim without CHUNKING")
    got = [h.strip_received(g)[1] for g in exd.wait_messages(len(msgs4))]
    t.messages_equal(sorted(got, key=marker), sorted(msgs4, key=marker), "without CHUNKING: byte-exact")
    seq = re.findall(r"SMTP([<>]) (MAIL|RCPT|DATA|BDAT|250|354)", r.stderr)
    first = seq[seq.index((">", "MAIL")):][:4]
    t.eq(first, [(">", "MAIL"), (">", "RCPT"), (">", "DATA"), ("<", "250")],
         "without CHUNKING: MAIL, RCPT and DATA go out before the first reply")
    t.check("SMTP> BDAT" not in r.stderr, "without CHUNKING: no BDAT")

    # Exim's smtp_accept_max_per_connection (1000 by default): past it,
    # MAIL gets 421; the message goes through a new session.
    ex3 = t.exim(extra_conf="smtp_accept_max_per_connection = 3")
    more = [h.sample_message(80 + k, 1000 + 100 * k) for k in range(7)]
    uids3 = dv.append_many("alice", "INBOX", more)
    r = t.run(["-v", "-v"], h.config({"acct": dict(keys, smtp="127.0.0.1:%d" % ex3.port)}))
    t.exit_code(r, h.EX_OK, "Exim's limit of 3 messages per connection")
    got = ex3.wait_messages(len(more))
    t.messages_equal(sorted(h.strip_received(g)[1] for g in got), sorted(more),
                     "limit per connection: all 7 delivered")
    t.eq(r.stderr.count("SMTP< 220 "), 3, "limit per connection: three sessions")
    fl = dv.flags("alice")
    t.check(all("\\Seen" in fl[u] for u in uids3), "limit per connection: all \\Seen")


h.main(test)
