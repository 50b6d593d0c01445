#!/usr/bin/env python3
"""Test harness for mailfetch integration tests.

What is here:
  make_ca(dir)        test CA + server certificates made with the openssl CLI
  Dovecot             a throwaway Dovecot on free loopback ports
  sample_message(...) deterministic test messages (LF line ends)
  big_message(size)   one large message, generated quickly
  parse_mbox(bytes)   mboxrd reader used to check what mailfetch wrote
  run_mailfetch(...)  run the binary with a config, capture output and rusage
  Test, main(fn)      the pass/fail/skip conventions of the test scripts

A test script is run by automake's test driver and exits 0 (pass), 1 (fail),
77 (skip: only when an optional tool is missing) or 99 (the harness itself
could not set up, e.g. Dovecot would not start).

Only the standard library is used.  Nothing here talks to anything but
127.0.0.1.

Run `python3 tests/lib/harness.py demo` for a demonstration, or
`python3 tests/lib/harness.py selftest` to check the harness without the
mailfetch binary.
"""

import atexit
import base64
import imaplib
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("srcdir") or os.path.join(HERE, "..", ".."))

DOVECOT_BIN = os.environ.get("DOVECOT", "/usr/sbin/dovecot")
DOVECOT_LMTP_BIN = os.environ.get("DOVECOT_LMTP", "/usr/lib/dovecot/lmtp")
OPENSSL_BIN = os.environ.get("OPENSSL", "openssl")

# Test users.  alice's password is hostile to shells, quoting and INI files
# (space, both quotes, a dollar), but holds no ':' (passwd-file separator)
# and no ';' or '#' (INI comment characters).
USERS = {
    "alice": "pa ss'w\"d$1",
    "bob": "b0b-Secret",
}

EXIT_PASS, EXIT_FAIL, EXIT_SKIP, EXIT_HARD = 0, 1, 77, 99

# Documented exit codes of mailfetch (HACKING.md).
EX_OK, EX_NOMAIL, EX_CONNECT, EX_AUTH, EX_PROTO, EX_USAGE, EX_PERM = 0, 1, 2, 3, 4, 5, 6
EX_SERVER, EX_LOCK, EX_DELIVERY, EX_DNS, EX_INTERNAL = 7, 8, 10, 11, 23
DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 23}


class HarnessError(Exception):
    """The test environment could not be set up (exit 99)."""


class Skip(Exception):
    """An optional tool is missing (exit 77)."""


class Failure(Exception):
    """A hard assertion failed (exit 1)."""


_cleanups = []
_cleanup_lock = threading.Lock()


def _run_cleanups():
    with _cleanup_lock:
        items = list(reversed(_cleanups))
        del _cleanups[:]
    for fn in items:
        try:
            fn()
        except Exception:  # cleanup must go on
            traceback.print_exc()


def add_cleanup(fn):
    with _cleanup_lock:
        _cleanups.append(fn)


atexit.register(_run_cleanups)


def _sigterm(signum, frame):
    # automake's timeout or a Ctrl-C: run the cleanups through atexit.
    raise SystemExit(EXIT_HARD)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    try:
        signal.signal(_sig, _sigterm)
    except (ValueError, OSError):  # not the main thread
        pass


try:
    # Resolved here, in the parent: the preexec_fn below runs between fork
    # and exec, where importing or loading anything could deadlock on a
    # lock held by another thread (the fake server's).
    import ctypes

    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):
    _prctl = None


def _set_pdeathsig():
    """preexec_fn: the child gets SIGTERM if the test process dies."""
    if _prctl is not None:
        _prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (callers retry on a clash)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_works():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_port(host, port, timeout=10.0, proc=None):
    """Wait until host:port accepts a TCP connection; False on timeout or
    when proc has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------
# Certificates


class Certs:
    """Paths of the test PKI made by make_ca()."""

    def __init__(self, d):
        self.dir = d
        self.ca = os.path.join(d, "ca.pem")
        self.ca_key = os.path.join(d, "ca.key")
        # good: signed by the CA, SAN localhost, 127.0.0.1, ::1
        self.good_cert = os.path.join(d, "good.pem")
        self.good_key = os.path.join(d, "good.key")
        # wrong host: signed by the CA, SAN wrong.example only
        self.wrong_cert = os.path.join(d, "wronghost.pem")
        self.wrong_key = os.path.join(d, "wronghost.key")
        # untrusted: self-signed, right names, not signed by the CA
        self.untrusted_cert = os.path.join(d, "untrusted.pem")
        self.untrusted_key = os.path.join(d, "untrusted.key")
        # cnonly: signed by the CA, CN=localhost and no subjectAltName
        # (RFC 9525: a client must not take the host name from the CN)
        self.cnonly_cert = os.path.join(d, "cnonly.pem")
        self.cnonly_key = os.path.join(d, "cnonly.key")

    def pair(self, which):
        """(cert, key) for which in good, wrong, untrusted, cnonly."""
        return {
            "good": (self.good_cert, self.good_key),
            "wrong": (self.wrong_cert, self.wrong_key),
            "untrusted": (self.untrusted_cert, self.untrusted_key),
            "cnonly": (self.cnonly_cert, self.cnonly_key),
        }[which]

    def fingerprint(self, which):
        """sha256:HEX of a certificate, for tls_fingerprint."""
        import hashlib

        with open(self.pair(which)[0]) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        return "sha256:" + hashlib.sha256(der).hexdigest()

    def client_context(self):
        """An ssl context that trusts the test CA, for harness clients."""
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx


def _openssl(args, cwd):
    p = subprocess.run(
        [OPENSSL_BIN] + args,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if p.returncode != 0:
        raise HarnessError(
            "openssl %s failed:\n%s" % (" ".join(args), p.stdout.decode(errors="replace"))
        )


def make_ca(d):
    """Create a test CA and four server certificates in directory d.

    EC P-256 keys, so this takes a few milliseconds.  Returns a Certs."""
    if shutil.which(OPENSSL_BIN) is None:
        raise HarnessError("openssl not found")
    os.makedirs(d, exist_ok=True)
    c = Certs(d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        ["req", "-x509"] + ec + [
            "-keyout", c.ca_key, "-out", c.ca, "-days", "3650",
            "-subj", "/O=mailfetch tests/CN=mailfetch test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        d,
    )

    def leaf(cert, key, cn, san, serial):
        csr = cert + ".csr"
        ext = cert + ".ext"
        with open(ext, "w") as f:
            f.write(
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n"
                + ("subjectAltName=%s\n" % san if san else "")
            )
        _openssl(["req", "-new"] + ec + ["-keyout", key, "-out", csr, "-subj", "/CN=" + cn], d)
        _openssl(
            [
                "x509", "-req", "-in", csr, "-CA", c.ca, "-CAkey", c.ca_key,
                "-set_serial", str(serial), "-days", "365", "-sha256",
                "-extfile", ext, "-out", cert,
            ],
            d,
        )

    leaf(c.good_cert, c.good_key, "localhost", "DNS:localhost,IP:127.0.0.1,IP:::1", 1001)
    leaf(c.wrong_cert, c.wrong_key, "wrong.example", "DNS:wrong.example", 1002)
    leaf(c.cnonly_cert, c.cnonly_key, "localhost", None, 1003)
    # Self-signed, names right, but no CA the client trusts signed it.
    _openssl(
        ["req", "-x509"] + ec + [
            "-keyout", c.untrusted_key, "-out", c.untrusted_cert, "-days", "365",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "extendedKeyUsage=serverAuth",
        ],
        d,
    )
    for k in (c.ca_key, c.good_key, c.wrong_key, c.untrusted_key, c.cnonly_key):
        os.chmod(k, 0o600)
    return c


# ---------------------------------------------------------------------------
# Messages


def crlf(b):
    """LF -> CRLF (input must be LF-only)."""
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def lf(b):
    return b.replace(b"\r\n", b"\n")


def sample_message(i, size=0, marker=None, subject=None, sender=None):
    """A deterministic LF-only test message, number i, at least `size` bytes.

    The body has lines that an mbox writer must quote (`From `, `>From `,
    `>>From `), lines it must not touch (`From:`, ` From `, `from `),
    8-bit UTF-8, a tab, trailing blanks, a lone dot, and blank lines.
    `marker` (str) is put in a header and in the body."""
    sender = sender or "sender%d@example.org" % i
    subject = subject or "mailfetch test message %d" % i
    hdr = [
        "Return-Path: <%s>" % sender,
        "From: Test Sender %d <%s>" % (i, sender),
        "To: Alice <alice@localhost>",
        "Subject: %s" % subject,
        "Date: Mon, 01 Jan 2024 12:%02d:%02d +0000" % ((i // 60) % 60, i % 60),
        "Message-ID: <mailfetch-test-%d@example.org>" % i,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    if marker:
        hdr.append("X-Test-Marker: %s" % marker)
    body = [
        "Hello Alice,",
        "",
        "this is message number %d." % i,
        "From the beginning of a line this must be quoted in an mbox.",
        ">From an already quoted line (mboxrd adds one more >).",
        ">>From a doubly quoted line.",
        "From:not a From_ line (no space).",
        " From with a leading space stays as it is.",
        "from lower case stays as it is.",
        "Caf\u00e9 cr\u00e8me \u2013 8-bit UTF-8 text.",
        "a\ttab and trailing blanks   ",
        ".",
        "",
        "From ",
    ]
    if marker:
        body.append("marker: %s" % marker)
    text = ("\n".join(hdr) + "\n\n" + "\n".join(body) + "\n").encode("utf-8")
    n = 0
    lines = [text]
    total = len(text)
    while total < size:
        n += 1
        if n % 17 == 0:
            line = b"From line %d of padding in message %d\n" % (n, i)
        elif n % 23 == 0:
            line = b">From quoted padding %d\n" % n
        else:
            line = b"padding line %06d of message %d: abcdefghijklmnopqrstuvwxyz 0123456789\n" % (n, i)
        lines.append(line)
        total += len(line)
    return b"".join(lines)


def sample_messages(n, sizes=(800, 3000, 20000, 1500, 70000, 400, 9000)):
    """n deterministic messages of varying size."""
    return [sample_message(i + 1, sizes[i % len(sizes)]) for i in range(n)]


def big_message(size=25 * 1024 * 1024, i=999):
    """A message of about `size` bytes (LF only), made in well under a second.

    Every 1000th body line starts with `From ` so quoting happens at scale."""
    head = sample_message(i, 0, subject="big message %d bytes" % size)
    block_lines = []
    for k in range(1000):
        if k == 500:
            block_lines.append(b"From inside the big message, block @@@@@@\n")
        elif k == 700:
            block_lines.append(b">From quoted inside the big message, block @@@@@@\n")
        else:
            block_lines.append(b"big body line %04d ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789\n" % k)
    block = b"".join(block_lines)
    parts = [head]
    total = len(head)
    nblock = 0
    while total < size:
        b = block.replace(b"@@@@@@", b"%06d" % nblock)
        parts.append(b)
        total += len(b)
        nblock += 1
    return b"".join(parts)


FROM_LINE = re.compile(rb"^From ", re.M)
QUOTED_FROM = re.compile(rb"^>(>*From )", re.M)


def parse_mbox(data):
    """Split an mboxrd file into messages.

    A line starting with `From ` starts a message and is dropped; the one
    blank line mailfetch appends after each message is dropped; `>+From ` at
    a line start loses one `>`.  Returns a list of bytes.  Garbage before the
    first From_ line is returned as a message too (so a test sees it)."""
    if not data:
        return []
    starts = [m.start() for m in FROM_LINE.finditer(data)]
    chunks = []
    if not starts or starts[0] != 0:
        chunks.append((b"<<no From_ line>>\n", data[: starts[0] if starts else len(data)]))
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(data)
        nl = data.find(b"\n", s, end)
        if nl < 0:
            chunks.append((data[s:end], b""))
            continue
        chunks.append((data[s:nl], data[nl + 1 : end]))
    msgs = []
    for _fromline, body in chunks:
        if body.endswith(b"\n\n"):
            body = body[:-1]
        elif body.endswith(b"\n"):
            # no blank separator line: keep as is, the comparison will fail
            pass
        msgs.append(QUOTED_FROM.sub(rb"\1", body))
    return msgs


def mbox_from_lines(data):
    """The From_ lines of an mbox, as bytes without the newline."""
    return [data[m.start() : data.find(b"\n", m.start())] for m in FROM_LINE.finditer(data)]


def mbox_messages(path):
    """The messages of the mbox at path (none if it does not exist)."""
    return parse_mbox(read_file(path))


def subject_of(msg):
    """The Subject of msg (bytes), or None: a key to sort messages by."""
    m = re.search(rb"^Subject: (.*)$", lf(msg), re.M)
    return m.group(1).strip() if m else None


def read_maildir(d):
    """Contents of all messages in maildir d (new/ and cur/), sorted."""
    out = []
    for sub in ("new", "cur"):
        p = os.path.join(d, sub)
        if not os.path.isdir(p):
            continue
        for name in sorted(os.listdir(p)):
            with open(os.path.join(p, name), "rb") as f:
                out.append(f.read())
    return out


def read_maildir_like(d):
    """Contents of the regular files in d whose names do not start with a
    dot, sorted by name (what the tests' script MDAs write)."""
    out = []
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if not name.startswith(".") and os.path.isfile(p):
            with open(p, "rb") as f:
                out.append(f.read())
    return out


def read_file(path, default=b""):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return default


# ---------------------------------------------------------------------------
# Dovecot


class Dovecot:
    """A throwaway Dovecot: IMAP (plain + STARTTLS) and IMAPS on 127.0.0.1.

    d        directory for everything (config, run, state, homes, log)
    certs    a Certs from make_ca
    cert     which server certificate: good, wrong, untrusted
    plaintext_auth  allow LOGIN without TLS (disable_plaintext_auth = no)

    As root, Dovecot's master stays root, the login and internal processes
    run as the Debian package's `dovenull` and `dovecot` users, and the mail
    processes run as `nobody` (Dovecot refuses uid 0 for mail); the
    directory tree is made traversable for them.  As an ordinary user every
    process runs as that user and no chroot is used."""

    def __init__(self, d, certs, cert="good", users=None, plaintext_auth=True, extra_conf="", ipv6=False,
                 lmtp=False, auth_mechanisms="plain login", password_scheme="PLAIN", oauth2_url=None):
        self.dir = os.path.abspath(d)
        # auth_mechanisms: Dovecot's list (e.g. "scram-sha-256" for a
        # server offering only SCRAM).  password_scheme: how passwd
        # stores the passwords: PLAIN, or SCRAM-SHA-256 / SCRAM-SHA-1
        # (stored credentials made by `doveadm pw`, so nothing else can
        # log in).  oauth2_url: a token introspection endpoint (RFC 7662,
        # POST) for an oauth2 passdb that takes XOAUTH2 and OAUTHBEARER
        # (tests/lib/fakeoauth.py serves one); the mechanisms are added.
        self.auth_mechanisms = auth_mechanisms
        self.password_scheme = password_scheme
        self.oauth2_url = oauth2_url
        # lmtp: also run Dovecot's LMTP service (package dovecot-lmtpd) on
        # a unix socket in base_dir (self.lmtp_socket) and on
        # 127.0.0.1:self.lmtp_port,
        # delivering into the users' INBOX.
        self.lmtp = lmtp
        self.lmtp_port = None
        self.lmtp_socket = os.path.join(self.dir, "run", "lmtp-test") if lmtp else None
        self.listen = "127.0.0.1, ::1" if ipv6 else "127.0.0.1"
        self.certs = certs
        self.cert = cert
        self.users = dict(USERS if users is None else users)
        self.plaintext_auth = plaintext_auth
        self.extra_conf = extra_conf
        self.proc = None
        self.host = "127.0.0.1"
        self.port = None  # plain / STARTTLS
        self.ssl_port = None  # implicit TLS
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self._stopped = False

    # -- setup ------------------------------------------------------------

    def _ids(self):
        import grp
        import pwd

        if os.geteuid() == 0:
            try:
                mail = pwd.getpwnam("nobody")
                mail_uid = mail.pw_uid
                mail_gid = mail.pw_gid
            except KeyError:
                raise HarnessError("running as root needs a `nobody` user for the mail processes")
            internal = "dovecot"
            login = "dovenull"
            for u in (internal, login):
                try:
                    pwd.getpwnam(u)
                except KeyError:
                    raise HarnessError("running as root needs the `%s` user (Debian's dovecot-core makes it)" % u)
            internal_group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
            return dict(
                root=True, mail_uid=mail_uid, mail_gid=mail_gid, internal=internal,
                internal_group=internal_group, login=login,
            )
        uid, gid = os.getuid(), os.getgid()
        name = pwd.getpwuid(uid).pw_name
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:
            group = str(gid)
        return dict(root=False, mail_uid=uid, mail_gid=gid, internal=name, internal_group=group, login=name)

    def _write_conf(self, ids):
        cert, key = self.certs.pair(self.cert)
        d = self.dir
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        passwd = os.path.join(d, "passwd")
        with open(passwd, "w") as f:
            for u, pw in self.users.items():
                home = os.path.join(d, "home", u)
                os.makedirs(home, exist_ok=True)
                if ids["root"]:
                    os.chown(home, ids["mail_uid"], ids["mail_gid"])
                f.write("%s:%s:%d:%d::%s::\n" % (u, self._stored(pw), ids["mail_uid"], ids["mail_gid"], home))
        if ids["root"]:
            # The auth process (user dovecot) reads passwd; mail processes
            # (nobody) walk down to their homes.
            os.chmod(passwd, 0o644)
            for p in (d, os.path.join(d, "home")):
                os.chmod(p, 0o755)
            parent = os.path.dirname(d)
            while parent not in ("/", ""):
                st = os.stat(parent)
                if not (st.st_mode & 0o001):
                    os.chmod(parent, st.st_mode | 0o011)
                if parent == tempfile.gettempdir():
                    break
                parent = os.path.dirname(parent)
        chroot = "" if not ids["root"] else "login"
        # No auth penalty: a test's deliberate wrong password must not slow
        # down the harness's own logins from the same 127.0.0.1.
        services = """
service anvil {
  %s
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
""" % ("" if ids["root"] else "chroot =")
        if not ids["root"]:
            services += """
service auth-worker {
  user = $default_internal_user
}
"""
        conf = """# generated by the mailfetch test harness
instance_name = mailfetch-test-%(tag)s
base_dir = %(d)s/run
state_dir = %(d)s/state
protocols = %(protocols)s
listen = %(listen)s
shutdown_clients = yes
log_path = %(d)s/dovecot.log
info_log_path = %(d)s/dovecot.log
debug_log_path = %(d)s/dovecot.log
auth_verbose = yes
auth_failure_delay = 0
auth_mechanisms = %(mechs)s
disable_plaintext_auth = %(dpa)s
ssl = yes
ssl_cert = <%(cert)s
ssl_key = <%(key)s
ssl_min_protocol = TLSv1.2
default_internal_user = %(internal)s
default_internal_group = %(internal_group)s
default_login_user = %(login)s
first_valid_uid = %(mail_uid)d
last_valid_uid = %(mail_uid)d
first_valid_gid = %(mail_gid)d
last_valid_gid = %(mail_gid)d
mail_location = maildir:~/Maildir
imap_capability = +UIDPLUS
%(oauth2)s
passdb {
  driver = passwd-file
  args = %(d)s/passwd
}
userdb {
  driver = passwd-file
  args = %(d)s/passwd
}
service imap-login {
  chroot = %(chroot)s
  inet_listener imap {
    address = %(listen)s
    port = %(port)d
  }
  inet_listener imaps {
    address = %(listen)s
    port = %(ssl_port)d
    ssl = yes
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
%(nonroot)s
%(lmtp)s
%(extra)s
""" % dict(
            tag="%d-%d" % (os.getpid(), id(self) & 0xFFFF),
            d=d, cert=cert, key=key, dpa="no" if self.plaintext_auth else "yes",
            port=self.port, ssl_port=self.ssl_port, listen=self.listen, chroot=chroot, nonroot=services,
            extra=self.extra_conf, protocols="imap lmtp" if self.lmtp else "imap",
            lmtp=self._lmtp_conf(), oauth2=self._oauth2_conf(),
            mechs=self.auth_mechanisms + (" xoauth2 oauthbearer" if self.oauth2_url else ""), **ids
        )
        with open(self.conf, "w") as f:
            f.write(conf)
        if ids["root"]:
            os.chmod(self.conf, 0o644)

    def _stored(self, pw):
        if self.password_scheme == "PLAIN":
            return "{PLAIN}" + pw
        p = subprocess.run(["doveadm", "pw", "-s", self.password_scheme, "-p", pw], capture_output=True, timeout=30)
        if p.returncode != 0:
            raise HarnessError("doveadm pw -s %s failed: %s" % (self.password_scheme, p.stderr.decode(errors="replace")))
        return p.stdout.decode().strip()

    def _oauth2_conf(self):
        if not self.oauth2_url:
            return ""
        path = os.path.join(self.dir, "oauth2.conf.ext")
        with open(path, "w") as f:
            f.write("introspection_mode = post\nintrospection_url = %s\nforce_introspection = yes\n"
                    "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
                    "timeout_msecs = 10000\n" % self.oauth2_url)
        os.chmod(path, 0o644)
        return """passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = %s
}
""" % path

    def _lmtp_conf(self):
        """The LMTP service: no headers of Dovecot's own but the
        Return-Path it always prepends, so that a test compares what was
        delivered with what was sent."""
        if not self.lmtp:
            return ""
        return """service lmtp {
  unix_listener %s {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = %d
  }
}
lmtp_add_received_header = no
lmtp_hdr_delivery_address = none
""" % (os.path.basename(self.lmtp_socket), self.lmtp_port)

    def start(self, timeout=15.0, keep_ports=False):
        """keep_ports: start again on the ports of the last start (a restart
        the clients must find where they left it)."""
        if not os.access(DOVECOT_BIN, os.X_OK):
            raise Skip("%s not installed" % DOVECOT_BIN)
        if self.lmtp and not os.access(DOVECOT_LMTP_BIN, os.X_OK):
            raise Skip("%s not installed (package dovecot-lmtpd)" % DOVECOT_LMTP_BIN)
        os.makedirs(self.dir, exist_ok=True)
        ids = self._ids()
        last = ""
        for attempt in range(6):
            if not keep_ports:
                self.port = free_port()
                self.ssl_port = free_port()
                if self.port == self.ssl_port:
                    continue
                if self.lmtp:
                    self.lmtp_port = free_port()
                    if self.lmtp_port in (self.port, self.ssl_port):
                        continue
            self._write_conf(ids)
            errf = open(os.path.join(self.dir, "dovecot.stderr"), "ab")
            self.proc = subprocess.Popen(
                [DOVECOT_BIN, "-F", "-c", self.conf],
                stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                start_new_session=True, preexec_fn=_set_pdeathsig, cwd=self.dir,
            )
            errf.close()
            add_cleanup(self.stop)
            self._stopped = False
            ok = wait_port(self.host, self.port, timeout, self.proc) and wait_port(
                self.host, self.ssl_port, timeout, self.proc
            )
            if ok and self.lmtp:
                ok = wait_port(self.host, self.lmtp_port, timeout, self.proc)
            if ok:
                return self
            self.stop()
            last = self.log_tail() + read_file(os.path.join(self.dir, "dovecot.stderr")).decode(errors="replace")
            if "in use" not in last:
                break
            if keep_ports:
                time.sleep(0.5)  # the old listener's port, not yet free
        raise HarnessError("dovecot did not start:\n" + last)

    def restart(self, down_for=0.0, before_start=None):
        """Stops Dovecot (as a crash would: SIGKILL), waits down_for seconds,
        calls before_start() if given, and starts it on the same ports."""
        self.stop()
        time.sleep(down_for)
        if before_start is not None:
            before_start()
        return self.start(keep_ports=True)

    def deliver_offline(self, user, msg, folder="INBOX"):
        """Puts msg straight into user's Maildir (new/), as local delivery
        would while the IMAP server is down; Dovecot finds it when it runs."""
        base = os.path.join(self.dir, "home", user, "Maildir")
        d = base if folder == "INBOX" else os.path.join(base, "." + folder)
        ids = self._ids()
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
            if ids["root"]:
                os.chown(os.path.join(d, sub), ids["mail_uid"], ids["mail_gid"])
        name = "%d.M%dP%d.harness" % (int(time.time()), int(time.time() * 1e6) % 1000000, os.getpid())
        path = os.path.join(d, "new", name)
        with open(path, "wb") as f:
            f.write(lf(msg))
        if ids["root"]:
            os.chown(path, ids["mail_uid"], ids["mail_gid"])
        return path

    def stop(self):
        if self.proc is None or self._stopped:
            return
        self._stopped = True
        pid = self.proc.pid
        # Dovecot's children share the process group we created for it.  A
        # graceful SIGTERM costs a second per instance; nothing here needs
        # it, the whole directory is thrown away.
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- logs ---------------------------------------------------------------

    def log(self):
        return read_file(self.log_path).decode("utf-8", "replace")

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:]) + "\n"

    def settle_log(self, quiet=0.2, timeout=3.0):
        """Wait until the log file has not grown for `quiet` seconds (log
        lines travel through Dovecot's log process and arrive a bit late)."""
        deadline = time.monotonic() + timeout
        size = -1
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            try:
                cur = os.path.getsize(self.log_path)
            except OSError:
                cur = 0
            if cur != size:
                size = cur
                stable_since = time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                return
            time.sleep(0.02)

    def login_lines(self, user=None):
        """Log lines of successful IMAP logins (of user), oldest first."""
        pat = re.compile(r"imap-login: (?:Info: )?Login: user=<%s>" % (re.escape(user) if user else r"[^>]*"))
        return [l for l in self.log().splitlines() if pat.search(l)]

    def login_count(self, user=None):
        """How many successful IMAP logins the log shows (of user)."""
        pat = r"imap-login: (?:Info: )?Login: user=<%s>" % (re.escape(user) if user else r"[^>]*")
        return len(re.findall(pat, self.log()))

    # -- IMAP access for seeding and inspection ------------------------------

    def imap(self, user, via="imaps"):
        """A logged-in imaplib connection.  via: imaps, starttls, plain."""
        pw = self.users[user]
        if self.cert == "good":
            ctx = self.certs.client_context()
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if via == "imaps":
            c = imaplib.IMAP4_SSL(self.host, self.ssl_port, ssl_context=ctx, timeout=30)
        else:
            c = imaplib.IMAP4(self.host, self.port, timeout=30)
            if via == "starttls":
                c.starttls(ssl_context=ctx)
        if "plain" in self.auth_mechanisms.split():
            c.login(user, pw)
        else:
            # a server that offers only SCRAM: LOGIN would be refused
            import scram

            mech = "SCRAM-SHA-256" if "scram-sha-256" in self.auth_mechanisms.split() else "SCRAM-SHA-1"
            c.authenticate(mech, scram.Client(mech, user, pw))
        return c

    @staticmethod
    def _q(folder):
        return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def create(self, user, folder):
        c = self.imap(user)
        try:
            typ, data = c.create(self._q(folder))
            if typ != "OK" and b"exists" not in b" ".join(d or b"" for d in data).lower():
                raise HarnessError("CREATE %s: %r" % (folder, data))
        finally:
            c.logout()

    def append(self, user, folder, msg, flags=(), create=True, date='"01-Jan-2024 12:00:00 +0000"'):
        """APPEND one LF-only message (sent as CRLF); returns its UID."""
        return self.append_many(user, folder, [msg], flags, create, date)[0]

    def append_many(self, user, folder, msgs, flags=(), create=True, date='"01-Jan-2024 12:00:00 +0000"'):
        c = self.imap(user)
        uids = []
        try:
            if create and folder.upper() != "INBOX":
                c.create(self._q(folder))
            fl = "(" + " ".join(flags) + ")" if flags else None
            for m in msgs:
                typ, data = c.append(self._q(folder), fl, date, crlf(m))
                if typ != "OK":
                    raise HarnessError("APPEND failed: %r" % data)
                mm = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
                uids.append(int(mm.group(1)) if mm else None)
        finally:
            c.logout()
        return uids

    def flags(self, user, folder="INBOX"):
        """{uid: set of flags} of every message in folder."""
        c = self.imap(user)
        try:
            typ, data = c.select(self._q(folder), readonly=True)
            if typ != "OK":
                raise HarnessError("EXAMINE %s: %r" % (folder, data))
            typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
            if typ != "OK":
                raise HarnessError("FETCH FLAGS: %r" % data)
            out = {}
            for item in data:
                if item is None:
                    continue
                if isinstance(item, tuple):
                    item = item[0]
                mu = re.search(rb"UID (\d+)", item)
                mf = re.search(rb"FLAGS \(([^)]*)\)", item)
                if mu and mf:
                    # \Recent depends on the session, not on what a client did
                    out[int(mu.group(1))] = set(x.decode() for x in mf.group(1).split()) - {"\\Recent"}
            return out
        finally:
            c.logout()

    def uids(self, user, folder="INBOX", criteria="ALL"):
        c = self.imap(user)
        try:
            c.select(self._q(folder), readonly=True)
            typ, data = c.uid("SEARCH", criteria)
            if typ != "OK":
                raise HarnessError("SEARCH: %r" % data)
            return [int(x) for x in (data[0] or b"").split()]
        finally:
            c.logout()

    def count(self, user, folder="INBOX"):
        return len(self.uids(user, folder))

    def fetch(self, user, folder, uid):
        """BODY.PEEK[] of one message, CRLF as stored."""
        c = self.imap(user)
        try:
            c.select(self._q(folder), readonly=True)
            typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    return item[1]
            return None
        finally:
            c.logout()


# ---------------------------------------------------------------------------
# Exim: a real SMTP server


EXIM_BIN = os.environ.get("EXIM") or shutil.which("exim4") or shutil.which("exim") or "/usr/sbin/exim4"


class Exim:
    """A throwaway Exim (Debian's exim4-daemon-light) on a free 127.0.0.1
    port, with a config of ours: every recipient is accepted and delivered
    into one Maildir (self.maildir), as the message arrived (no Received:
    header of Exim's, no Return-Path, Envelope-to or Delivery-date); the
    envelopes are in its log (envelopes()).

    Why Exim: it is Debian's default MTA (procmail and bsd-mailx already
    pull it in), one binary runs a daemon on any port with a config file
    and spool of ours (-C, -bdf), several instances side by side, nothing
    needs starting or stopping system-wide; Postfix needs postmulti and a
    queue owned by its own user, OpenSMTPD one fixed control socket and
    queue per machine.  Whatever a package's postinst started on port 25
    is never used.

    As root, Exim gives up root for deliveries when -C names another
    config: the spool and log directory belong to the Exim user and the
    messages are written as that user.  As an ordinary user everything
    runs as that user."""

    def __init__(self, d, size_limit="50M", extra_conf=""):
        self.dir = os.path.abspath(d)
        self.size_limit = size_limit
        self.extra_conf = extra_conf
        self.host = "127.0.0.1"
        self.port = None
        self.maildir = os.path.join(self.dir, "maildir")
        self.conf = os.path.join(self.dir, "exim.conf")
        self.log_path = os.path.join(self.dir, "log", "mainlog")
        self.proc = None
        self._stopped = False

    def _user(self):
        import pwd

        if os.geteuid() != 0:
            return pwd.getpwuid(os.getuid()).pw_name
        for name in ("Debian-exim", "exim"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                pass
        raise HarnessError("running Exim as root needs its user (Debian-exim, made by exim4-base)")

    def _write_conf(self, user):
        import pwd

        pw = pwd.getpwnam(user)
        for sub in ("spool", "log", "maildir", "maildir/new", "maildir/cur", "maildir/tmp"):
            p = os.path.join(self.dir, sub)
            os.makedirs(p, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(p, pw.pw_uid, pw.pw_gid)
        if os.geteuid() == 0:
            os.chmod(self.dir, 0o755)
            parent = os.path.dirname(self.dir)
            while parent not in ("/", ""):
                st = os.stat(parent)
                if not (st.st_mode & 0o001):
                    os.chmod(parent, st.st_mode | 0o011)
                if parent == tempfile.gettempdir():
                    break
                parent = os.path.dirname(parent)
        conf = """# generated by the mailfetch test harness
exim_path = %(bin)s
keep_environment =
spool_directory = %(d)s/spool
log_file_path = %(d)s/log/%%slog
pid_file_path = %(d)s/exim.pid
primary_hostname = exim-test.localhost
qualify_domain = localhost
local_interfaces = <; 127.0.0.1
daemon_smtp_ports = %(port)d
# no Received: header of Exim's: the tests compare what arrives
received_header_text =
# and headers of those names in the messages stay where they are
return_path_remove = false
envelope_to_remove = false
delivery_date_remove = false
message_size_limit = %(size)s
# every message of a session delivered at once (the default queues after 10)
smtp_accept_queue_per_connection = 0
smtp_accept_max = 50
tls_advertise_hosts =
smtputf8_advertise_hosts = *
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = accept
acl_smtp_data = accept
%(extra)s

begin routers

everything:
  driver = accept
  transport = into_maildir

begin transports

into_maildir:
  driver = appendfile
  directory = %(maildir)s
  maildir_format
  create_directory
  delivery_date_add = false
  envelope_to_add = false
  return_path_add = false
  user = %(user)s
  mode = 0644
""" % dict(bin=EXIM_BIN, d=self.dir, port=self.port, size=self.size_limit, extra=self.extra_conf,
           maildir=self.maildir, user=user)
        with open(self.conf, "w") as f:
            f.write(conf)
        os.chmod(self.conf, 0o644)

    def start(self, timeout=15.0):
        if not os.access(EXIM_BIN, os.X_OK):
            raise Skip("%s not installed (package exim4-daemon-light)" % EXIM_BIN)
        os.makedirs(self.dir, exist_ok=True)
        user = self._user()
        last = ""
        for attempt in range(6):
            self.port = free_port()
            self._write_conf(user)
            errf = open(os.path.join(self.dir, "exim.stderr"), "ab")
            self.proc = subprocess.Popen(
                [EXIM_BIN, "-C", self.conf, "-bdf"],
                stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                start_new_session=True, preexec_fn=_set_pdeathsig, cwd=self.dir,
            )
            errf.close()
            add_cleanup(self.stop)
            self._stopped = False
            if wait_port(self.host, self.port, timeout, self.proc):
                return self
            self.stop()
            last = self.log_tail() + read_file(os.path.join(self.dir, "exim.stderr")).decode(errors="replace")
            if "in use" not in last:
                break
        raise HarnessError("exim did not start:\n" + last)

    def stop(self):
        if self.proc is None or self._stopped:
            return
        self._stopped = True
        # The daemon and the delivery processes it forked share the group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def log(self):
        out = read_file(self.log_path).decode("utf-8", "replace")
        return out + read_file(os.path.join(self.dir, "log", "paniclog")).decode("utf-8", "replace")

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:]) + "\n"

    def envelopes(self):
        """[(sender, [recipients])] of every message received, in order
        of reception; sender "" for <>."""
        ids, rcpts = [], {}
        for line in self.log().splitlines():
            m = re.search(r"(\S{6}-\S{6}-\S{2,4}) <= (\S+) ", line)
            if m:
                ids.append((m.group(1), "" if m.group(2) == "<>" else m.group(2)))
                continue
            m = re.search(r"(\S{6}-\S{6}-\S{2,4}) [=-]> (\S+)(?: <([^>]*)>)?", line)
            if m:
                rcpts.setdefault(m.group(1), []).append(m.group(3) or m.group(2))
        return [(sender, rcpts.get(i, [])) for i, sender in ids]

    def messages(self):
        """What was delivered (LF line ends), in the order of delivery
        (which need not be the order of reception: sort to compare)."""
        out = []
        new = os.path.join(self.maildir, "new")
        if not os.path.isdir(new):
            return out
        names = sorted(os.listdir(new), key=lambda n: (os.stat(os.path.join(new, n)).st_mtime_ns, n))
        for name in names:
            with open(os.path.join(new, name), "rb") as f:
                out.append(f.read())
        return out

    def wait_messages(self, n, timeout=20.0):
        """Waits until n messages are in the Maildir (deliveries run after
        the 250 in processes of their own); returns messages()."""
        wait_for(lambda: len(self.messages()) >= n, timeout=timeout)
        return self.messages()


def strip_received(data):
    """(the first header field, the rest) of a message, LF or CRLF: the
    Received: header mailfetch prepends for SMTP and LMTP."""
    nl = b"\r\n" if data[: data.find(b"\n") + 1].endswith(b"\r\n") else b"\n"
    end = 0
    while True:
        k = data.find(nl, end)
        if k < 0:
            return data, b""
        end = k + len(nl)
        if data[end : end + 1] not in (b" ", b"\t"):
            return data[:end], data[end:]


def make_leaf(certs, name, cn, san):
    """One more server certificate signed by the test CA (san: e.g.
    "IP:0.0.0.0"); returns (cert, key) paths in the CA's directory."""
    cert = os.path.join(certs.dir, name + ".pem")
    key = os.path.join(certs.dir, name + ".key")
    csr, ext = cert + ".csr", cert + ".ext"
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=%s\n" % san)
    _openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", key, "-out", csr, "-subj", "/CN=" + cn], certs.dir)
    _openssl(["x509", "-req", "-in", csr, "-CA", certs.ca, "-CAkey", certs.ca_key, "-set_serial",
              str(2000 + len(os.listdir(certs.dir))), "-days", "365", "-sha256", "-extfile", ext, "-out", cert],
             certs.dir)
    os.chmod(key, 0o600)
    return cert, key


# ---------------------------------------------------------------------------
# Running mailfetch


def mailfetch_binary():
    return os.path.abspath(os.environ.get("MAILFETCH") or os.path.join(SRCDIR, "src", "mailfetch"))


def binary_is_sanitized(path=None):
    """True if the binary is built with ASan/MSan/valgrind-style tooling, where
    memory limits are meaningless."""
    path = path or mailfetch_binary()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__msan_init" in data or b"__hwasan_init" in data


class Result:
    """What one mailfetch run did."""

    def __init__(self, args, code, out, err, rusage, config_path, elapsed):
        self.args = args
        self.code = code
        self.out = out
        self.err = err
        self.rusage = rusage
        self.config_path = config_path
        self.elapsed = elapsed

    def __iter__(self):
        """Unpacks as (code, stdout bytes, stderr bytes, rusage)."""
        return iter((self.code, self.out, self.err, self.rusage))

    @property
    def stdout(self):
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self):
        return self.err.decode("utf-8", "replace")

    @property
    def output(self):
        """stdout + stderr as text."""
        return self.stdout + self.stderr

    @property
    def maxrss_kib(self):
        return self.rusage.ru_maxrss if self.rusage else None

    def __str__(self):
        def cut(s, n=6000):
            return s if len(s) <= n else s[:2000] + "\n[... %d bytes ...]\n" % (len(s) - 4000) + s[-2000:]

        return "mailfetch %s\n  exit %s, %.2fs, maxrss %s KiB\n--- stdout\n%s--- stderr\n%s---" % (
            " ".join(shlex.quote(a) for a in self.args), self.code, self.elapsed,
            self.maxrss_kib, cut(self.stdout), cut(self.stderr),
        )


# mailfetch runs as the child of a small sh, not of this Python process.
# Linux carries a process's peak RSS across fork and exec (a forked child
# starts with the parent's resident pages counted, and exec keeps the old
# high-water mark), so a child of a test holding a 25 MB message would
# "use" that much before it ran one instruction of mailfetch.  The sh is
# tiny; it waits for mailfetch and then execs a reporter that writes
# RUSAGE_CHILDREN (that is: mailfetch and whatever mailfetch itself waited
# for, e.g. its MDA) to a file, and exits with mailfetch's status.
# Runs mailfetch (argv after the pid and report files), writes its pid, and
# when it ends, its wait status and the rusage of what it waited for.  A
# Python runner, not sh: sh reports death by signal N as 128+N, which is
# also an exit status mailfetch may choose (stopped by a signal, cleanly).
_RUNNER = r"""
import os, resource, signal, sys
pidf, rep, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
ignored = signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # or the kernel reaps it for us
pid = os.fork()
if pid == 0:
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)  # what Python changed, as a shell would leave it
    if ignored:
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    fd = os.open("/dev/null", os.O_RDONLY)
    os.dup2(fd, 0)
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
with open(pidf, "w") as f:
    f.write("%d\n" % pid)
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only the harness's group kill; mailfetch answers
while True:
    try:
        _, status = os.waitpid(pid, 0)
        break
    except InterruptedError:
        continue
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(rep, "w") as f:
    f.write(" ".join("%s=%r" % (k, getattr(ru, k)) for k in dir(ru) if k.startswith("ru_")))
    f.write(" status=%d" % status)
sys.exit(0)
"""


class Rusage:
    """ru_* fields of a finished mailfetch run (ru_maxrss in KiB)."""

    def __init__(self, text):
        for item in text.split():
            k, _, v = item.partition("=")
            try:
                setattr(self, k, float(v) if "." in v else int(v))
            except ValueError:
                pass

    def __repr__(self):
        return "Rusage(%s)" % ", ".join("%s=%s" % kv for kv in sorted(vars(self).items()))


class Running:
    """A mailfetch process started by start_mailfetch(); wait() -> Result."""

    _seq = 0

    def __init__(self, argv, env, config_path, timeout, cwd, tmpdir, on_result=None):
        self.on_result = on_result
        Running._seq += 1
        self.argv = argv
        self.config_path = config_path
        self.t0 = time.monotonic()
        tag = "%d-%d" % (os.getpid(), Running._seq)
        self._pidfile = os.path.join(tmpdir, ".mailfetch-%s.pid" % tag)
        self._report = os.path.join(tmpdir, ".mailfetch-%s.rusage" % tag)
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _RUNNER, self._pidfile, self._report] + list(argv),
            env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=_set_pdeathsig,
        )
        self._out = []
        self._err = []
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.timed_out = False
        self._timer = threading.Timer(timeout, self._timeout)
        self._timer.daemon = True
        self._timer.start()
        self._result = None
        add_cleanup(self._kill_group)

    @staticmethod
    def _drain(f, sink):
        while True:
            b = f.read1(65536)  # what is there: a running daemon's lines are wanted as they come
            if not b:
                break
            sink.append(b)

    def _timeout(self):
        if self.proc.returncode is None:
            self.timed_out = True
            self._kill_group()

    def _kill_group(self):
        """SIGKILL the runner, mailfetch and mailfetch's children (they
        share the process group made for the runner)."""
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    @property
    def pid(self):
        """mailfetch's own pid (waits briefly for the runner to say it)."""
        got = wait_for(lambda: read_file(self._pidfile).strip(), timeout=10)
        if not got:
            raise HarnessError("mailfetch runner did not report a pid")
        return int(got)

    def kill(self, sig=signal.SIGKILL):
        """Send sig to the mailfetch process itself."""
        os.kill(self.pid, sig)

    def stderr_so_far(self):
        """What mailfetch has written to stderr up to now (it may still run)."""
        return b"".join(list(self._err))

    def poll(self):
        """True if the run has finished (does not reap it)."""
        try:
            r = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return r is not None

    def wait(self):
        if self._result is not None:
            return self._result
        _pid, status, _ru = os.wait4(self.proc.pid, 0)
        self._timer.cancel()
        rep = read_file(self._report).decode()
        m = re.search(r"\bstatus=(\d+)", rep)
        if m:
            status = int(m.group(1))  # mailfetch's own, as the runner saw it
        if os.WIFSIGNALED(status):
            code = -os.WTERMSIG(status)  # killed by that signal
        else:
            code = os.WEXITSTATUS(status)
        self.proc.returncode = code  # tell Popen it has been reaped
        for t in self._threads:
            t.join(10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        rusage = Rusage(rep) if rep else None
        for p in (self._pidfile, self._report):
            try:
                os.unlink(p)
            except OSError:
                pass
        self._result = Result(
            self.argv[1:], code, b"".join(self._out), b"".join(self._err), rusage,
            self.config_path, time.monotonic() - self.t0,
        )
        if self.timed_out:
            self._result.err += b"\n[harness: killed after timeout]\n"
        if self.on_result:
            self.on_result(self._result)
        return self._result


def mailfetch_env(tmpdir, env=None):
    """Environment for a mailfetch run: HOME and XDG dirs under tmpdir."""
    e = dict(os.environ)
    for k in ("SSL_CERT_FILE", "SSL_CERT_DIR", "MAIL", "MAILDIR", "LOGNAME_OVERRIDE"):
        e.pop(k, None)
    home = os.path.join(tmpdir, "home")
    e["HOME"] = home
    e["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    e["XDG_STATE_HOME"] = os.path.join(home, ".local", "state")
    e["XDG_RUNTIME_DIR"] = os.path.join(tmpdir, "runtime")
    e["LC_ALL"] = "C"
    for p in (home, e["XDG_CONFIG_HOME"], e["XDG_STATE_HOME"]):
        os.makedirs(p, exist_ok=True)
    os.makedirs(e["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
    # A sanitizer report must not pass for a documented exit code (ASan's
    # default 1 is "no new mail", LeakSanitizer's 23 "internal error").
    for var in ("ASAN_OPTIONS", "LSAN_OPTIONS"):
        cur = e.get(var, "")
        if "exitcode=" not in cur:
            e[var] = (cur + ":" if cur else "") + "exitcode=86"
    if env:
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
    return e


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: MemorySanitizer", "WARNING: ThreadSanitizer")


def write_config(path, text, mode=0o600):
    """Write a config file with the given mode (set before any content)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def start_mailfetch(args, config_text=None, tmpdir=None, env=None, config_mode=0o600,
                    config_name="fetchrc", timeout=60, binary=None, cwd=None, on_result=None):
    """Start mailfetch without waiting; returns a Running.

    config_text: written to tmpdir/config_name (mode config_mode) and passed
    with -c first; None: no -c is added."""
    if tmpdir is None:
        tmpdir = tempfile.mkdtemp(prefix="mf-run-")
        add_cleanup(lambda: shutil.rmtree(tmpdir, ignore_errors=True))
    binary = binary or mailfetch_binary()
    if not os.access(binary, os.X_OK):
        raise HarnessError("mailfetch binary not found: %s (set MAILFETCH)" % binary)
    cfg = None
    argv = [binary]
    if config_text is not None:
        cfg = write_config(os.path.join(tmpdir, config_name), config_text, config_mode)
        argv += ["-c", cfg]
    argv += list(args)
    return Running(argv, mailfetch_env(tmpdir, env), cfg, timeout, cwd or tmpdir, tmpdir, on_result)


def run_mailfetch(args, config_text=None, tmpdir=None, env=None, config_mode=0o600,
                  config_name="fetchrc", timeout=60, binary=None, cwd=None):
    """Run mailfetch to completion; returns a Result with .code (negative:
    killed by that signal), .out, .err (bytes), .stdout/.stderr (text) and
    .rusage (of mailfetch and the children it waited for, not of this
    Python process; .maxrss_kib)."""
    return start_mailfetch(args, config_text, tmpdir, env, config_mode, config_name,
                           timeout, binary, cwd).wait()


def config(sections, defaults=None):
    """Build fetchrc text from {section: {key: value}} (dict order kept)."""
    out = []
    if defaults:
        out.append("[defaults]")
        out += ["%s = %s" % kv for kv in defaults.items()]
        out.append("")
    for name, keys in sections.items():
        out.append("[%s]" % name)
        out += ["%s = %s" % kv for kv in keys.items()]
        out.append("")
    return "\n".join(out)


def dovecot_keys(dv, user="alice", tls="implicit", **over):
    """Account keys for user on Dovecot dv (tls implicit or starttls), with
    the password in the config and delivery into an mbox unless overridden.
    A value of None drops a key."""
    keys = {
        "host": "127.0.0.1",
        "port": dv.ssl_port if tls == "implicit" else dv.port,
        "tls": tls,
        "tls_ca_file": dv.certs.ca,
        "user": user,
        "password": dv.users[user],
    }
    keys.update(over)
    return {k: v for k, v in keys.items() if v is not None}


def fake_keys(srv, tls="implicit", **over):
    """Account keys for a FakeIMAP server."""
    keys = {
        "host": "127.0.0.1",
        "port": srv.port,
        "tls": tls,
        "tls_ca_file": srv.certs.ca,
        "user": srv.user,
        "password": srv.password,
    }
    keys.update(over)
    return {k: v for k, v in keys.items() if v is not None}


def wait_for(pred, timeout=10.0, step=0.05):
    """Poll pred() until true; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def secret_forms(user, password):
    """Every form in which a password could leak into a trace: raw, quoted,
    and base64 of the SASL PLAIN and LOGIN payloads."""
    pw = password.encode()
    u = user.encode()
    forms = {
        "password": pw,
        "quoted password": pw.replace(b"\\", b"\\\\").replace(b'"', b'\\"'),
        "base64(\\0user\\0password)": base64.b64encode(b"\0" + u + b"\0" + pw),
        "base64(user\\0user\\0password)": base64.b64encode(u + b"\0" + u + b"\0" + pw),
        "base64(password)": base64.b64encode(pw),
    }
    return forms


# ---------------------------------------------------------------------------
# Test scaffolding


class Test:
    """One test script's context: a temp dir, soft and hard checks, and the
    servers it started (all stopped at exit)."""

    _uidvalidity = 1000000 + (os.getpid() % 1000) * 1000  # see fake()

    def __init__(self, name):
        self.name = name
        base = os.environ.get("MAILFETCH_TEST_TMPDIR") or None
        self.dir = tempfile.mkdtemp(prefix="mf-%s-" % re.sub(r"[^a-z0-9]+", "", name.lower())[:12], dir=base)
        self.failures = []
        self.results = []
        self.servers = []
        self._certs = None
        self._n = 0
        add_cleanup(self._cleanup)

    def _cleanup(self):
        keep = os.environ.get("MAILFETCH_KEEP_TMP")
        for s in self.servers:
            try:
                s.stop()
            except Exception:
                traceback.print_exc()
        if keep or (self.failures and os.environ.get("MAILFETCH_KEEP_FAILED")):
            print("note: test files kept in %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def mkdir(self, *parts):
        p = self.path(*parts)
        os.makedirs(p, exist_ok=True)
        return p

    def unique(self, prefix):
        self._n += 1
        return "%s%d" % (prefix, self._n)

    @property
    def certs(self):
        if self._certs is None:
            self._certs = make_ca(self.path("certs"))
        return self._certs

    def dovecot(self, **kw):
        d = Dovecot(self.path(self.unique("dovecot")), self.certs, **kw)
        self.servers.append(d)
        return d.start()

    def exim(self, **kw):
        e = Exim(self.path(self.unique("exim")), **kw)
        self.servers.append(e)
        return e.start()

    def fakesmtp(self, **kw):
        """A scripted fake SMTP/LMTP server (tests/lib/fakesmtp.py)."""
        sys.path.insert(0, HERE)
        import fakesmtp

        kw.setdefault("certs", self.certs)
        f = fakesmtp.FakeSMTP(**kw)
        self.servers.append(f)
        return f.start()

    def fake(self, **kw):
        sys.path.insert(0, HERE)
        import fakeimap

        kw.setdefault("log_path", self.path(self.unique("fakeimap") + ".log"))
        # Each fake server is a new mailbox, as far as UIDVALIDITY goes (a
        # real server never reuses one): mailfetch's state journal must not
        # take one test's fake mailbox for another's.
        Test._uidvalidity += 1
        kw.setdefault("uidvalidity", Test._uidvalidity)
        f = fakeimap.FakeIMAP(certs=self.certs, **kw)
        self.servers.append(f)
        return f.start()

    def _finished(self, r):
        """Every run: log it, keep it for the failure report, and fail the
        test on a sanitizer report or a timeout whatever the test expects."""
        self.results.append(r)
        self.log("ran: mailfetch %s -> exit %s (%.2fs)" % (" ".join(r.args[2:] if r.config_path else r.args), r.code, r.elapsed))
        text = r.stderr
        marks = [m for m in SANITIZER_MARKS if m in text]
        if marks:
            self.check(False, "no sanitizer report from mailfetch", r)
        if "[harness: killed after timeout]" in text:
            self.check(False, "mailfetch finished before the harness timeout", r)

    def run(self, args, config_text=None, **kw):
        """Run mailfetch (see run_mailfetch) with tmpdir = the test's dir."""
        kw.setdefault("tmpdir", self.dir)
        kw["on_result"] = self._finished
        return start_mailfetch(args, config_text, **kw).wait()

    def run_on_pty(self, args, cfg_path, timeout=60):
        """mailfetch -c cfg_path args with stderr on a pseudo-terminal (stdout
        a pipe, COLUMNS=200); returns (exit status, what the terminal got)."""
        import pty
        import select

        master, slave = pty.openpty()
        env = mailfetch_env(self.dir)
        env["COLUMNS"] = "200"
        p = subprocess.Popen([mailfetch_binary(), "-c", cfg_path] + list(args), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=slave, env=env, cwd=self.dir)
        os.close(slave)
        got = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                got += chunk
            elif p.poll() is not None:
                break
        p.wait(timeout=30)
        os.close(master)
        self.log("ran: mailfetch %s -> exit %d; terminal got %d bytes" % (" ".join(args), p.returncode, len(got)))
        return p.returncode, got

    def strace_wrapper(self, name, args):
        """A script that runs mailfetch under strace with args (a string of
        strace options), for a test's binary=; returns (path, strace log)."""
        log = self.path(name + ".strace")
        wrapper = self.path(name + ".sh")
        with open(wrapper, "w") as f:
            # LeakSanitizer cannot work under ptrace: leave it out of these runs.
            f.write("#!/bin/sh\nASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\"; export ASAN_OPTIONS\n"
                    "exec strace -f -qq -o '%s' %s '%s' \"$@\"\n" % (log, args, mailfetch_binary()))
        os.chmod(wrapper, 0o755)
        return wrapper, log

    def start(self, args, config_text=None, **kw):
        """Start mailfetch without waiting (see start_mailfetch)."""
        kw.setdefault("tmpdir", self.dir)
        kw["on_result"] = self._finished
        return start_mailfetch(args, config_text, **kw)

    # -- reporting ---------------------------------------------------------

    def log(self, msg):
        print(msg, flush=True)

    def check(self, cond, what, detail=None):
        """A soft assertion: records a failure and goes on."""
        if cond:
            print("ok: %s" % what, flush=True)
            return True
        self.failures.append(what)
        print("FAIL: %s" % what, flush=True)
        if detail is not None:
            print(_indent(str(detail)), flush=True)
        return False

    def require(self, cond, what, detail=None):
        """A hard assertion: stops the test on failure."""
        if not self.check(cond, what, detail):
            raise Failure(what)

    def eq(self, got, want, what, detail=None):
        if got == want:
            return self.check(True, what)
        d = "got:  %s\nwant: %s" % (_short(got), _short(want))
        if detail is not None:
            d += "\n" + str(detail)
        return self.check(False, what, d)

    def exit_code(self, r, want, what):
        """Check the exit code of Result r (want: int or a set)."""
        ok = r.code in want if isinstance(want, (set, frozenset, tuple, list)) else r.code == want
        return self.check(ok, "%s: exit %s (want %s)" % (what, r.code, want), None if ok else r)

    def messages_equal(self, got, want, what):
        """Compare lists of message bytes, in order, byte for byte."""
        if got == want:
            return self.check(True, "%s: %d message(s) byte-exact" % (what, len(want)))
        lines = ["got %d message(s), want %d" % (len(got), len(want))]
        for k in range(max(len(got), len(want))):
            g = got[k] if k < len(got) else None
            w = want[k] if k < len(want) else None
            if g != w:
                lines.append("message %d differs: %s" % (k + 1, _first_diff(g, w)))
        return self.check(False, what, "\n".join(lines))

    def no_secrets(self, text_bytes, user, password, what):
        leaked = [name for name, form in secret_forms(user, password).items() if form in text_bytes]
        return self.check(not leaked, "%s: no password form in output" % what,
                          "leaked: %s" % ", ".join(leaked) if leaked else None)


def _indent(s):
    return "\n".join("    " + l for l in s.splitlines())


def _short(x, n=300):
    s = repr(x)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def _first_diff(g, w):
    if g is None:
        return "missing (want %d bytes)" % len(w)
    if w is None:
        return "unexpected extra message (%d bytes): %r" % (len(g), g[:200])
    n = min(len(g), len(w))
    k = next((i for i in range(n) if g[i] != w[i]), n)
    return "%d vs %d bytes, first difference at byte %d:\n      got  %r\n      want %r" % (
        len(g), len(w), k, g[max(0, k - 60) : k + 60], w[max(0, k - 60) : k + 60])


def main(fn, name=None):
    """Run test function fn(t) and exit with the automake code."""
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    t = None
    code = EXIT_FAIL
    try:
        t = Test(name)
        fn(t)
        code = EXIT_FAIL if t.failures else EXIT_PASS
    except Skip as e:
        print("SKIP: %s" % e, flush=True)
        code = EXIT_SKIP
    except Failure:
        code = EXIT_FAIL
    except HarnessError as e:
        print("ERROR (harness): %s" % e, flush=True)
        code = EXIT_HARD
    except Exception:
        traceback.print_exc()
        print("FAIL: unexpected exception", flush=True)
        code = EXIT_FAIL
    if t is not None and code not in (EXIT_PASS, EXIT_SKIP):
        if t.failures:
            print("%d check(s) failed: %s" % (len(t.failures), "; ".join(t.failures)))
        for s in t.servers:
            dump = getattr(s, "log_tail", None)
            if dump:
                print("--- %s log tail (%s)" % (type(s).__name__, getattr(s, "dir", "")))
                print(dump())
        if t.results:
            print("--- last mailfetch run")
            print(t.results[-1])
    sys.stdout.flush()
    _run_cleanups()
    os._exit(code)


# ---------------------------------------------------------------------------
# Command line: demo and selftest


def _demo(argv):
    """Start Dovecot with sample mail, fetch it with mailfetch -v -v into an
    mbox, print where it went, stop Dovecot."""
    binary = os.environ.get("MAILFETCH") or ""
    if not binary:
        for cand in ("./src/mailfetch", os.path.join(SRCDIR, "src", "mailfetch")):
            if os.access(cand, os.X_OK):
                binary = cand
                break
    if not binary or not os.access(binary, os.X_OK):
        print("demo: no mailfetch binary (build it first, or set MAILFETCH)", file=sys.stderr)
        return 2
    binary = os.path.abspath(binary)
    out = tempfile.mkdtemp(prefix="mailfetch-demo-")
    srv_dir = tempfile.mkdtemp(prefix="mailfetch-demo-dovecot-")
    add_cleanup(lambda: shutil.rmtree(srv_dir, ignore_errors=True))
    print("demo: making a test CA and starting Dovecot on 127.0.0.1 ...")
    certs = make_ca(os.path.join(out, "certs"))
    dv = Dovecot(os.path.join(srv_dir, "dovecot"), certs)
    with dv:
        msgs = sample_messages(5)
        dv.append_many("alice", "INBOX", msgs)
        print("demo: Dovecot up (imaps port %d), %d messages for alice in INBOX" % (dv.ssl_port, len(msgs)))
        mbox = os.path.join(out, "inbox.mbox")
        cfg_text = config(
            {
                "demo": {
                    "host": "127.0.0.1",
                    "port": dv.ssl_port,
                    "tls": "implicit",
                    "tls_ca_file": certs.ca,
                    "user": "alice",
                    "password": USERS["alice"],
                    "deliver": "mbox",
                    "mbox": mbox,
                }
            }
        )
        cfg = write_config(os.path.join(out, "fetchrc"), cfg_text, 0o600)
        print("demo: running %s -v -v -c %s" % (binary, cfg))
        print("-" * 72, flush=True)
        env = mailfetch_env(out)
        p = subprocess.run([binary, "-v", "-v", "-c", cfg], env=env, stdin=subprocess.DEVNULL)
        print("-" * 72)
        data = read_file(mbox)
        n = len(parse_mbox(data))
        print("demo: mailfetch exited %d" % p.returncode)
        print("demo: %d message(s), %d bytes, in %s" % (n, len(data), mbox))
        flags = dv.flags("alice")
        seen = sum(1 for f in flags.values() if "\\Seen" in f)
        print("demo: on the server %d of %d messages are now \\Seen" % (seen, len(flags)))
    print("demo: Dovecot stopped; config and mbox kept in %s (rm -rf it when done)" % out)
    return 0 if p.returncode == 0 and n == len(msgs) else 1


def _selftest(argv):
    """Check the harness itself (no mailfetch needed)."""
    t = Test("selftest")
    ok = True
    with Dovecot(t.path("dv"), t.certs) as dv:
        msgs = sample_messages(3)
        uids = dv.append_many("alice", "INBOX", msgs)
        dv.append("alice", "INBOX", sample_message(9), flags=("\\Seen", "\\Deleted"))
        dv.append("bob", "Work", sample_message(10))
        fl = dv.flags("alice")
        print("uids", uids, "flags", fl)
        ok &= len(fl) == 4 and fl[max(fl)] == {"\\Seen", "\\Deleted"}
        ok &= dv.count("bob", "Work") == 1
        ok &= lf(dv.fetch("alice", "INBOX", uids[0])) == msgs[0]
        c = dv.imap("alice", via="starttls")
        c.logout()
        big = big_message()
        t0 = time.monotonic()
        u = dv.append("bob", "INBOX", big)
        print("25 MB append %.2fs" % (time.monotonic() - t0))
        ok &= lf(dv.fetch("bob", "INBOX", u)) == big
        print("logins", dv.login_count("alice"))
    # parse_mbox against a reference mboxrd writer.
    ref = sample_messages(4) + [big_message(2 * 1024 * 1024)]
    mb = b"".join(b"From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n" + re.sub(rb"(?m)^(>*From )", rb">\1", m) + b"\n"
                  for m in ref)
    ok &= parse_mbox(mb) == ref
    ok &= parse_mbox(b"") == []
    ok &= len(parse_mbox(b"garbage\n" + mb)) == len(ref) + 1
    print("selftest", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "demo":
        rc = _demo(sys.argv[2:])
    elif cmd == "selftest":
        rc = _selftest(sys.argv[2:])
    else:
        print("usage: %s demo|selftest" % sys.argv[0], file=sys.stderr)
        rc = 2
    _run_cleanups()
    sys.exit(rc)
