#!/usr/bin/env python3
"""--version names the version and what the build has in it: the OpenSSL
in use (as `openssl version` names it), the SASL mechanisms (built in, no
SASL library), whether libsecret is compiled in (as --check-config of a
password_store = secret account finds it), the protocols and the sinks.
Also: -V is the same, and it needs no config file."""

import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    r = t.run(["--version"], env={"XDG_CONFIG_HOME": t.path("nowhere"), "HOME": t.path("nohome")})
    t.exit_code(r, h.EX_OK, "--version without any config")
    out = r.stdout
    t.check(re.match(r"mailfetch \d+\.\d+\.\d+\n", out) is not None, "first line: mailfetch VERSION", out)
    ossl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.split()
    t.check(len(ossl) >= 2 and ("TLS: %s %s" % (ossl[0], ossl[1])) in out,
            "the OpenSSL in use, as openssl version names it (%s)" % " ".join(ossl[:2]), out)
    t.check(re.search(r"^SASL: built in \(no SASL library\): SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS "
                      r"SCRAM-SHA-1 OAUTHBEARER XOAUTH2 PLAIN LOGIN$", out, re.M) is not None,
            "the SASL mechanisms", out)
    probe = t.run(["--check-config"], h.config({"a": {"host": "127.0.0.1", "user": "u", "password_store": "secret"}}))
    with_secret = probe.code == h.EX_OK
    t.check(re.search(r"^libsecret: %s" % ("yes" if with_secret else "no"), out, re.M) is not None,
            "libsecret: %s, as the build is" % ("yes" if with_secret else "no"), out)
    t.check("protocols: IMAP\n" in out and "delivery: mda, mbox, maildir, smtp, lmtp\n" in out,
            "protocols and sinks", out)
    r2 = t.run(["-V"])
    t.eq(r2.stdout, out, "-V prints the same")


h.main(test)
