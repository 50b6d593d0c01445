#!/usr/bin/env python3
"""Faults around one fetch (scripted fake server):
- RFC822.SIZE disagrees with the body sent: the literal is authoritative
  (some servers report approximate sizes), so the message is delivered
  byte-exact and marked, with a warning that names both sizes;
- the folder is [READ-ONLY]: nothing is fetched (its marks could not be
  stored, so it would come again every run), exit 7;
- the server refuses the marks (STORE NO): the run says the mail will
  come again, and the next run marks it from the state journal instead
  of delivering it twice;
- the first chunk's marks are taken and the second's refused: the
  journal keeps only the refused ones, and the next run marks only those;
- a mail reader replaces (compacts) the mbox between two delivery
  batches, taking the dotlock as it should: the next batch lands in the
  file the path names now, not in the unlinked old one, so nothing is
  lost."""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

BATCH = 250  # IMAP_FETCH_BATCH: messages appended under one lock, one commit


def test(t):
    msgs = [h.sample_message(1, 900), h.sample_message(2, 1500)]
    mbox = t.path("inbox.mbox")

    srv = t.fake(tls="implicit", messages=msgs, fetch_fault="size-lie")
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "RFC822.SIZE does not match the body")
    t.check(srv.saw("FETCH"), "the client fetched", srv.command_names())
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "the bodies sent are delivered as sent")
    t.eq(srv.flags(), {1: {"\\Seen"}, 2: {"\\Seen"}}, "and marked")
    t.check("%d bytes for a message it says has %d" % (len(h.crlf(msgs[0])), len(h.crlf(msgs[0])) + 1) in r.stderr,
            "a warning names both sizes", r.stderr)
    os.unlink(mbox)

    srv = t.fake(tls="implicit", messages=msgs,
                 handlers={"SELECT": lambda sess, tag, args: sess.cmd_select(tag, args, readonly=True)})
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_SERVER, "a read-only folder")
    t.check(not srv.saw("FETCH") and not srv.saw("STORE"), "nothing fetched from it", srv.command_names())
    t.check("read-only" in r.stderr, "the error says read-only", r.stderr)

    # Marks refused: delivered, journaled; the next run only marks.
    os.unlink(mbox) if os.path.exists(mbox) else None
    srv = t.fake(tls="implicit", messages=msgs, store="no", uidvalidity=777)
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_SERVER, "STORE refused")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "delivered once")
    srv = t.fake(tls="implicit", messages=msgs, uidvalidity=777)  # the same mailbox again
    r = t.run(["-v"], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_NOMAIL, "next run: nothing new to deliver")
    t.check(srv.saw("STORE") and not srv.saw("FETCH"), "it marked without fetching again", srv.command_names())
    t.eq(srv.flags(), {1: {"\\Seen"}, 2: {"\\Seen"}}, "both \\Seen now")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "still each message once")

    # The first chunk's marks are taken, the second's refused: the journal
    # keeps only the second chunk (what the server confirmed is forgotten
    # at once), and the next run marks just those without fetching.
    box2 = t.path("chunks.mbox")
    more = [h.sample_message(i + 1, 200) for i in range(BATCH + 5)]

    def store_second_chunk_no(sess, tag, args):
        uidset = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if any(int(u) > BATCH for part in uidset.split(",") for u in part.split(":")):
            sess.send("%s NO [SERVERBUG] cannot store flags now\r\n" % tag)
            return None
        return sess.cmd_uid_store(tag, args)

    srv = t.fake(tls="implicit", messages=more, uidvalidity=778,
                 handlers={"UID STORE": store_second_chunk_no})
    r = t.run([], h.config({"acct2": h.fake_keys(srv, deliver="mbox", mbox=box2)}))
    srv.stop()
    t.exit_code(r, h.EX_SERVER, "second chunk's STORE refused")
    journal = h.read_file(os.path.join(t.dir, "home", ".local", "state", "mailfetch", "acct2.state")).decode()
    uids = sorted(int(line.split()[1]) for line in journal.splitlines()[1:])
    t.eq(uids, list(range(BATCH + 1, BATCH + 6)), "the journal holds only the UIDs whose marks were refused",
         journal[:300])
    # The same mailbox again, as the first server left it: the first chunk \Seen.
    srv = t.fake(tls="implicit", uidvalidity=778,
                 messages=[(m, ("\\Seen",)) if i < BATCH else m for i, m in enumerate(more)])
    r = t.run([], h.config({"acct2": h.fake_keys(srv, deliver="mbox", mbox=box2)}))
    srv.stop()
    t.exit_code(r, h.EX_NOMAIL, "next run: nothing to deliver")
    t.check(not srv.saw("FETCH"), "nothing fetched again", srv.command_names())
    t.messages_equal(h.parse_mbox(h.read_file(box2)), more, "each message once")

    # The mbox is replaced between the first delivery batch (BATCH messages)
    # and the second, by a "mail reader" that takes the dotlock first.
    many = [h.sample_message(i + 1, 300) for i in range(BATCH + 1)]
    lock = mbox + ".lock"

    def replace_mbox(sess, m):
        if m.uid != BATCH + 1:
            return
        deadline = time.time() + 20
        while time.time() < deadline:
            if b"number %d." % BATCH in h.read_file(mbox):
                try:
                    os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                    break
                except FileExistsError:
                    pass
            time.sleep(0.02)
        else:
            return
        data = h.read_file(mbox)
        with open(mbox + ".new", "wb") as f:
            f.write(data)
        os.rename(mbox + ".new", mbox)
        os.unlink(lock)
        sess.srv._event(sess.id, "fault", "mbox replaced")

    os.unlink(mbox)
    srv = t.fake(tls="implicit", messages=many, on_fetch_message=replace_mbox)
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "fetch while the mbox is replaced")
    t.check(any(k == "fault" for k in srv.kinds()), "the mbox was replaced during the run")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), many, "every message in the mbox the path names")


h.main(test)
