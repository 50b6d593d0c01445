#!/usr/bin/env python3
"""Faults around one fetch (scripted fake server):
- RFC822.SIZE disagrees with the body sent: nothing delivered, nothing
  marked, exit 10;
- the folder is [READ-ONLY]: nothing is fetched (its marks could not be
  stored, so it would come again every run), exit 7;
- a mail reader replaces (compacts) the mbox between two messages: the
  second message lands in the file the path names now, not in the
  unlinked old one, so nothing is lost."""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    msgs = [h.sample_message(1, 900), h.sample_message(2, 1500)]
    mbox = t.path("inbox.mbox")

    srv = t.fake(tls="implicit", messages=msgs, fetch_fault="size-lie")
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_DELIVERY, "RFC822.SIZE does not match the body")
    t.check("RFC822.SIZE" in " ".join(srv.command_names()) or srv.saw("FETCH"), "the client fetched", srv.command_names())
    t.check(not srv.saw("STORE"), "no STORE for a damaged message", srv.command_names())
    t.eq(h.read_file(mbox), b"", "nothing written to the mbox")
    t.check("it stays on the server" in r.stderr, "the error says the message stays", r.stderr)

    srv = t.fake(tls="implicit", messages=msgs,
                 handlers={"SELECT": lambda sess, tag, args: sess.cmd_select(tag, args, readonly=True)})
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_SERVER, "a read-only folder")
    t.check(not srv.saw("FETCH") and not srv.saw("STORE"), "nothing fetched from it", srv.command_names())
    t.check("read-only" in r.stderr, "the error says read-only", r.stderr)

    # The mbox is replaced while message 2 is on its way.
    def replace_mbox(sess, m):
        if m.uid != 2:
            return
        deadline = time.time() + 10
        while b"number 1." not in h.read_file(mbox) and time.time() < deadline:
            time.sleep(0.02)
        data = h.read_file(mbox)
        with open(mbox + ".new", "wb") as f:
            f.write(data)
        os.rename(mbox + ".new", mbox)
        sess.srv._event(sess.id, "fault", "mbox replaced")

    srv = t.fake(tls="implicit", messages=msgs, on_fetch_message=replace_mbox)
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "fetch while the mbox is replaced")
    t.check(any(k == "fault" for k in srv.kinds()), "the mbox was replaced during the run")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "both messages in the mbox the path names")


h.main(test)
