#!/usr/bin/env python3
"""--check-config prints the resolved accounts (name, user, host, port,
folders) and exit 0, without ever printing a password, and without
connecting; on a bad config it is exit 5, on a bad mode exit 6."""

import os
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(5)
    lsock.setblocking(False)
    port = lsock.getsockname()[1]
    pw = h.USERS["alice"]
    pw2 = "bob-Secret-9"
    text = h.config(
        {
            "work": {"host": "127.0.0.1", "port": str(port), "tls": "implicit", "user": "alice",
                     "password": pw, "folders": "INBOX, Lists", "deliver": "mbox",
                     "mbox": t.path("work.mbox")},
            "home": {"host": "localhost", "port": str(port), "user": "bob", "password": pw2,
                     "mda": "/usr/bin/procmail -d %T"},
            "boxonly": {"host": "localhost", "port": str(port), "user": "carol", "password": pw2,
                        "mbox": t.path("carol.mbox")},
        },
        defaults={"keep": "yes", "timeout": "30", "mda": "/usr/bin/procmail -d %T"},
    )
    r = t.run(["--check-config"], text)
    t.exit_code(r, h.EX_OK, "--check-config")
    out = r.output
    for word in ("work", "home", "alice", "bob", "127.0.0.1", "localhost", str(port), "Lists"):
        t.check(word in out, "--check-config shows %s" % word, out)
    t.no_secrets(r.out + r.err, "alice", pw, "--check-config, alice")
    t.no_secrets(r.out + r.err, "bob", pw2, "--check-config, bob")
    sections = dict((s.split("]", 1)[0], s) for s in out.split("\n[")[1:])
    t.check("deliver = mda\n" in sections.get("home", ""), "mda only: deliver = mda", out)
    t.check("deliver = mbox\n" in sections.get("boxonly", ""),
            "mbox without deliver, mda only in [defaults]: deliver = mbox", out)
    r = t.run(["--check-config"], h.config(
        {"own": {"host": "localhost", "user": "dave", "password": pw2, "mda": "/bin/cat"}},
        defaults={"mbox": t.path("all.mbox")}))
    t.exit_code(r, h.EX_OK, "--check-config, mbox in [defaults], mda in the account")
    t.check("deliver = mda\nmda = /bin/cat\n" in r.output,
            "mda in the account wins over mbox in [defaults]", r.output)

    r = t.run(["--check-config", "-v", "-v"], text)
    t.exit_code(r, h.EX_OK, "--check-config -v -v")
    t.no_secrets(r.out + r.err, "alice", pw, "--check-config -v -v")
    t.no_secrets(r.out + r.err, "bob", pw2, "--check-config -v -v")

    r = t.run(["--check-config"], text + "\n[broken]\nhost = x\nuser = y\nport = 99999\n")
    t.exit_code(r, h.EX_USAGE, "--check-config with a bad port")

    r = t.run(["--check-config"], text, config_mode=0o644)
    t.exit_code(r, h.EX_PERM, "--check-config of a readable config holding passwords")
    t.no_secrets(r.out + r.err, "alice", pw, "--check-config, mode error")

    try:
        c, _ = lsock.accept()
        c.close()
        connected = True
    except BlockingIOError:
        connected = False
    lsock.close()
    t.check(not connected, "--check-config did not connect")


h.main(test)
