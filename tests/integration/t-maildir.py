#!/usr/bin/env python3
"""Fetch from Dovecot into a Maildir (deliver = maildir).

- A Maildir that does not exist yet, in a directory that does, is made
  (mode 0700, with cur/, new/ and tmp/, each 0700); every message lands
  in new/ byte-exact (LF line ends, no From_ line, no mboxrd quoting, no
  line end added), under a name of the Maildir spec,
  TIME.M<usec>P<pid>Q<n>.HOST,S=<size>, with no info suffix; tmp/ is
  left empty; all are \\Seen; a second run delivers nothing twice, and a
  message a mail reader moved to cur/ stays where it is.
- `maildir = ~/...` with a trailing slash and no `deliver` key: the
  Maildir under $HOME is where the mail goes.
- Refused with exit 10, one error line naming the account and the path,
  nothing fetched or marked: a Maildir whose directory does not exist (it
  is not made either), a path that is a regular file, a symbolic link, a
  Maildir with a file where tmp/ should be, one of another user.
- A 25 MB message arrives byte-exact with the peak RSS under 8 MiB."""

import os
import re
import stat
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

NAME = re.compile(r"^(\d+)\.M(\d{6})P(\d+)Q(\d+)\.([^/:,]+),S=(\d+)$")
RSS_LIMIT_KIB = 8 * 1024


def listing(md, sub):
    return sorted(os.listdir(os.path.join(md, sub)))


def refused(t, dv, keys, path, what, text):
    """A run that must refuse the Maildir: exit 10, one error line naming
    the account and path (with text), nothing fetched or marked."""
    before = dv.flags("alice")
    r = t.run([], h.config({"acct": keys}))
    t.exit_code(r, h.EX_DELIVERY, what)
    errs = [l for l in r.stderr.splitlines() if l.startswith("mailfetch: acct (alice@")]
    t.check(len(errs) == 1 and path in errs[0] and text in errs[0],
            "%s: one error line naming the account, the path and what is wrong" % what, r.stderr)
    t.eq(dv.flags("alice"), before, "%s: nothing marked on the server" % what)
    return r


def test(t):
    dv = t.dovecot()
    msgs = h.sample_messages(6)
    # A body without a final line end: stored as it came, nothing added.
    msgs.append(b"From: x@example.org\nSubject: no final newline\n\nlast line without a newline")
    uids = dv.append_many("alice", "INBOX", msgs)
    flagged = h.sample_message(20, 1500)
    uid_flagged = dv.append("alice", "INBOX", flagged, flags=("\\Flagged",))
    old = h.sample_message(21, 500)
    uid_old = dv.append("alice", "INBOX", old, flags=("\\Seen",))
    want = [h.lf(dv.fetch("alice", "INBOX", u)) for u in uids] + [flagged]
    t.eq(want[:-1], msgs, "Dovecot hands the messages back as they were appended")

    # 1. A new Maildir in an existing directory.
    os.makedirs(t.path("mail"))
    md = t.path("mail", "inbox")
    cfg = h.config({"acct": h.dovecot_keys(dv, deliver="maildir", maildir=md)})
    t0 = time.time()
    r = t.run([], cfg)
    t.exit_code(r, h.EX_OK, "first run into a Maildir that does not exist yet")
    for d in (md, os.path.join(md, "cur"), os.path.join(md, "new"), os.path.join(md, "tmp")):
        st = os.lstat(d)
        t.check(stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700,
                "%s made, mode 0700" % os.path.relpath(d, t.dir), oct(st.st_mode))
    new = listing(md, "new")
    t.eq(listing(md, "cur"), [], "nothing in cur/ (that is the mail reader's)")
    t.eq(listing(md, "tmp"), [], "nothing left in tmp/")
    got = [h.read_file(os.path.join(md, "new", n)) for n in new]
    t.messages_equal(sorted(got), sorted(want), "new/ holds every unseen message")
    t.check(all(b"\r" not in m for m in got), "LF line ends only")
    bad = []
    for n in new:
        m = NAME.match(n)
        size = os.path.getsize(os.path.join(md, "new", n))
        if (m is None or int(m.group(6)) != size or int(m.group(3)) <= 0
                or not t0 - 5 <= int(m.group(1)) <= time.time() + 5):
            bad.append(n)
    t.eq(bad, [], "names are TIME.M<usec>P<pid>Q<n>.HOST,S=<size of the file>, no info suffix", new)
    t.eq(len(set(NAME.match(n).group(4) for n in new if NAME.match(n))), len(new), "the Q counter differs per message")
    modes = set(stat.S_IMODE(os.stat(os.path.join(md, "new", n)).st_mode) for n in new)
    t.check(all(mode & 0o077 == 0 for mode in modes), "message files are private (0600)", modes)
    fl = dv.flags("alice")
    for u in uids:
        t.eq(fl.get(u), {"\\Seen"}, "UID %d is \\Seen" % u)
    t.eq(fl.get(uid_flagged), {"\\Seen", "\\Flagged"}, "\\Flagged kept, \\Seen added")
    t.eq(fl.get(uid_old), {"\\Seen"}, "the message that was seen already is left alone")

    # 2. Nothing twice; a reader's move to cur/ is left alone.
    os.rename(os.path.join(md, "new", new[0]), os.path.join(md, "cur", new[0] + ":2,S"))
    r = t.run([], cfg)
    t.exit_code(r, h.EX_NOMAIL, "second run: no new mail")
    t.eq((listing(md, "new"), listing(md, "cur"), listing(md, "tmp")), (new[1:], [new[0] + ":2,S"], []),
         "second run leaves the Maildir as it was")
    more = [h.sample_message(30 + i, 900 * (i + 1)) for i in range(3)]
    dv.append_many("alice", "INBOX", more)
    r = t.run([], cfg)
    t.exit_code(r, h.EX_OK, "third run with three new messages")
    t.messages_equal(sorted(h.read_maildir(md)), sorted(want + more), "each message once, new or cur")

    # 3. ~ and a trailing slash, and no deliver key.
    home = t.path("home")
    os.makedirs(os.path.join(home, "Mail"), exist_ok=True)
    dv.append_many("alice", "INBOX", msgs[:2])
    r = t.run([], h.config({"acct": h.dovecot_keys(dv, maildir="~/Mail/box/")}))
    t.exit_code(r, h.EX_OK, "maildir = ~/Mail/box/ without deliver")
    t.messages_equal(sorted(h.read_maildir(os.path.join(home, "Mail", "box"))), sorted(msgs[:2]),
                     "the mail went to $HOME/Mail/box")

    # 4. What is refused, with a message waiting each time.
    dv.append("alice", "INBOX", h.sample_message(40, 800))
    gone = t.path("nowhere", "inbox")
    refused(t, dv, h.dovecot_keys(dv, deliver="maildir", maildir=gone), t.path("nowhere"),
            "a Maildir whose directory does not exist", "does not exist")
    t.check(not os.path.exists(t.path("nowhere")), "the missing directory is not made")

    f = t.path("mail", "afile")
    with open(f, "wb") as fp:
        fp.write(b"not a Maildir\n")
    refused(t, dv, h.dovecot_keys(dv, deliver="maildir", maildir=f), f,
            "a Maildir path that is a regular file", "not a directory")
    t.eq(h.read_file(f), b"not a Maildir\n", "the file is untouched")

    link = t.path("mail", "link")
    os.symlink(md, link)
    refused(t, dv, h.dovecot_keys(dv, deliver="maildir", maildir=link), link,
            "a Maildir path that is a symbolic link", "symbolic link")

    broken = t.path("mail", "broken")
    for sub in ("cur", "new"):
        os.makedirs(os.path.join(broken, sub))
    with open(os.path.join(broken, "tmp"), "wb"):
        pass
    refused(t, dv, h.dovecot_keys(dv, deliver="maildir", maildir=broken), broken + "/tmp",
            "a Maildir with a file where tmp/ should be", "not a directory")
    t.eq(listing(broken, "new"), [], "nothing delivered into it")

    if os.geteuid() == 0:
        other = t.path("mail", "other")
        for sub in ("", "cur", "new", "tmp"):
            os.makedirs(os.path.join(other, sub), exist_ok=True)
            os.chown(os.path.join(other, sub), 65534, 65534)
            os.chmod(os.path.join(other, sub), 0o777)
        refused(t, dv, h.dovecot_keys(dv, deliver="maildir", maildir=other), other,
                "a Maildir of another user", "belongs to another user")
        t.eq(listing(other, "new") + listing(other, "tmp"), [], "nothing written into it")
    else:
        t.log("note: not root, cannot chown a Maildir to another user: that part not run")

    # 5. A 25 MB message: byte-exact, and the memory stays small.
    r = t.run([], cfg)
    t.exit_code(r, h.EX_OK, "the waiting message, into the Maildir of part 1")
    big = h.big_message(25 * 1024 * 1024)
    dv.append("alice", "INBOX", big)
    before = set(listing(md, "new"))
    r = t.run([], cfg, timeout=120)
    t.exit_code(r, h.EX_OK, "a 25 MB message")
    added = [n for n in listing(md, "new") if n not in before]
    t.messages_equal([h.read_file(os.path.join(md, "new", n)) for n in added], [big], "25 MB byte-exact")
    t.log("peak RSS (Maildir, 25 MB): %d KiB" % r.maxrss_kib)
    if h.binary_is_sanitized():
        t.log("note: sanitizer build, the RSS limit is not checked")
    else:
        t.check(r.maxrss_kib < RSS_LIMIT_KIB, "peak RSS %d KiB < %d KiB" % (r.maxrss_kib, RSS_LIMIT_KIB))
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "all \\Seen at the end")


h.main(test)
