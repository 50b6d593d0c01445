#!/usr/bin/env python3
"""Faults while delivering into a Maildir (real Dovecot; strace makes the
system calls fail).  Each time: exit 10, an error line naming the account
and what to do, nothing left in new/ or tmp/, every message still unseen
on the server; the next run without the fault delivers each message once.

- a full disk (the message's writev fails with ENOSPC): a temporary
  failure, so one message is tried and nothing more this run;
- a Maildir mailfetch may not write to (faccessat says EACCES, or, not as
  root, a tmp/ of mode 0500): refused before anything is fetched;
- no file can be made in tmp/ (openat EACCES): one failure, then stop;
- fsync of new/ fails (EIO) after the messages were moved there: they are
  taken back out of new/;
- the third rename into new/ fails (ENOSPC): the first two are taken back;
- a file system without RENAME_NOREPLACE (renameat2 EINVAL): link and
  unlink instead, and the mail is delivered."""

import os
import shutil
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h



def maildir(t, name):
    md = t.path(name)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub))
    return md


def files(md):
    return {sub: sorted(os.listdir(os.path.join(md, sub))) for sub in ("cur", "new", "tmp")}


def test(t):
    if shutil.which("strace") is None:
        raise h.Skip("strace is not installed")
    dv = t.dovecot()
    n = 0

    def fault(name, strace_args, what, err_text, one_failure=False, md=None, mode=None):
        """Fresh mail, a run under the fault, then a clean run."""
        nonlocal n
        msgs = [h.sample_message(n + i + 1, 700 + 400 * i) for i in range(5)]
        n += 5
        uids = dv.append_many("alice", "INBOX", msgs)
        md = md or maildir(t, name)
        cfg = h.config({"acct": h.dovecot_keys(dv, deliver="maildir", maildir=md)})
        if strace_args is not None:
            wrapper, log = t.strace_wrapper(name, strace_args)
            r = t.run([], cfg, binary=wrapper)
            t.check("INJECTED" in h.read_file(log).decode(errors="replace"), "%s: the fault was injected" % what)
        else:
            os.chmod(os.path.join(md, "tmp"), mode)
            r = t.run([], cfg)
            os.chmod(os.path.join(md, "tmp"), 0o700)
        t.exit_code(r, h.EX_DELIVERY, what)
        errs = [l for l in r.stderr.splitlines() if l.startswith("mailfetch: acct (alice@")]
        t.check(errs and all(md in l for l in errs if err_text in l) and any(err_text in l for l in errs),
                "%s: the error names the account and the Maildir (%s)" % (what, err_text), r.stderr)
        if one_failure:
            t.eq(len([l for l in errs if "not delivered" in l]), 1,
                 "%s: one message tried, not one error per message" % what, r.stderr)
            t.check("delivering nothing more this run" in r.stderr, "%s: the run says it stopped delivering" % what,
                    r.stderr)
        t.eq(files(md), {"cur": [], "new": [], "tmp": []}, "%s: nothing left in the Maildir" % what)
        fl = dv.flags("alice")
        t.eq([fl.get(u) for u in uids], [set()] * len(uids), "%s: every message still unseen" % what)
        r = t.run([], cfg)
        t.exit_code(r, h.EX_OK, "%s, then a run without it" % what)
        t.messages_equal(sorted(h.read_maildir(md)), sorted(msgs), "%s: then each message once" % what)
        t.eq(files(md)["tmp"], [], "%s: then tmp/ empty" % what)
        fl = dv.flags("alice")
        t.check(all("\\Seen" in fl.get(u, ()) for u in uids), "%s: then all \\Seen" % what)

    fault("enospc", "-e trace=writev -e inject=writev:error=ENOSPC", "disk full",
          "No space left on device", one_failure=True)

    md = maildir(t, "noaccess")
    fault("noaccess", "-P '%s' -e trace=faccessat,faccessat2 -e inject=faccessat,faccessat2:error=EACCES" % md,
          "a Maildir mailfetch may not write to", "cannot write to the Maildir", md=md)
    if os.geteuid() != 0:
        fault("mode0500", None, "a tmp/ of mode 0500", "cannot write to the Maildir", mode=0o500)

    md = maildir(t, "nocreate")
    fault("nocreate", "-P '%s/tmp' -e trace=openat -e inject=openat:error=EACCES" % md,
          "no file can be made in tmp/", "Permission denied", one_failure=True, md=md)

    md = maildir(t, "eio")
    fault("eio", "-P '%s/new' -e trace=fsync -e inject=fsync:error=EIO" % md,
          "fsync of new/ fails", "Input/output error", md=md)

    md = maildir(t, "rename")
    fault("rename", "-P '%s/new' -e trace=renameat2 -e inject=renameat2:error=ENOSPC:when=3" % md,
          "the third rename into new/ fails", "No space left on device", md=md)

    # No RENAME_NOREPLACE: link() instead, which never overwrites either.
    msgs = [h.sample_message(900 + i, 800) for i in range(4)]
    uids = dv.append_many("alice", "INBOX", msgs)
    md = maildir(t, "nonoreplace")
    wrapper, log = t.strace_wrapper("nonoreplace", "-e trace=renameat2,linkat,unlinkat -e inject=renameat2:error=EINVAL")
    r = t.run([], h.config({"acct": h.dovecot_keys(dv, deliver="maildir", maildir=md)}), binary=wrapper)
    t.exit_code(r, h.EX_OK, "renameat2 not supported")
    trace = h.read_file(log).decode(errors="replace")
    t.check(trace.count(" linkat(") == len(msgs) and trace.count(" renameat2(") == 1,
            "one renameat2 tried, then link for each message", trace[-2000:])
    t.messages_equal(sorted(h.read_maildir(md)), sorted(msgs), "delivered with link")
    t.eq(files(md)["tmp"], [], "the tmp/ names removed after the link")
    fl = dv.flags("alice")
    t.check(all("\\Seen" in fl.get(u, ()) for u in uids), "all \\Seen")


h.main(test)
