#!/usr/bin/env python3
"""FETCH replies without a message body (scripted fake server): one with
BODY[] NIL, one with RFC822.SIZE but no BODY[] at all.  Each is a failed
message, logged with its UID and counted: the others are delivered and
marked, those two stay unseen, and the run exits 10, never 1 ("no new
mail") or 0 as if nothing were wrong.  A server that sends the size in
one FETCH response and the body in another is fine."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def fetch_without_bodies(sess, tag, args):
    for m in sess._resolve(args[0], True):
        seq = sess.srv.mailbox.index(m) + 1
        if m.uid == 2:
            sess.send(b"* %d FETCH (UID 2 RFC822.SIZE %d BODY[] NIL)\r\n" % (seq, len(m.data)))
        elif m.uid == 3:
            sess.send(b"* %d FETCH (UID 3 RFC822.SIZE %d)\r\n" % (seq, len(m.data)))
        else:
            sess.send(b"* %d FETCH (UID %d RFC822.SIZE %d BODY[] {%d}\r\n" % (seq, m.uid, len(m.data), len(m.data))
                      + m.data + b")\r\n")
    sess.send("%s OK FETCH completed\r\n" % tag)


def size_then_body(sess, tag, args):
    """RFC822.SIZE in one FETCH response, BODY[] in a second one."""
    for m in sess._resolve(args[0], True):
        seq = sess.srv.mailbox.index(m) + 1
        sess.send(b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (seq, m.uid, len(m.data)))
        sess.send(b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (seq, m.uid, len(m.data)) + m.data + b")\r\n")
    sess.send("%s OK FETCH completed\r\n" % tag)


def test(t):
    msgs = [h.sample_message(i + 1, 600 + 200 * i) for i in range(4)]
    srv = t.fake(tls="implicit", messages=msgs, handlers={"UID FETCH": fetch_without_bodies})
    mbox = t.path("inbox.mbox")
    r = t.run(["-v"], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_DELIVERY, "two messages came without a body")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), [msgs[0], msgs[3]], "the two with bodies are delivered")
    t.eq(srv.seen(), [1, 4], "only those are marked")
    errs = r.stderr.splitlines()
    t.check(any("UID 2 not delivered" in l and "NIL" in l for l in errs), "the NIL body is an error naming UID 2",
            r.stderr)
    t.check(any("UID 3 not delivered" in l and "BODY[]" in l for l in errs),
            "the missing body is an error naming UID 3", r.stderr)
    t.check("4 messages" in r.stderr and "2 delivered, 2 failed" in r.stderr, "the summary counts them as failed",
            r.stderr)

    # The size and the body in two responses for the same message: delivered.
    srv = t.fake(tls="implicit", messages=msgs, handlers={"UID FETCH": size_then_body})
    mbox = t.path("split.mbox")
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "size and body in separate responses")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "all delivered")


h.main(test)
