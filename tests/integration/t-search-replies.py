#!/usr/bin/env python3
"""UID SEARCH replies a real Dovecot does not send (fake server): the
UIDs split over two untagged SEARCH lines, unsorted and repeated, with an
RFC 7162 "(MODSEQ n)" at the end, fetch every message once; a SEARCH
reply with a word where a number belongs, or a list other than a last
(MODSEQ n), is a protocol error (exit 4) that delivers and marks
nothing."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    msgs = [h.sample_message(i, 500 + 300 * i) for i in range(1, 6)]

    def split_search(sess, tag, args):
        uids = [m.uid for m in sess.srv.mailbox]
        first, rest = uids[:2], uids[2:]
        sess.send("* SEARCH %s\r\n* SEARCH %s %d (MODSEQ 917162500)\r\n%s OK SEARCH completed\r\n" % (
            " ".join(str(u) for u in reversed(rest)), " ".join(str(u) for u in first), uids[0], tag))

    srv = t.fake(tls="implicit", messages=msgs, handlers={"UID SEARCH": split_search})
    mbox = t.path("split.mbox")
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "SEARCH over two lines with MODSEQ")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "every message once, in UID order")
    fl = srv.flags()
    t.check(all("\\Seen" in f for f in fl.values()), "all marked \\Seen", fl)

    for n, (label, reply) in enumerate([("a word among the UIDs", "1 two 3"),
                                        ("a list that is not (MODSEQ n), UIDs after it", "1 (x) 3")]):
        def bad_search(sess, tag, args, reply=reply):
            sess.send("* SEARCH %s\r\n%s OK SEARCH completed\r\n" % (reply, tag))

        srv = t.fake(tls="implicit", messages=msgs, handlers={"UID SEARCH": bad_search})
        mbox = t.path("bad-%d.mbox" % n)
        r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
        srv.stop()
        t.exit_code(r, h.EX_PROTO, "SEARCH reply with " + label)
        t.check("mailfetch: acct" in r.stderr and "SEARCH" in r.stderr,
                "%s: the error names the account and the SEARCH reply" % label, r.stderr)
        t.eq(h.read_file(mbox), b"", "%s: nothing delivered" % label)
        t.check(not srv.saw("UID FETCH") and not srv.saw("UID STORE"), "%s: no FETCH, no STORE sent" % label)


h.main(test)
