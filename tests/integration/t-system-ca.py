#!/usr/bin/env python3
"""Without tls_ca_file, the system's CAs are trusted: from the hashed
directory alone when it has hashed names (SSL_CERT_DIR), from OpenSSL's
file and directory when SSL_CERT_FILE names another file or the directory
has no hashed names.  A directory with hashed names but not the server's
CA is not trusted just because it exists.  Against a real Dovecot."""

import os
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

    cases = [
        ("hashed directory with the CA", {"SSL_CERT_DIR": with_ca}, h.EX_OK,
         "trusting the system CAs in directory %s" % with_ca),
        ("SSL_CERT_FILE with the CA, directory without hashed names",
         {"SSL_CERT_DIR": empty, "SSL_CERT_FILE": t.certs.ca}, h.EX_OK,
         "trusting the system CAs in file %s and directory %s" % (t.certs.ca, empty)),
        ("hashed directory without the CA", {"SSL_CERT_DIR": without_ca}, h.EX_CONNECT,
         "trusting the system CAs in directory %s" % without_ca),
        ("directory without hashed names, no SSL_CERT_FILE", {"SSL_CERT_DIR": empty}, h.EX_CONNECT,
         "trusting the system CAs in file "),
    ]
    for n, (label, env, code, trace) in enumerate(cases):
        msg = h.sample_message(n + 1, 900)
        uid = dv.append("alice", "INBOX", msg)
        mbox = t.path("inbox-%d.mbox" % n)
        cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox, tls_ca_file=None)})
        r = t.run(["-v", "-v"], cfg, env=env)
        t.exit_code(r, code, label)
        t.check(trace in r.stderr, "%s: the trace says where the CAs come from" % label, r.stderr)
        if code == h.EX_OK:
            t.messages_equal(h.parse_mbox(h.read_file(mbox)), [msg], "%s: delivered" % label)
            t.check("\\Seen" in dv.flags("alice").get(uid, ()), "%s: marked \\Seen" % label)
        else:
            t.eq(h.read_file(mbox), b"", "%s: nothing delivered" % label)
            t.eq(dv.flags("alice").get(uid), set(), "%s: message still unseen" % label)
            t.check("server certificate not trusted" in r.stderr, "%s: says why" % label, r.stderr)


h.main(test)
