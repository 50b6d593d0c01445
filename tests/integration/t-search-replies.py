#!/usr/bin/env python3
"""UID SEARCH (fake server).  It is sent together with SELECT, not after
its reply; a NO to it gives up the folder (exit 7).  Replies a real
Dovecot does not send: the
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

    # SELECT and UID SEARCH go out together: in the -v -v trace the search
    # is sent before the SELECT's tagged reply comes in.
    srv = t.fake(tls="implicit", messages=msgs[:1])
    r = t.run(["-v", "-v"], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=t.path("order.mbox"))}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "-v -v run")
    lines = r.stderr.splitlines()
    sel = [i for i, l in enumerate(lines) if "> A" in l and " SELECT " in l]
    sel_tag = lines[sel[0]].split("> ", 1)[1].split()[0] if sel else "?"
    search = [i for i, l in enumerate(lines) if "> A" in l and " UID SEARCH " in l]
    sel_ok = [i for i, l in enumerate(lines) if "< %s OK" % sel_tag in l]
    t.check(sel and search and sel_ok and search[0] < sel_ok[0],
            "UID SEARCH sent before the SELECT's reply arrived (one round trip)", "\n".join(lines[:40]))

    # The SEARCH refused: this folder is given up, nothing fetched, exit 7.
    def refuse_search(sess, tag, args):
        sess.send("%s NO [SERVERBUG] search index broken\r\n" % tag)

    srv = t.fake(tls="implicit", messages=msgs, handlers={"UID SEARCH": refuse_search})
    mbox = t.path("refused.mbox")
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_SERVER, "UID SEARCH refused")
    t.check("INBOX: UID SEARCH failed: server said NO" in r.stderr, "the error names the folder and the reply",
            r.stderr)
    t.eq(h.read_file(mbox), b"", "search refused: nothing delivered")
    t.check(not srv.saw("UID FETCH"), "search refused: no FETCH sent")

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
