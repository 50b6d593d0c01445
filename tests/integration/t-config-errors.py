#!/usr/bin/env python3
"""Config errors: unknown keys, bad values, missing required keys.  Each is
exit 5 with an error on stderr that names the file, the section and the
key, and mailfetch never connects (a listening socket sees no connection).
Unknown options and unknown account names on the command line are exit 5."""

import os
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    # A listener that would notice any connection attempt.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(5)
    lsock.setblocking(False)
    port = lsock.getsockname()[1]

    pw = "s3cret-in-config"
    base = {"host": "127.0.0.1", "port": str(port), "tls": "implicit", "user": "alice",
            "password": pw, "deliver": "mbox", "mbox": t.path("inbox.mbox")}

    def case(label, section, key, change=None, defaults=None, drop=None):
        keys = dict(base)
        if change:
            keys.update(change)
        if drop:
            keys.pop(drop)
        secname = "acct" if section != "defaults" else "defaults"
        text = h.config({"acct": keys}, defaults=defaults)
        r = t.run([], text, config_name="fetchrc-%d" % len(t.results))
        t.exit_code(r, h.EX_USAGE, label)
        err = r.stderr
        t.check(r.config_path in err, "%s: stderr names the file" % label, err)
        t.check("[%s]" % secname in err, "%s: stderr names the section [%s]" % (label, secname), err)
        t.check(key in err, "%s: stderr names the key %s" % (label, key), err)
        t.check(pw not in r.output, "%s: the password is not printed" % label)

    case("unknown key", "acct", "colour", change={"colour": "blue"})
    case("typo of a TLS key", "acct", "tls_verfy", change={"tls_verfy": "no"})
    case("unknown key in [defaults]", "defaults", "frobnicate", defaults={"frobnicate": "yes"})
    case("port 70000", "acct", "port", change={"port": "70000"})
    case("port abc", "acct", "port", change={"port": "abc"})
    case("port 0", "acct", "port", change={"port": "0"})
    case("port -1", "acct", "port", change={"port": "-1"})
    case("port 143x", "acct", "port", change={"port": "143x"})
    case("missing host", "acct", "host", drop="host")
    case("empty host", "acct", "host", change={"host": ""})
    case("missing user", "acct", "user", drop="user")
    case("bad tls value", "acct", "tls", change={"tls": "maybe"})
    case("tls = none without allow_plaintext", "acct", "tls", change={"tls": "none"})
    case("bad bool", "acct", "keep", change={"keep": "perhaps"})
    case("bad fetch value", "acct", "fetch", change={"fetch": "some"})
    case("timeout 0", "acct", "timeout", change={"timeout": "0"})
    case("mda and mbox, no deliver", "acct", "deliver", change={"mda": "/bin/cat"}, drop="deliver")
    case("timeout 3601", "acct", "timeout", change={"timeout": "3601"})
    case("deliver = mbox without mbox", "acct", "mbox", drop="mbox")
    case("bad tls_fingerprint", "acct", "tls_fingerprint", change={"tls_fingerprint": "sha256:1234"})

    good = h.config({"acct": base})
    for args, label in ((["--no-such-option"], "unknown option"),
                        (["nosuchaccount"], "unknown account name"),
                        (["-c"], "-c without a value")):
        if args == ["-c"]:
            r = t.run(args, None)
        else:
            r = t.run(args, good)
        t.exit_code(r, h.EX_USAGE, label)
        t.check(r.stderr.strip() != "", "%s: says something on stderr" % label)

    try:
        c, _ = lsock.accept()
        c.close()
        connected = True
    except BlockingIOError:
        connected = False
    lsock.close()
    t.check(not connected, "no run tried to connect")


h.main(test)
