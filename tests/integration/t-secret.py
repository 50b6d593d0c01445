#!/usr/bin/env python3
"""password_store = secret reads the password through libsecret, for real,
from libsecret's file backend (no desktop needed): an item stored with
secret-tool under (host, user) logs in; without an item the run fails
with exit 3, names the account, says how to store one, and connects to
nothing."""

import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    keys_probe = h.config({"acct": {"host": "127.0.0.1", "user": "alice", "password_store": "secret"}})
    r = t.run(["--check-config"], keys_probe)
    if r.code == h.EX_USAGE and "without libsecret" in r.stderr:
        raise h.Skip("mailfetch was configured --without-libsecret")
    t.exit_code(r, h.EX_OK, "password_store = secret is accepted")
    if shutil.which("secret-tool") is None:
        raise h.Skip("secret-tool (libsecret-tools) is not installed")

    env = {"SECRET_BACKEND": "file", "SECRET_FILE_TEST_PATH": t.path("keyring"),
           "SECRET_FILE_TEST_PASSWORD": "keyring-unlock"}
    dv = t.dovecot()
    msgs = h.sample_messages(2)
    dv.append_many("alice", "INBOX", msgs)
    keys = h.dovecot_keys(dv, deliver="mbox", mbox=t.path("inbox.mbox"))
    del keys["password"]
    keys["password_store"] = "secret"
    cfg = h.config({"acct": keys})

    # No item yet: exit 3 and a hint, before any connection.
    logins = dv.login_count()
    r = t.run([], cfg, env=env)
    t.exit_code(r, h.EX_AUTH, "no stored password")
    t.check("acct (alice@" in r.stderr and "mailfetch --store-password acct" in r.stderr,
            "the error names the account and how to store a password", r.stderr)
    t.eq(dv.login_count(), logins, "no login attempted without a password")

    e = dict(os.environ, **env)
    p = subprocess.run(["secret-tool", "store", "--label=mailfetch test", "host", keys["host"], "user", "alice"],
                       input=dv.users["alice"].encode(), env=e, capture_output=True, timeout=30)
    t.check(p.returncode == 0, "secret-tool stored the password", p.stderr)
    r = t.run(["-v", "-v"], cfg, env=env)
    t.exit_code(r, h.EX_OK, "login with the password from libsecret")
    t.messages_equal(h.parse_mbox(h.read_file(t.path("inbox.mbox"))), msgs, "mail delivered")
    t.no_secrets(r.out + r.err, "alice", dv.users["alice"], "-v -v with libsecret")


h.main(test)
