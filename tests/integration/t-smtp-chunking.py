#!/usr/bin/env python3
"""deliver = smtp and lmtp to a fake server that offers CHUNKING (RFC
3030) with PIPELINING: each message goes out as MAIL, RCPT and BDAT n
LAST in one write with its data, then the replies are read.

- On the wire: no DATA, no dot-stuffing, every line ended by CRLF (a
  bare LF or CR from the IMAP server becomes one, a last line without an
  end gets one), and n exactly the bytes that follow, for small
  messages, a 300 KiB one and odd line ends; SIZE= that same n.  The
  three commands all arrive before any reply (one write).
- 4xx at MAIL, RCPT or BDAT (after the data), and 421: temporary, nothing
  marked, nothing more this run, RSET after a refusal.
- 5xx at MAIL, RCPT or BDAT of the second message: that one unseen, the
  other two delivered whole and \\Seen, one session.
- The connection dropped after the data, or before any reply (not sent
  again: the server may have it), a server that stalls after it (bounded
  by timeout): unmarked, exit 10.
- A server that ends the idle session after a message, and one that
  answers MAIL with 421 on a reused session: a new session, all
  delivered.
- LMTP: one reply per accepted recipient after BDAT (452: temporary,
  552: that message only); a recipient refused: one reply to BDAT, the
  message unmarked, the session goes on.
- A message's replies are read when the next is ready to go: a
  temporary refusal learnt then means the next is not tried (and not
  reported), a permanent one does not.  SIGTERM while the server stalls
  with a message in flight: gone within the grace period, unmarked.
  SIGKILL while the IMAP server is slow to send the next message: the
  message before was journaled when the wait began, and comes only once.
- deliver_sessions = 2: the messages alternate between two sessions,
  all delivered once, whole; a temporary refusal on one session stops
  the run but the message in flight on the other still counts."""

import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

PREFIX = "mailfetch: acct (alice@127.0.0.1): "
CAPS = ("PIPELINING", "CHUNKING", "SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES")


def msgs3():
    return [h.sample_message(1, 900), h.sample_message(2, 5000), h.sample_message(3, 1200)]


def case(t, what, script=None, lmtp=False, timeout=None, msgs=None, raw=None, rcpt="alice@example.org",
         caps=CAPS, sessions=None):
    """One run from a fresh fake IMAP server (messages msgs; raw: {index:
    bytes} served exactly as given) into a fresh fake server offering
    CHUNKING; returns (imap, smtp, result)."""
    msgs = msgs or msgs3()
    imap = t.fake(tls="implicit", messages=msgs)
    for k, data in (raw or {}).items():
        imap.find_folder("INBOX").messages[k].data = data
    kw = {"unix_path": t.path(t.unique("lmtp") + ".sock")} if lmtp else {}
    smtp = t.fakesmtp(script=script, lmtp=lmtp, caps=caps, log_path=t.path(t.unique("fakesmtp") + ".log"), **kw)
    keys = h.fake_keys(imap, deliver="lmtp" if lmtp else "smtp", recipient=rcpt)
    keys["lmtp" if lmtp else "smtp"] = kw["unix_path"] if lmtp else "127.0.0.1:%d" % smtp.port
    if timeout:
        keys["timeout"] = timeout
    if sessions:
        keys["deliver_sessions"] = sessions
    r = t.run(["-v", "-v"], h.config({"acct": keys}))
    t.log("--- %s" % what)
    return imap, smtp, r


def errors(r):
    return [l for l in r.stderr.splitlines() if l.startswith(PREFIX)]


def check_data(t, smtp, want, what):
    """What the server accepted, after our Received: header."""
    got = [h.strip_received(m.data)[1] for m in smtp.delivered()]
    t.messages_equal(got, want, what)


def test(t):
    # -- the data on the wire ----------------------------------------------
    dots = h.sample_message(9, 700) + b".x\n..y\n.\n"
    big = h.sample_message(10, 300 * 1024)
    odd = h.crlf(h.sample_message(11, 800)) + b"bare LF\nbare CR\rCR CR\r\rend without a line end"
    crend = h.crlf(h.sample_message(12, 600)) + b"ends in a bare CR\r"
    msgs = [h.sample_message(1, 900), dots, big, odd, crend]
    imap, smtp, r = case(t, "the data", msgs=msgs, raw={3: odd, 4: crend})
    t.exit_code(r, h.EX_OK, "CHUNKING: five messages")
    t.eq(imap.seen(), [1, 2, 3, 4, 5], "CHUNKING: all \\Seen")
    fixed = h.crlf(h.sample_message(11, 800)) + b"bare LF\r\nbare CR\r\nCR CR\r\n\r\nend without a line end\r\n"
    want = [h.crlf(msgs[0]), h.crlf(dots), h.crlf(big), fixed,
            h.crlf(h.sample_message(12, 600)) + b"ends in a bare CR\r\n"]
    check_data(t, smtp, want, "CHUNKING: byte-exact, CRLF everywhere, no dot-stuffing")
    t.check(b"\r\n.x\r\n..y\r\n.\r\n" in smtp.messages[1].raw, "CHUNKING: dots as they are",
            smtp.messages[1].raw[-40:])
    t.eq([len(m.chunks) for m in smtp.messages], [1] * 5, "CHUNKING: one BDAT ... LAST per message")
    sizes = [len(h.strip_received(m.data)[0]) + len(w) for m, w in zip(smtp.messages, want)]
    t.eq([m.chunks[0] for m in smtp.messages], sizes, "CHUNKING: BDAT's size is our header's and the message's")
    t.eq([m.mail_params[:1] for m in smtp.messages], [["SIZE=%d" % n] for n in sizes],
         "CHUNKING: SIZE= exactly what BDAT carries")
    t.eq([m.pipelined for m in smtp.messages], [True] * 5, "CHUNKING: MAIL, RCPT and BDAT before any reply")
    t.check("DATA" not in smtp.verbs(), "CHUNKING: no DATA", smtp.verbs())
    t.check(re.search(r"SMTP> BDAT \d+ LAST\n", r.stderr) and re.search(r"SMTP> \{\d+ bytes\}", r.stderr)
            and "bare LF" not in r.stderr, "CHUNKING: -v -v shows BDAT and the data as its size", r.stderr[-2000:])

    # Without PIPELINING, CHUNKING alone is not used: DATA as before.
    imap, smtp, r = case(t, "chunking without pipelining", caps=("CHUNKING", "8BITMIME"))
    t.exit_code(r, h.EX_OK, "CHUNKING without PIPELINING")
    t.check("BDAT" not in smtp.verbs() and smtp.verbs().count("DATA") == 3, "no PIPELINING: DATA",
            smtp.verbs())
    t.eq(smtp.sync_violations, [], "no PIPELINING: one command at a time")

    # -- temporary refusals ------------------------------------------------
    for step, reply in (("MAIL", "451 4.3.0 try later"), ("RCPT", "452 4.2.2 over quota"),
                        ("DOT", "451 4.3.0 queue full"), ("MAIL", "421 4.3.2 shutting down")):
        imap, smtp, r = case(t, "%s at %s" % (reply[:3], step), {(step, 1): reply})
        what = "CHUNKING: %s at %s of the first message" % (reply[:3], "BDAT" if step == "DOT" else step)
        t.exit_code(r, h.EX_DELIVERY, what)
        t.eq(imap.seen(), [], "%s: nothing marked" % what)
        t.eq(smtp.ntrans, 1, "%s: nothing more tried this run" % what)
        t.check(any(reply in l and "not delivered" in l and ("temporary refusal" in l or "closing" in l)
                    for l in errors(r)), "%s: an error line with the reply and what it means" % what, r.stderr)
        if reply[:3] != "421":
            t.check("RSET" in smtp.verbs(), "%s: RSET after the refusal" % what, smtp.verbs())

    # -- permanent refusals --------------------------------------------------
    for step, reply in (("MAIL", "550 5.7.1 sender rejected"), ("RCPT", "550 5.1.1 no such user"),
                        ("DOT", "554 5.7.1 content rejected")):
        msgs = msgs3()
        imap, smtp, r = case(t, "%s at %s" % (reply[:3], step), {(step, 2): reply}, msgs=msgs)
        what = "CHUNKING: %s at %s of the second message" % (reply[:3], "BDAT" if step == "DOT" else step)
        t.exit_code(r, h.EX_DELIVERY, what)
        t.eq(imap.seen(), [1, 3], "%s: that one unseen, the others delivered and \\Seen" % what)
        check_data(t, smtp, [h.crlf(msgs[0]), h.crlf(msgs[2])], "%s: the others arrived whole" % what)
        t.check(any(reply in l and "UID 2" in l and "stays on the IMAP server" in l for l in errors(r)),
                "%s: an error line for UID 2 with the reply" % what, r.stderr)
        t.eq(smtp.connections, 1, "%s: one session" % what)

    # -- lost, stalled ------------------------------------------------------
    imap, smtp, r = case(t, "drop after the data", {("DOT", 2): "DROP"})
    t.exit_code(r, h.EX_DELIVERY, "CHUNKING: dropped after the data of the second")
    t.eq(imap.seen(), [1], "CHUNKING: dropped: the first \\Seen, the others not")
    t.check(any("UID 2" in l and "at BDAT" in l for l in errors(r)), "CHUNKING: dropped: says where", r.stderr)

    # Closed before any reply, the data already sent: the server may have
    # read it all (replies held until then are allowed), so it is not
    # sent again on a new session; it stays unmarked, with a warning.
    imap, smtp, r = case(t, "drop before any reply", {("MAIL", 2): "DROP"})
    t.exit_code(r, h.EX_DELIVERY, "CHUNKING: closed before any reply to the second message")
    t.eq(imap.seen(), [1], "CHUNKING: closed before any reply: the second not marked, nothing after it")
    t.eq(smtp.connections, 1, "CHUNKING: closed before any reply: not sent again on a new session")
    t.check(any("UID 2" in l and "may arrive twice" in l for l in errors(r)),
            "CHUNKING: closed before any reply: says it may arrive twice", r.stderr)

    t0 = time.monotonic()
    imap, smtp, r = case(t, "stall after the data", {("DOT", 1): "STALL"}, timeout=2)
    took = time.monotonic() - t0
    t.exit_code(r, h.EX_DELIVERY, "CHUNKING: stalled after the data")
    t.check(took < 15, "CHUNKING: stalled: over within the timeout (%.1fs)" % took)
    t.eq(imap.seen(), [], "CHUNKING: stalled: nothing marked")

    # -- sessions the server ends -------------------------------------------
    imap, smtp, r = case(t, "idle session ended", {("DOT", 1): "BYE 250 2.0.0 Ok"})
    t.exit_code(r, h.EX_OK, "CHUNKING: the server ended the session after the first message")
    t.eq(imap.seen(), [1, 2, 3], "CHUNKING: idle session ended: all delivered")
    t.eq(smtp.connections, 2, "CHUNKING: idle session ended: a second session")

    msgs = msgs3()
    imap, smtp, r = case(t, "421 at MAIL of a reused session", {("MAIL", 2): "BYE 421 4.7.0 too many messages"},
                         msgs=msgs)
    t.exit_code(r, h.EX_OK, "CHUNKING: 421 to MAIL on a reused session")
    t.eq(imap.seen(), [1, 2, 3], "CHUNKING: 421 on a reused session: all delivered")
    t.eq(smtp.connections, 2, "CHUNKING: 421 on a reused session: the message again in a new session")
    check_data(t, smtp, [h.crlf(m) for m in msgs], "CHUNKING: 421 on a reused session: each once, whole")

    # -- LMTP ---------------------------------------------------------------
    imap, smtp, r = case(t, "LMTP 452 after BDAT", {("DOT", 2): "452 4.2.2 mailbox full"}, lmtp=True)
    t.exit_code(r, h.EX_DELIVERY, "LMTP CHUNKING: 452 for the recipient after the data of the second")
    t.eq(imap.seen(), [1], "LMTP CHUNKING 452: the first \\Seen, the rest not")
    t.check("LMTP> BDAT " in r.stderr, "LMTP CHUNKING: BDAT traced as LMTP", r.stderr[-2000:])
    imap, smtp, r = case(t, "LMTP 552 after BDAT", {("DOT", 2): "552 5.2.2 over quota"}, lmtp=True)
    t.exit_code(r, h.EX_DELIVERY, "LMTP CHUNKING: 552 for the recipient after the data of the second")
    t.eq(imap.seen(), [1, 3], "LMTP CHUNKING 552: that one unseen, the others \\Seen")
    imap, smtp, r = case(t, "LMTP recipient refused", {("RCPT", 1): "550 5.1.1 no such user"}, lmtp=True)
    t.exit_code(r, h.EX_DELIVERY, "LMTP CHUNKING: the first message's recipient refused")
    t.eq(imap.seen(), [2, 3], "LMTP CHUNKING: no recipient: that one unseen, the session goes on")
    t.eq(smtp.connections, 1, "LMTP CHUNKING: no recipient: one session")

    # -- signals --------------------------------------------------------------
    imap = t.fake(tls="implicit", messages=msgs3())
    smtp = t.fakesmtp(caps=CAPS, script={("DOT", 1): "STALL"})
    keys = h.fake_keys(imap, deliver="smtp", smtp="127.0.0.1:%d" % smtp.port, timeout=60)
    run = t.start([], h.config({"acct": keys}))
    h.wait_for(lambda: smtp.ntrans >= 1 and any(k == "chunk" for _c, k, _d in list(smtp.events)), timeout=20)
    t0 = time.monotonic()
    run.kill(h.signal.SIGTERM)
    r = run.wait()
    took = time.monotonic() - t0
    t.exit_code(r, 143, "CHUNKING: SIGTERM with a message in flight")
    t.check(took < 12, "CHUNKING: SIGTERM: gone within the grace period (%.1fs)" % took)
    t.eq(imap.seen(), [], "CHUNKING: SIGTERM: nothing marked")
    t.check("may arrive twice" in r.stderr, "CHUNKING: SIGTERM: says the message may come again", r.stderr)

    # A kill while the IMAP server is slow to send the next message: the
    # first one's replies were read when the wait began, so it is
    # journaled and the next run does not deliver it again.
    msgs = msgs3()
    slowed = []

    def slow(_sess, m):
        if m.uid == 2 and not slowed:
            slowed.append(1)
            time.sleep(6)
    imap = t.fake(tls="implicit", messages=msgs, on_fetch_message=slow)
    smtp = t.fakesmtp(caps=CAPS)
    keys = h.fake_keys(imap, deliver="smtp", smtp="127.0.0.1:%d" % smtp.port, recipient="alice@example.org")
    cfg = h.config({"acct": keys})
    run = t.start([], cfg)
    h.wait_for(lambda: smtp.delivered() and slowed, timeout=20)
    time.sleep(1.5)
    run.kill(h.signal.SIGKILL)
    run.wait()
    r = t.run([], cfg)
    t.exit_code(r, h.EX_OK, "CHUNKING: the run after a kill during a slow IMAP server")
    got = sorted(h.strip_received(m.data)[1] for m in smtp.delivered())
    t.messages_equal(got, sorted(h.crlf(m) for m in msgs), "CHUNKING: killed while the IMAP server was slow: "
                     "each message once (the first was journaled when the wait began)")
    t.eq(imap.seen(), [1, 2, 3], "CHUNKING: after the kill: all \\Seen")

    # -- two sessions -----------------------------------------------------------
    msgs = [h.sample_message(20 + k, 700 + 300 * k) for k in range(6)]
    imap, smtp, r = case(t, "two sessions", msgs=msgs, sessions=2)
    t.exit_code(r, h.EX_OK, "deliver_sessions = 2")
    t.eq(imap.seen(), [1, 2, 3, 4, 5, 6], "two sessions: all \\Seen")
    t.eq(smtp.connections, 2, "two sessions: two connections")
    t.eq(len(set(m.conn for m in smtp.messages)), 2, "two sessions: both carried messages")
    conn_of = {h.strip_received(m.data)[1]: m.conn for m in smtp.messages}
    first = [conn_of.get(h.crlf(m)) for m in msgs[:2]]
    t.check(None not in first and first[0] != first[1], "two sessions: the first two messages on different sessions",
            first)
    got = sorted(h.strip_received(m.data)[1] for m in smtp.delivered())
    t.messages_equal(got, sorted(h.crlf(m) for m in msgs), "two sessions: each once, whole")
    t.eq(r.stderr.count("SMTP> QUIT"), 2, "two sessions: each ended with QUIT")

    msgs = [h.sample_message(30 + k, 900) for k in range(5)]
    imap, smtp, r = case(t, "two sessions, 451 on one", {("DOT", 2): "451 4.3.0 queue full"}, msgs=msgs,
                         sessions=2)
    t.exit_code(r, h.EX_DELIVERY, "two sessions: 451 after the data of the second transaction")
    # The server numbers transactions as its two threads read them, so
    # the 451 may hit message 2 or 3.  Message k's reply is read when
    # message k+2 is ready (or earlier, when the IMAP server pauses): so
    # everything before the refused one went through, the one after it
    # may have, and nothing later was sent.
    def number(m):
        return int(re.search(rb"Test Sender (\d+)", m.data).group(1)) - 29
    refused = [number(m) for m in smtp.messages if m.n == 2]
    sent = sorted(number(m) for m in smtp.messages)
    took = sorted(number(m) for m in smtp.delivered())
    k = refused[0] if refused else 0
    t.check(len(refused) == 1 and k not in took and set(range(1, k)) <= set(took) and max(sent) <= k + 1,
            "two sessions: before the refused message all went, after it at most the one in flight",
            (refused, sent, took))
    t.eq(imap.seen(), took, "two sessions: what the server took (on either session) is \\Seen, no more")
    t.eq(sum(1 for l in errors(r) if "not delivered" in l), 1, "two sessions: one message reported",
         r.stderr)

    msgs = msgs3()
    imap, smtp, r = case(t, "554 then the next", {("DOT", 1): "554 5.7.1 rejected"}, msgs=msgs)
    t.exit_code(r, h.EX_DELIVERY, "a 554 learnt when the next message is ready")
    t.eq(imap.seen(), [2, 3], "a 554 learnt later: only that message stays")


h.main(test)
