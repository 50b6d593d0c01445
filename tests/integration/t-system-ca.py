#!/usr/bin/env python3
"""Without tls_ca_file, the system's CAs are trusted.  OpenSSL's own
certificate directory alone, read one certificate at a time, when it holds
hashed names and neither SSL_CERT_DIR nor SSL_CERT_FILE names anything
else; otherwise OpenSSL's file and directory together, so that a CA a user
adds through either variable is trusted and the system bundle still is.
A directory with hashed names but not the server's CA is not trusted just
because it exists.  Against a real Dovecot; the trace says which store."""

import os
import re
import ssl
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def hashed_dir(t, name, pem):
    """A directory holding pem under its subject-hash name, as c_rehash makes."""
    d = t.path(name)
    os.makedirs(d, exist_ok=True)
    digest = subprocess.run([h.OPENSSL_BIN, "x509", "-hash", "-noout", "-in", pem],
                            check=True, stdout=subprocess.PIPE).stdout.decode().strip()
    with open(pem, "rb") as src, open(os.path.join(d, digest + ".0"), "wb") as dst:
        dst.write(src.read())
    return d


def test(t):
    dv = t.dovecot()
    with_ca = hashed_dir(t, "certs-ca", t.certs.ca)
    # Hashed names, but only a certificate that did not sign the server's.
    without_ca = hashed_dir(t, "certs-other", t.certs.untrusted_cert)
    empty = t.path("certs-empty")
    os.makedirs(empty)

    paths = ssl.get_default_verify_paths()
    sys_file, sys_dir = paths.openssl_cafile, paths.openssl_capath
    sys_hashed = os.path.isdir(sys_dir) and any(
        re.fullmatch(r"[0-9a-f]{8}\.0", n) for n in os.listdir(sys_dir))
    both = "trusting the system CAs in file %s and directory %s"
    sys_trace = ("trusting the system CAs in directory %s" % sys_dir if sys_hashed
                 else both % (sys_file, sys_dir))

    cases = [
        ("SSL_CERT_DIR with the CA", {"SSL_CERT_DIR": with_ca}, h.EX_OK, both % (sys_file, with_ca)),
        ("SSL_CERT_FILE with the CA, directory without hashed names",
         {"SSL_CERT_DIR": empty, "SSL_CERT_FILE": t.certs.ca}, h.EX_OK, both % (t.certs.ca, empty)),
        ("SSL_CERT_FILE with the CA, hashed directory without it",
         {"SSL_CERT_DIR": without_ca, "SSL_CERT_FILE": t.certs.ca}, h.EX_OK, both % (t.certs.ca, without_ca)),
        ("SSL_CERT_DIR hashed, without the CA", {"SSL_CERT_DIR": without_ca}, h.EX_CONNECT,
         both % (sys_file, without_ca)),
        ("no SSL_CERT_DIR or SSL_CERT_FILE: the system store", {}, h.EX_CONNECT, sys_trace),
        ("SSL_CERT_DIR and SSL_CERT_FILE naming the system's own",
         {"SSL_CERT_DIR": os.path.realpath(sys_dir), "SSL_CERT_FILE": os.path.realpath(sys_file)},
         h.EX_CONNECT, ("trusting the system CAs in directory %s" % os.path.realpath(sys_dir))
         if sys_hashed and os.path.exists(sys_file) else None),
    ]
    for n, (label, env, code, trace) in enumerate(cases):
        msg = h.sample_message(n + 1, 900)
        uid = dv.append("alice", "INBOX", msg)
        mbox = t.path("inbox-%d.mbox" % n)
        cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox, tls_ca_file=None)})
        r = t.run(["-v", "-v"], cfg, env=env)
        t.exit_code(r, code, label)
        if trace is not None:
            t.check(trace in r.stderr, "%s: the trace says where the CAs come from" % label, r.stderr)
        if code == h.EX_OK:
            t.messages_equal(h.parse_mbox(h.read_file(mbox)), [msg], "%s: delivered" % label)
            t.check("\\Seen" in dv.flags("alice").get(uid, ()), "%s: marked \\Seen" % label)
        else:
            t.eq(h.read_file(mbox), b"", "%s: nothing delivered" % label)
            t.eq(dv.flags("alice").get(uid), set(), "%s: message still unseen" % label)
            t.check("server certificate not trusted" in r.stderr, "%s: says why" % label, r.stderr)


h.main(test)
