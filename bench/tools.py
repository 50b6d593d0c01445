"""The fetchers the benchmark measures, each set up in a fresh directory.

A tool variant is `family:sink`.  prepare(ctx) writes its configuration
into ctx.dir (a fresh directory for that one run, which is also HOME) and
returns a Prepared: argv, environment, where its output is and in which
format the checker must read it.

ctx: host, port (Dovecot's imaps port or the delay proxy's), user,
password, ca (PEM file of the test CA), dir, user_name (the local user
the tool runs as), and for the tools that forward (Tool.server "smtp" or
"lmtp") sinks: the Sinks of bench/run (the Exim on smtp_port, Dovecot's
LMTP service on lmtp_socket, and the recipient, rcpt).
"""

import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
PROCMAIL = "/usr/bin/procmail"
# the sink servers, as tests/lib/harness.py finds them
EXIM = os.environ.get("EXIM") or shutil.which("exim4") or shutil.which("exim") or "/usr/sbin/exim4"
DOVECOT_LMTP = os.environ.get("DOVECOT_LMTP", "/usr/lib/dovecot/lmtp")


class Prepared:
    def __init__(self, argv, env, out, fmt, ok_codes=(0,), note="", added_headers=(), prefix_headers=()):
        self.argv = argv
        self.added_headers = added_headers  # header fields the tool adds by design
        # header fields the delivery path puts in front of the message
        # (Received: of the forwarding tool, Return-Path: of the LMTP server)
        self.prefix_headers = prefix_headers
        self.env = env
        self.out = out  # path of the mbox / Maildir / concatenation
        self.fmt = fmt  # mbox, concat, maildir, none
        self.ok_codes = ok_codes
        self.note = note


def base_env(ctx, extra=None):
    """A clean environment: HOME and TMPDIR inside the run directory."""
    keep = ("PATH", "LANG", "TERM")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = env.get("PATH") or "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    home = os.path.join(ctx.dir, "home")
    tmp = os.path.join(ctx.dir, "tmp")
    for p in (home, tmp):
        os.makedirs(p, exist_ok=True)
    env.update(HOME=home, TMPDIR=tmp, LC_ALL="C", USER=ctx.user_name,
               XDG_CONFIG_HOME=os.path.join(home, ".config"), XDG_STATE_HOME=os.path.join(home, ".local", "state"))
    env["LOGNAME"] = env["USER"]
    if extra:
        env.update(extra)
    return env


def write(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def procmailrc(ctx):
    """A procmailrc that files every message into ctx.dir/Maildir/ (no
    log file: procmail's errors go to its stderr)."""
    md = os.path.join(ctx.dir, "Maildir")
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    rc = write(os.path.join(ctx.dir, "procmailrc"),
               "SHELL=/bin/sh\nMAILDIR=%s\nDEFAULT=%s/\nVERBOSE=no\n\n:0\n%s/\n" % (ctx.dir, md, md), 0o644)
    return rc, md


# ---------------------------------------------------------------------------


class Tool:
    family = ""
    sink = ""
    label = ""
    binary = None
    kind = "mbox"  # which mailfetch variant it is compared with: mbox or procmail
    server = None  # the sink server it forwards to: None, "smtp" (Exim) or "lmtp" (Dovecot)

    @property
    def name(self):
        return "%s:%s" % (self.family, self.sink) if self.sink else self.family

    def available(self):
        if self.binary and not os.access(self.binary, os.X_OK):
            return "%s not installed" % self.binary
        if self.kind == "procmail" and not os.access(PROCMAIL, os.X_OK):
            return "procmail not installed"
        if self.server == "smtp" and not os.access(EXIM, os.X_OK):
            return "%s not installed (package exim4-daemon-light)" % EXIM
        if self.server == "lmtp" and not os.access(DOVECOT_LMTP, os.X_OK):
            return "%s not installed (package dovecot-lmtpd)" % DOVECOT_LMTP
        return None

    def version(self):
        return ""

    def prepare(self, ctx):
        raise NotImplementedError


def _first_line(argv, match=None):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        if match is None or match in line:
            return line.strip()
    return ""


class Raw(Tool):
    family = "raw"
    label = "raw limit: one UID FETCH 1:* BODY.PEEK[] (Python ssl), thrown away"

    def version(self):
        import ssl
        import sys
        return "Python %s, %s" % (sys.version.split()[0], ssl.OPENSSL_VERSION)

    def prepare(self, ctx):
        import sys
        argv = [sys.executable, os.path.join(HERE, "rawfetch.py"), ctx.host, str(ctx.port),
                ctx.user, ctx.password, ctx.ca]
        return Prepared(argv, base_env(ctx), None, "none")


class Mailfetch(Tool):
    family = "mailfetch"

    def __init__(self, binary):
        self.binary = binary

    def version(self):
        return _first_line([self.binary, "--version"])

    def config(self, ctx, deliver):
        lines = [
            "[bench]",
            "host = %s" % ctx.host,
            "port = %d" % ctx.port,
            "tls = implicit",
            "tls_ca_file = %s" % ctx.ca,
            "user = %s" % ctx.user,
            "password = %s" % ctx.password,
            "keep = yes",
            "fetch = unseen",
        ] + deliver
        return write(os.path.join(ctx.dir, "fetchrc"), "\n".join(lines) + "\n")

    def argv(self, ctx, cfg):
        return [self.binary, "-c", cfg, "--lockfile", os.path.join(ctx.dir, "mailfetch.lock")]


class MailfetchMbox(Mailfetch):
    sink = "mbox"
    label = "mailfetch, mbox"

    def prepare(self, ctx):
        out = os.path.join(ctx.dir, "out.mbox")
        cfg = self.config(ctx, ["deliver = mbox", "mbox = %s" % out])
        return Prepared(self.argv(ctx, cfg), base_env(ctx), out, "mbox")


class MailfetchMaildir(Mailfetch):
    sink = "maildir"
    label = "mailfetch, Maildir"

    def prepare(self, ctx):
        out = os.path.join(ctx.dir, "Maildir")
        cfg = self.config(ctx, ["deliver = maildir", "maildir = %s" % out])
        return Prepared(self.argv(ctx, cfg), base_env(ctx), out, "maildir")


class MailfetchSmtp(Mailfetch):
    sink = "smtp"
    label = "mailfetch, SMTP to Exim"
    kind = "smtp"
    server = "smtp"

    def prepare(self, ctx):
        cfg = self.config(ctx, ["deliver = smtp", "smtp = 127.0.0.1:%d" % ctx.sinks.smtp_port,
                                "recipient = %s" % ctx.sinks.rcpt])
        return Prepared(self.argv(ctx, cfg), base_env(ctx), ctx.sinks.smtp_out, "exim-spool",
                        prefix_headers=("Received", "Return-Path"))


class MailfetchLmtp(Mailfetch):
    sink = "lmtp"
    label = "mailfetch, LMTP to Dovecot"
    kind = "lmtp"
    server = "lmtp"

    def prepare(self, ctx):
        cfg = self.config(ctx, ["deliver = lmtp", "lmtp = %s" % ctx.sinks.lmtp_socket,
                                "recipient = %s" % ctx.sinks.rcpt])
        return Prepared(self.argv(ctx, cfg), base_env(ctx), ctx.sinks.lmtp_out, "sdbox",
                        prefix_headers=("Received", "Return-Path"))


class MailfetchLmtp2(MailfetchLmtp):
    """The same, with two LMTP sessions at once (deliver_sessions = 2)."""
    sink = "lmtp2"
    label = "mailfetch, LMTP to Dovecot, 2 sessions"

    def prepare(self, ctx):
        cfg = self.config(ctx, ["deliver = lmtp", "lmtp = %s" % ctx.sinks.lmtp_socket,
                                "recipient = %s" % ctx.sinks.rcpt, "deliver_sessions = 2"])
        return Prepared(self.argv(ctx, cfg), base_env(ctx), ctx.sinks.lmtp_out, "sdbox",
                        prefix_headers=("Received", "Return-Path"))


class MailfetchProcmail(Mailfetch):
    sink = "procmail"
    label = "mailfetch, procmail"
    kind = "procmail"

    def prepare(self, ctx):
        rc, md = procmailrc(ctx)
        cfg = self.config(ctx, ["deliver = mda", "mda = %s -m %s" % (PROCMAIL, rc)])
        return Prepared(self.argv(ctx, cfg), base_env(ctx), md, "maildir")


def _fm_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Fetchmail(Tool):
    family = "fetchmail"
    binary = "/usr/bin/fetchmail"

    def version(self):
        return _first_line([self.binary, "--version"], "release").replace("This is fetchmail release ", "fetchmail ").rstrip(".")

    def mda(self, ctx):
        raise NotImplementedError

    def delivery(self, ctx):
        """The rc lines that say where the mail goes, the output, its
        format, and the headers the path puts in front of a message."""
        mda, out, fmt = self.mda(ctx)
        return ["  mda %s" % _fm_quote(mda)], out, fmt, ()

    def local(self, ctx, env):
        return env["USER"]

    def prepare(self, ctx):
        env = base_env(ctx)
        where, out, fmt, prefix = self.delivery(ctx)
        local = self.local(ctx, env)
        rc = write(os.path.join(env["HOME"], ".fetchmailrc"), "\n".join([
            "set no syslog",
            "set no bouncemail",
            "set invisible",
            # fetchmail 6.4 matches only DNS names in the certificate
            "poll %s with proto IMAP port %d" % ("localhost" if ctx.host == "127.0.0.1" else ctx.host, ctx.port),
            "  user %s there with password %s is %s here" % (
                _fm_quote(ctx.user), _fm_quote(ctx.password), _fm_quote(local)),
            "  options keep ssl sslcertck sslcertfile %s" % _fm_quote(ctx.ca),
            "  no rewrite",
        ] + where) + "\n")
        argv = [self.binary, "-f", rc, "--pidfile", os.path.join(ctx.dir, "fetchmail.pid"),
                "--idfile", os.path.join(ctx.dir, "fetchmail.ids"), "--nodetach", "--nosyslog", "-s"]
        return Prepared(argv, env, out, fmt, prefix_headers=prefix)


class FetchmailCat(Fetchmail):
    sink = "cat"
    label = "fetchmail, `cat >>` MDA"

    def mda(self, ctx):
        out = os.path.join(ctx.dir, "out.cat")
        return "cat >> %s" % out, out, "concat"


class FetchmailProcmail(Fetchmail):
    sink = "procmail"
    label = "fetchmail, procmail"
    kind = "procmail"

    def mda(self, ctx):
        rc, md = procmailrc(ctx)
        return "%s -m %s" % (PROCMAIL, rc), md, "maildir"


class FetchmailSmtp(Fetchmail):
    sink = "smtp"
    label = "fetchmail, SMTP to Exim"
    kind = "smtp"
    server = "smtp"

    def local(self, ctx, env):
        return ctx.sinks.rcpt

    def delivery(self, ctx):
        # fetchmail's own default: forward by SMTP, here to the benchmark's
        # Exim; RCPT TO is the local name (is ... here) @ the smtphost,
        # <sink@127.0.0.1>
        return ["  smtphost %s" % _fm_quote("127.0.0.1/%d" % ctx.sinks.smtp_port)], \
            ctx.sinks.smtp_out, "exim-spool", ("Received", "Return-Path")


class FetchmailLmtp(Fetchmail):
    sink = "lmtp"
    label = "fetchmail, LMTP to Dovecot"
    kind = "lmtp"
    server = "lmtp"

    def local(self, ctx, env):
        return ctx.sinks.rcpt

    def delivery(self, ctx):
        # a smtphost that starts with / is an LMTP unix socket
        return ["  lmtp", "  smtphost %s" % _fm_quote(ctx.sinks.lmtp_socket)], \
            ctx.sinks.lmtp_out, "sdbox", ("Received", "Return-Path")


class Getmail(Tool):
    family = "getmail"
    binary = "/usr/bin/getmail"

    def version(self):
        return _first_line([self.binary, "--version"])

    def destination(self, ctx):
        raise NotImplementedError

    def prepare(self, ctx):
        env = base_env(ctx)
        gdir = os.path.join(ctx.dir, "getmail")
        os.makedirs(gdir)
        dest, out, fmt = self.destination(ctx)
        write(os.path.join(gdir, "getmailrc"), "\n".join([
            "[retriever]",
            "type = SimpleIMAPSSLRetriever",
            "server = %s" % ctx.host,
            "port = %d" % ctx.port,
            "username = %s" % ctx.user,
            "password = %s" % ctx.password,
            "ca_certs = %s" % ctx.ca,
            'mailboxes = ("INBOX",)',
            "record_mailbox = false",
            "imap_search = UNSEEN",
            "imap_on_delete = (\\Seen)",
            "",
            "[destination]",
        ] + dest + [
            "",
            "[options]",
            "verbose = 0",
            "read_all = true",
            "delete = true",
            "delivered_to = false",
            "received = false",
            "message_log_syslog = false",
        ]) + "\n")
        argv = [self.binary, "--getmaildir", gdir, "--rcfile", "getmailrc", "--quiet"]
        return Prepared(argv, env, out, fmt)


class GetmailMboxrd(Getmail):
    sink = "mboxrd"
    label = "getmail6, Mboxrd"

    def destination(self, ctx):
        out = os.path.join(ctx.dir, "out.mbox")
        open(out, "wb").close()
        return ["type = Mboxrd", "path = %s" % out], out, "mbox"


class GetmailProcmail(Getmail):
    sink = "procmail"
    label = "getmail6, procmail"
    kind = "procmail"

    def destination(self, ctx):
        rc, md = procmailrc(ctx)
        return ["type = MDA_external", "path = %s" % PROCMAIL,
                'arguments = ("-m", "%s")' % rc, "allow_root_commands = true"], md, "maildir"


def _fdm_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("%", "%%") + '"'


class Fdm(Tool):
    family = "fdm"
    sink = "mbox"
    label = "fdm, mbox"
    binary = "/usr/bin/fdm"

    def version(self):
        # fdm has no version option
        v = _first_line(["dpkg-query", "-W", "-f", "${Version}", "fdm"])
        return "fdm " + v if v else "fdm"

    def prepare(self, ctx):
        # fdm 1.9 takes no CA file: it verifies against OpenSSL's default
        # store, which SSL_CERT_FILE replaces.
        env = base_env(ctx, {"SSL_CERT_FILE": ctx.ca})
        out = os.path.join(ctx.dir, "out.mbox")
        conf = write(os.path.join(ctx.dir, "fdm.conf"), "\n".join([
            "set lock-file %s" % _fdm_quote(os.path.join(ctx.dir, "fdm.lock")),
            "set verify-certificates",
            "set no-received",
            "account \"bench\" imaps server %s port %d user %s pass %s keep" % (
                _fdm_quote(ctx.host), ctx.port, _fdm_quote(ctx.user), _fdm_quote(ctx.password)),
            "action \"mbox\" mbox %s" % _fdm_quote(out),
            "match all action \"mbox\"",
        ]) + "\n")
        argv = [self.binary, "-q", "-f", conf, "fetch"]
        return Prepared(argv, env, out, "mbox")


class Mbsync(Tool):
    family = "mbsync"
    sink = "maildir"
    label = "mbsync, Maildir (fsync)"
    binary = "/usr/bin/mbsync"

    def version(self):
        return _first_line([self.binary, "--version"])

    def prepare(self, ctx):
        env = base_env(ctx)
        mail = os.path.join(ctx.dir, "mail")
        os.makedirs(mail)
        conf = write(os.path.join(ctx.dir, "mbsyncrc"), "\n".join([
            "IMAPAccount bench",
            # mbsync 1.4 matches only DNS names in the certificate
            "Host %s" % ("localhost" if ctx.host == "127.0.0.1" else ctx.host),
            "Port %d" % ctx.port,
            "User %s" % ctx.user,
            "Pass %s" % _fm_quote(ctx.password),
            "SSLType IMAPS",
            "CertificateFile %s" % ctx.ca,
            "",
            "IMAPStore remote",
            "Account bench",
            "",
            "MaildirStore local",
            "Path %s/" % mail,
            "Inbox %s/INBOX" % mail,
            "",
            "Channel bench",
            "Far :remote:",
            "Near :local:",
            "Patterns INBOX",
            "Sync Pull New",
            "Create Near",
            "SyncState *",
        ]) + "\n")
        argv = [self.binary, "-c", conf, "-q", "bench"]
        # mbsync adds an X-TUID: header to every message it copies (no
        # option turns it off); the checker removes it before comparing.
        return Prepared(argv, env, os.path.join(mail, "INBOX"), "maildir", added_headers=("X-TUID",))


def all_tools(mailfetch_binary):
    return [
        Raw(),
        MailfetchMbox(mailfetch_binary),
        MailfetchMaildir(mailfetch_binary),
        MailfetchSmtp(mailfetch_binary),
        MailfetchLmtp(mailfetch_binary),
        MailfetchLmtp2(mailfetch_binary),
        MailfetchProcmail(mailfetch_binary),
        Mbsync(),
        Fdm(),
        FetchmailCat(),
        FetchmailSmtp(),
        FetchmailLmtp(),
        FetchmailProcmail(),
        GetmailMboxrd(),
        GetmailProcmail(),
    ]


def select(tools, spec):
    """Tools named in spec (comma list of family or family:sink, or all)."""
    if not spec or spec == "all":
        return list(tools)
    out = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        hit = [t for t in tools if t.name == item or t.family == item]
        if not hit:
            raise ValueError("unknown tool %r (known: %s)" % (item, ", ".join(t.name for t in tools)))
        for t in hit:
            if t not in out:
                out.append(t)
    return [t for t in tools if t in out]
