#!/usr/bin/env python3
"""Authentication and secrets: a wrong password is exit 3 with nothing
marked \\Seen; password_command supplies the password; a config file that
holds a password and is readable by others is exit 6 with nothing fetched;
a group- or world-writable config is refused even without a password."""

import os
import shlex
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    dv = t.dovecot()
    msgs = h.sample_messages(2)
    uids = dv.append_many("alice", "INBOX", msgs)
    pw = dv.users["alice"]
    mbox = t.path("inbox.mbox")

    # Wrong password.
    wrong = pw + "x"
    r = t.run([], h.config({"acct": h.dovecot_keys(dv, password=wrong, deliver="mbox", mbox=mbox)}))
    t.exit_code(r, h.EX_AUTH, "wrong password")
    t.eq(dv.flags("alice"), {u: set() for u in uids}, "wrong password: nothing marked")
    t.eq(h.read_file(mbox), b"", "wrong password: nothing delivered")
    t.check(wrong not in r.output, "wrong password: not echoed in the error", r.stderr)
    t.check("mailfetch: acct" in r.stderr, "wrong password: error names the account", r.stderr)

    # Config with a password readable by others.
    for mode in (0o644, 0o640, 0o604):
        r = t.run([], h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox)}), config_mode=mode)
        t.exit_code(r, h.EX_PERM, "password in a config of mode %o" % mode)
        t.check(r.config_path in r.stderr, "mode %o: error names the file" % mode, r.stderr)
        t.check(pw not in r.output, "mode %o: password not printed" % mode)
    t.eq(dv.flags("alice"), {u: set() for u in uids}, "mode errors: nothing marked")
    t.eq(h.read_file(mbox), b"", "mode errors: nothing delivered")

    # password_command: a shell command whose first output line is the password.
    cmd = "printf '%%s\\n' %s" % shlex.quote(pw)
    keys = h.dovecot_keys(dv, password=None, password_command=cmd, deliver="mbox", mbox=mbox)
    # Without a password in it, a config that others can read is fine.
    r = t.run([], h.config({"acct": keys}), config_mode=0o644)
    t.exit_code(r, h.EX_OK, "password_command (config mode 644, no password in it)")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "password_command: mail delivered")
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "password_command: all \\Seen")
    t.check(pw not in r.output, "password_command: password not printed")

    # A command that prints two lines: only the first one is the password.
    m3 = h.sample_message(3)
    dv.append("alice", "INBOX", m3)
    script = t.path("pw.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nprintf '%%s\\n' %s\necho second-line-is-not-the-password\n" % shlex.quote(pw))
    os.chmod(script, 0o755)
    keys["password_command"] = script
    r = t.run([], h.config({"acct": keys}))
    t.exit_code(r, h.EX_OK, "password_command script, first line only")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs + [m3], "script password: mail delivered")

    # A group- or world-writable config is refused even without a password.
    m4 = h.sample_message(4)
    dv.append("alice", "INBOX", m4)
    for mode in (0o666, 0o620):
        r = t.run([], h.config({"acct": keys}), config_mode=mode)
        t.exit_code(r, h.EX_PERM, "writable config of mode %o" % mode)
    t.eq(len(h.parse_mbox(h.read_file(mbox))), 3, "writable config: nothing delivered")


h.main(test)
