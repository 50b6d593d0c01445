#!/usr/bin/env python3
"""A scripted fake IMAP server for faults a real Dovecot will not produce.

    srv = FakeIMAP(certs=certs, tls="implicit", cert="wrong").start()
    ... run mailfetch against 127.0.0.1:srv.port ...
    srv.stop()
    assert not srv.saw("LOGIN")

It listens on a free 127.0.0.1 port; every connection is served in its own
thread.  It speaks enough IMAP4rev1 to take a client through CAPABILITY,
STARTTLS, LOGIN, AUTHENTICATE PLAIN/LOGIN (with SASL-IR or a continuation),
SELECT/EXAMINE, STATUS, SEARCH, FETCH, STORE, EXPUNGE, UID EXPUNGE, CLOSE,
NOOP, IDLE, NOTIFY and LOGOUT,
with literals (synchronising and LITERAL+) in client commands.

Everything received is logged as events, so a test can assert what the
client sent, e.g. that no LOGIN was ever sent or that no STORE came after a
failed fetch.  Event kinds:
    connect, tls-ok, tls-failed, recv (one raw line or literal, bytes),
    cmd (tag, NAME, args), sent (bytes), eof, closed, error

Faults (keyword arguments of FakeIMAP):
    tls="none"|"implicit"     implicit: handshake before the greeting
    cert="good"|"wrong"|"untrusted"   certificate for TLS (implicit and STARTTLS)
    starttls="offer"|"absent"|"inject"
                              inject: answer STARTTLS with the tagged OK and,
                              in the same write, a plaintext untagged
                              CAPABILITY (a response injection attack)
    greeting="ok"|"preauth"|"bye"
    login="ok"|"no"           answer to LOGIN/AUTHENTICATE with right creds
    store="ok"|"no"
    fetch_fault=None|"drop-mid-literal"|"bye"|"size-lie"
                              size-lie: RFC822.SIZE one more than the body sent
    on_fetch_message=fn(session, message)  called before each message is sent
    send_literal=fn(session, head, data)  sends one FETCH response with a
                              literal in place of the server: head (up to
                              and including "{N}\r\n"), the N bytes of data,
                              then b")\r\n"; for pacing (drip, pause)
    drop_after=2000           bytes of the literal sent before the drop
    sasl_ir=True, literal_plus=True, uidplus=True, logindisabled_before_tls=False
    logindisabled=False       LOGINDISABLED always (with or without TLS)
    auth_mechs=("PLAIN", "LOGIN")   AUTH= list; SCRAM-SHA-1, SCRAM-SHA-256 and
                              their -PLUS (tls-server-end-point checked over
                              TLS 1.2; over TLS 1.3, where Python cannot
                              compute tls-exporter, only its type and size)
                              are served by tests/lib/scram.py
    scram_fault=None|"bad-signature"|"no-signature"|"bad-nonce"|"iter0"|
                "iter-huge"|"bad-base64"|"cb-mismatch"|"mandatory-ext"
                              cb-mismatch: the server sees another certificate,
                              as a machine in the middle would present
    tls_max=None|"1.2"        highest TLS version the server speaks
    before_greeting=fn(session)   called before the greeting is sent (a slow server)
    handlers={"NAME": fn(session, tag, args)}   script any command yourself

Folders.  folder="INBOX" names the one folder of the classic API: srv.add(),
srv.flags(), srv.mailbox (its message list) and srv.next_uid all mean that
folder.  More folders, for clients that watch several:
    folders={"INBOX": [msgs], "Lists": [msgs]}   (messages as in messages=;
                              messages= still goes to folder=)
    srv.add_folder(name, messages=())            creates one at run time
    srv.add(data, flags=(), folder=None)         as before, silently
    srv.deliver(data, folder=None, flags=()) -> uid
                              thread-safe: new mail while sessions are open,
                              announced (see below); folder=None is folder=
    srv.flags(folder=None) -> {uid: flags}, srv.messages(folder=None) -> [Message]
SELECT/EXAMINE/STATUS/SEARCH/FETCH/STORE/EXPUNGE/CLOSE work on the selected
folder.  STATUS of an unknown name answers for folder= when there is only
one folder (as always), NO [NONEXISTENT] when there are several.  Folder k
(in the order given, folder= first) has UIDVALIDITY uidvalidity + k.
SELECT reports * n RECENT: messages deliver()ed since the folder was last
selected (always 0 without deliver()).

Push: IDLE (RFC 2177) and NOTIFY (RFC 5465).
    idle=True                 IDLE capability and command (in authenticated
                              and selected state): "+ idling", then DONE
                              (case-insensitive) -> "TAG OK Idle completed";
                              any other line -> "TAG BAD Expected DONE." and
                              the IDLE ends.  idle=False: no capability and
                              IDLE is an unknown command (BAD), as before.
    idle_timeout=1800.0       client silence allowed while idling, or while
                              waiting for a command with NOTIFY set (io_timeout
                              applies everywhere else, as before)
    notify=False              NOTIFY capability and command:
                              NOTIFY NONE | NOTIFY SET [STATUS] (filter events)...
                              filter: selected, selected-delayed, inboxes
                              (= INBOX), personal and subscribed (= every
                              folder), subtree NAMES (names and below, "/" or
                              "."), mailboxes NAMES; NAMES: one name or a list;
                              events: a list of MessageNew MessageExpunge
                              FlagChange MailboxName SubscriptionChange
                              AnnotationChange MailboxMetadataChange
                              ServerMetadataChange, or NONE.  Another event:
                              NO [BADEVENT]; MessageNew without MessageExpunge
                              (or the reverse): BAD.  A fetch-att list after
                              MessageNew is kept as the filter's "fetch"
                              (text) but no FETCH is sent.  STATUS: one * STATUS per
                              watched folder but the selected one, before OK.
    srv.notify_sets           [(conn, spec)]: each NOTIFY accepted, spec None
                              for NOTIFY NONE, else {"status": bool, "filters":
                              [{"kind": "mailboxes", "mailboxes": ["INBOX",
                              "Lists"], "events": ["MessageNew", ...]}]}
What deliver() announces, to each logged-in session:
  - its selected folder: "* N EXISTS\r\n* R RECENT\r\n" (N counts the new
    message): at once if the session is idling (IDLE answered "+ idling") or
    its NOTIFY set has MessageNew for that folder (a "selected" or
    "selected-delayed" filter, or any filter naming the folder); else before
    the answer to its next command (as a server does on NOOP), or at once
    when it next starts to IDLE.
  - another folder its NOTIFY set watches with MessageNew (idling or not):
    '* STATUS "NAME" (MESSAGES n UIDNEXT m UIDVALIDITY v)' at once.
  - EXPUNGE by any session: the same STATUS to sessions watching that folder
    with MessageExpunge that do not have it selected.
"At once" means as soon as the session is between commands (or idling); a
session in the middle of a command (a slow FETCH) sends them after its
tagged answer.  Each delivery is announced on its own (no coalescing).

Push faults:
    idle_fault=None|"no-done-reply"|"drop-after:SECONDS"|"flood-exists:N"|
               "no-continuation"
                              no-done-reply: DONE is never answered; the
                              session goes quiet (reads and logs everything,
                              sends nothing more) until the client closes
                              drop-after:SECONDS: the connection is shut down
                              (no BYE) SECONDS after IDLE starts, if that IDLE
                              is still on (DONE in time cancels it)
                              flood-exists:N: right after "+ idling", N lines
                              "* k EXISTS", all with the current count k, no
                              new mail
                              no-continuation: "+ idling" is never sent and
                              nothing is announced; DONE is still answered OK
                              (idle_timeout applies, not io_timeout)
    idle_fault_times=None     the fault hits only the first N IDLEs (all
                              connections together); srv.idle_fault may also
                              be changed while the server runs
    drop_every=None|SECONDS   every connection is shut down (no BYE) SECONDS
                              after it was accepted, whatever it is doing
Push events: idle-start (tag, selected folder or None, fault or None),
idle-done (tag, how: "DONE", "bad", "DONE-unanswered", or "disconnect: ..."),
fault (text, as other faults), and on connection 0: deliver (folder, uid).
srv.idle_starts() counts IDLE commands, per connection if given one.
srv.stop() also ends sessions that are idling or waiting under NOTIFY.
"""

import base64
import bisect
import os
import re
import select
import socket
import ssl
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Message:
    def __init__(self, uid, data, flags=()):
        self.uid = uid
        self.data = data  # CRLF bytes, as a server stores it
        self.flags = set(flags)


def _crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class Disconnect(Exception):
    pass


class Folder:
    def __init__(self, name, uidvalidity):
        self.name = name
        self.uidvalidity = uidvalidity
        self.messages = []
        self.next_uid = 1
        self.recent = set()  # UIDs deliver()ed since the last SELECT


NOTIFY_EVENTS = ("MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange", "MailboxName",
                 "SubscriptionChange", "MailboxMetadataChange", "ServerMetadataChange")


class FakeIMAP:
    def __init__(
        self,
        certs=None,
        tls="none",
        cert="good",
        starttls="offer",
        greeting="ok",
        greeting_caps=True,
        user="alice",
        password="pa ss'w\"d$1",
        login="ok",
        store="ok",
        fetch_fault=None,
        drop_after=2000,
        messages=(),
        folder="INBOX",
        uidvalidity=1234567,
        sasl_ir=True,
        literal_plus=True,
        uidplus=True,
        auth_mechs=("PLAIN", "LOGIN"),
        logindisabled_before_tls=False,
        logindisabled=False,
        scram_fault=None,
        tls_max=None,
        before_greeting=None,
        handlers=None,
        on_fetch_message=None,
        send_literal=None,
        log_path=None,
        host="127.0.0.1",
        io_timeout=15.0,
        folders=None,
        idle=True,
        notify=False,
        idle_fault=None,
        idle_fault_times=None,
        idle_timeout=1800.0,
        drop_every=None,
    ):
        self.certs = certs
        self.tls = tls
        self.cert = cert
        self.starttls = starttls
        self.greeting = greeting
        self.greeting_caps = greeting_caps
        self.user = user
        self.password = password
        self.login = login
        self.store = store
        self.fetch_fault = fetch_fault
        self.drop_after = drop_after
        self.folder = folder
        self.idle = idle
        self.notify = notify
        self.idle_fault = idle_fault
        self.idle_fault_times = idle_fault_times
        self.idle_timeout = idle_timeout
        self.drop_every = drop_every
        self.notify_sets = []  # (conn, spec or None), see the docstring
        self._idles = 0
        self._sessions = []
        self.sasl_ir = sasl_ir
        self.literal_plus = literal_plus
        self.uidplus = uidplus
        self.auth_mechs = tuple(auth_mechs)
        self.logindisabled_before_tls = logindisabled_before_tls
        self.logindisabled = logindisabled
        self.scram_fault = scram_fault
        self.tls_max = tls_max
        self.before_greeting = before_greeting
        self.scram_results = []  # (mechanism, gs2 header, ok, server-final) per SCRAM exchange
        self.handlers = dict(handlers or {})
        self.on_fetch_message = on_fetch_message
        self.send_literal = send_literal
        self.log_path = log_path
        self.host = host
        self.io_timeout = io_timeout
        self.events = []
        self.lock = threading.RLock()
        self.folders = {}
        self.add_folder(folder)
        self.uidvalidity = uidvalidity
        for m in messages:
            if isinstance(m, tuple):
                self.add(m[0], m[1])
            else:
                self.add(m)
        for name, msgs in (folders or {}).items():
            f = self.add_folder(name)
            for m in msgs:
                if isinstance(m, tuple):
                    self.add(m[0], m[1], folder=f.name)
                else:
                    self.add(m, folder=f.name)
        self.port = None
        self._sock = None
        self._thread = None
        self._stop = threading.Event()
        self._conns = []
        self._logf = open(log_path, "a") if log_path else None

    # -- mailbox ---------------------------------------------------------

    # The classic one-folder API: the folder named by folder=.

    @property
    def mailbox(self):
        return self.folders[self.folder.upper()].messages

    @mailbox.setter
    def mailbox(self, msgs):
        self.folders[self.folder.upper()].messages = msgs

    @property
    def next_uid(self):
        return self.folders[self.folder.upper()].next_uid

    @next_uid.setter
    def next_uid(self, v):
        self.folders[self.folder.upper()].next_uid = v

    @property
    def uidvalidity(self):
        return self.folders[self.folder.upper()].uidvalidity

    @uidvalidity.setter
    def uidvalidity(self, v):
        # folder k keeps UIDVALIDITY uidvalidity + k
        with self.lock:
            for k, f in enumerate(self.folders.values()):
                f.uidvalidity = v + k

    def add_folder(self, name, messages=()):
        """Create a folder (or return the one of that name)."""
        with self.lock:
            f = self.find_folder(name)
            if f is None:
                base = self.folders[self.folder.upper()].uidvalidity if self.folders else 0
                f = Folder(name, base + len(self.folders))
                self.folders[name.upper()] = f
        for m in messages:
            if isinstance(m, tuple):
                self.add(m[0], m[1], folder=name)
            else:
                self.add(m, folder=name)
        return f

    def find_folder(self, name):
        """The Folder named name (case-insensitively), or None."""
        if name is None:
            name = self.folder
        return self.folders.get(name.upper())

    def _folder(self, name):
        f = self.find_folder(name)
        if f is None:
            raise KeyError("fakeimap: no folder %r" % name)
        return f

    def add(self, data, flags=(), folder=None):
        """Add an LF-only (or CRLF) message; returns its UID.  Nothing is
        announced (see deliver())."""
        with self.lock:
            f = self._folder(folder)
            m = Message(f.next_uid, _crlf(data), flags)
            f.next_uid += 1
            f.messages.append(m)
            return m.uid

    def deliver(self, data, folder=None, flags=()):
        """Add a message while sessions are open (thread-safe) and announce
        it (see the docstring); returns its UID."""
        with self.lock:
            f = self._folder(folder)
            uid = self.add(data, flags, folder=f.name)
            f.recent.add(uid)
            snap = {"folder": f, "event": "MessageNew", "exists": len(f.messages), "recent": len(f.recent),
                    "uidnext": f.next_uid, "uidvalidity": f.uidvalidity}
            self.events.append((0, "deliver", (f.name, uid)))
            sessions = list(self._sessions)
        if self._logf:
            self._logf.write("0 deliver %r\n" % ((f.name, uid),))
            self._logf.flush()
        for sess in sessions:
            sess.announce(snap)
        return uid

    def _expunged(self, by, f):
        """A session expunged messages of f: tell NOTIFY watchers."""
        with self.lock:
            snap = {"folder": f, "event": "MessageExpunge", "exists": len(f.messages), "recent": len(f.recent),
                    "uidnext": f.next_uid, "uidvalidity": f.uidvalidity}
            sessions = [s for s in self._sessions if s is not by]
        for sess in sessions:
            sess.announce(snap)

    def flags(self, folder=None):
        with self.lock:
            return {m.uid: set(m.flags) for m in self._folder(folder).messages}

    def seen(self, folder=None):
        """The UIDs flagged \\Seen, sorted."""
        return sorted(u for u, f in self.flags(folder).items() if "\\Seen" in f)

    def messages(self, folder=None):
        with self.lock:
            return list(self._folder(folder).messages)

    def idle_starts(self, conn=None):
        """How many IDLE commands were started (on connection conn)."""
        return sum(1 for (c, k, _d) in list(self.events) if k == "idle-start" and conn in (None, c))

    def _idle_fault_now(self):
        """(fault name, argument) for an IDLE starting now."""
        with self.lock:
            self._idles += 1
            fault = self.idle_fault
            if not fault or (self.idle_fault_times is not None and self._idles > self.idle_fault_times):
                return None, None
        name, _, arg = fault.partition(":")
        return name, arg

    # -- events ----------------------------------------------------------

    def _event(self, conn_id, kind, data=None):
        with self.lock:
            self.events.append((conn_id, kind, data))
        if self._logf:
            self._logf.write("%d %s %s\n" % (conn_id, kind, _fmt(data)))
            self._logf.flush()

    def received(self):
        """All raw lines (and literals) received, as a list of bytes."""
        return [d for (_c, k, d) in list(self.events) if k == "recv"]

    def commands(self):
        """[(conn, tag, NAME, args)], NAME upper case, e.g. 'UID STORE'."""
        return [(c, d[0], d[1], d[2]) for (c, k, d) in list(self.events) if k == "cmd"]

    def command_names(self):
        return [n for (_c, _t, n, _a) in self.commands()]

    def saw(self, name):
        """True if a command NAME (e.g. LOGIN, UID STORE, STORE) was received.

        A plain name also matches its UID form: 'STORE' matches 'UID STORE',
        'EXPUNGE' matches 'UID EXPUNGE'.  saw_exact() tells the forms apart."""
        name = name.upper()
        return any(n == name or n.endswith(" " + name) for n in self.command_names())

    def saw_exact(self, name):
        return name.upper() in self.command_names()

    def kinds(self):
        return [k for (_c, k, _d) in list(self.events)]

    def connections(self):
        return sum(1 for k in self.kinds() if k == "connect")

    def raw_received(self):
        return b"".join(self.received())

    def log_tail(self, n=60):
        lines = ["%d %s %s" % (c, k, _fmt(d)) for (c, k, d) in list(self.events)]
        return "\n".join(lines[-n:]) + "\n"

    # -- server ----------------------------------------------------------

    def start(self):
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, 0))
        s.listen(8)
        s.settimeout(0.2)
        self._sock = s
        self.port = s.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        try:
            import harness

            harness.add_cleanup(self.stop)
        except ImportError:
            pass
        return self

    def stop(self):
        self._stop.set()
        with self.lock:
            sessions = list(self._sessions)
        for sess in sessions:
            sess.wake()
        if self._thread:
            self._thread.join(5)
            self._thread = None
        if self._sock:
            self._sock.close()
            self._sock = None
        for t in list(self._conns):
            t.join(5)
        if self._logf:
            self._logf.close()
            self._logf = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _accept_loop(self):
        n = 0
        while not self._stop.is_set():
            try:
                c, addr = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            n += 1
            t = threading.Thread(target=self._serve, args=(c, n), daemon=True)
            self._conns.append(t)
            t.start()

    def server_context(self, which=None):
        cert, key = self.certs.pair(which or self.cert)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if self.tls_max == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def end_point(self, which=None):
        """tls-server-end-point data (RFC 5929) of a certificate: SHA-256 of
        its DER (the test CA signs with SHA-256)."""
        import hashlib

        cert, _ = self.certs.pair(which or self.cert)
        with open(cert) as f:
            pem = f.read()
        first = pem[: pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).digest()

    def _serve(self, sock, conn_id):
        self._event(conn_id, "connect", None)
        sess = Session(self, sock, conn_id)
        with self.lock:
            self._sessions.append(sess)
        timer = None
        if self.drop_every is not None:
            timer = threading.Timer(float(self.drop_every), sess.abort,
                                    ("drop_every: connection shut down %ss after accept" % self.drop_every,))
            timer.daemon = True
            timer.start()
        try:
            sess.run()
        except Disconnect as e:
            self._event(conn_id, "eof", str(e) or None)
        except (OSError, ssl.SSLError) as e:
            self._event(conn_id, "error", "%s: %s" % (type(e).__name__, e))
        except Exception as e:  # a bug in the fake: make it visible
            import traceback

            self._event(conn_id, "error", traceback.format_exc())
        finally:
            if timer is not None:
                timer.cancel()
            with self.lock:
                self._sessions.remove(sess)
            sess.closing()
            try:
                sess.sock.close()
            except OSError:
                pass
            self._event(conn_id, "closed", None)


def _fmt(d):
    if isinstance(d, bytes):
        return repr(d[:300]) + ("...(%d bytes)" % len(d) if len(d) > 300 else "")
    return repr(d)


# ---------------------------------------------------------------------------


class Session:
    """One client connection."""

    def __init__(self, srv, sock, conn_id):
        self.srv = srv
        self.sock = sock
        self.id = conn_id
        self.buf = b""
        self.tls = False
        self.state = "nonauth"
        self.selected = None
        self.folder = None  # the selected Folder
        self.readonly = False
        self.sock.settimeout(srv.io_timeout)
        self.notify = None  # the NOTIFY SET spec in force
        self.idling = False  # IDLE answered "+ idling", DONE not yet read
        self.in_idle = False  # in an IDLE command, answered "+ idling" or not
        self.at_rest = False  # between commands: announcements go out at once
        self.quiet = False  # the no-done-reply fault: never send again
        self.pending = []  # announcements not yet sent (under srv.lock)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- announcements (any thread may call announce, wake and abort) --------

    def announce(self, snap):
        with self.srv.lock:
            if self.state not in ("auth", "selected"):
                return
            self.pending.append(snap)
        self.wake()

    def wake(self):
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def abort(self, why):
        """Shut the connection down at once, no BYE (from any thread)."""
        self.srv._event(self.id, "fault", why)
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass
        self.wake()

    def closing(self):
        for s in (self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass

    def _events_for(self, f, selected):
        """NOTIFY events the session's NOTIFY set wants for folder f."""
        spec = self.notify
        if not spec:
            return set()
        out = set()
        for flt in spec["filters"]:
            kind = flt["kind"]
            if kind in ("selected", "selected-delayed"):
                hit = selected
            elif kind in ("personal", "subscribed"):
                hit = True
            elif kind == "inboxes":
                hit = f.name.upper() == "INBOX"
            elif kind == "mailboxes":
                hit = any(n.upper() == f.name.upper() for n in flt["mailboxes"])
            elif kind == "subtree":
                hit = any(f.name.upper() == n.upper() or f.name.upper().startswith((n.upper() + "/", n.upper() + "."))
                          for n in flt["mailboxes"])
            else:
                hit = False
            if hit:
                out |= set(flt["events"])
        return out

    def _render(self, snap, force):
        """(bytes to send now or None to keep it, keep?)"""
        f = snap["folder"]
        if self.state == "selected" and self.folder is f:
            if snap["event"] != "MessageNew":
                return None, False  # another session's EXPUNGE: not tracked per session
            if force or self.idling or "MessageNew" in self._events_for(f, True):
                return b"* %d EXISTS\r\n* %d RECENT\r\n" % (snap["exists"], snap["recent"]), False
            return None, True
        if snap["event"] in self._events_for(f, False) - {"FlagChange"}:
            return b'* STATUS %s (MESSAGES %d UIDNEXT %d UIDVALIDITY %d)\r\n' % (
                _quote(f.name), snap["exists"], snap["uidnext"], snap["uidvalidity"]), False
        return None, False

    def flush(self, force=False):
        """Send the pending announcements that are due (force: all that
        still apply, as before a command's answer)."""
        if self.quiet:
            return
        with self.srv.lock:
            if not self.pending:
                return
            out = b""
            keep = []
            for snap in self.pending:
                data, kept = self._render(snap, force)
                if data:
                    out += data
                elif kept:
                    keep.append(snap)
            self.pending = keep
        if out:
            self.send(out)

    # -- I/O -----------------------------------------------------------------

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.srv._event(self.id, "sent", data)
        self.sock.sendall(data)

    def _wait_readable(self):
        """Wait for client data, sending announcements that fall due while
        the session is at rest; the same Disconnects as a recv timeout."""
        long_wait = self.in_idle or self.quiet or (self.at_rest and self.notify)
        limit = self.srv.idle_timeout if long_wait else self.srv.io_timeout
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            pending = getattr(self.sock, "pending", None)
            if pending is not None and pending():
                return
            if self.at_rest or self.idling:
                self.flush()
            if self.srv._stop.is_set() and long_wait:
                raise Disconnect("server stopped")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise Disconnect("timeout")
            try:
                r, _, _ = select.select([self.sock, self._wake_r], [], [], left)
            except (ValueError, OSError):
                return  # closed under us: let recv tell
            if self._wake_r in r:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except OSError:
                    pass
            if self.sock in r:
                return

    def _fill(self):
        self._wait_readable()
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            raise Disconnect("timeout")
        except ssl.SSLError as e:
            raise Disconnect("ssl: %s" % e)
        except ConnectionResetError:
            raise Disconnect("reset")
        if not b:
            raise Disconnect()
        self.buf += b

    def readline(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise Disconnect("line too long")
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        self.srv._event(self.id, "recv", line)
        return line

    def readn(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        self.srv._event(self.id, "recv", data)
        return data

    def start_tls(self, which=None):
        ctx = self.srv.server_context(which)
        try:
            self.sock = ctx.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
            self.sock.settimeout(self.srv.io_timeout)
            self.sock.do_handshake()
        except (ssl.SSLError, OSError) as e:
            self.srv._event(self.id, "tls-failed", "%s: %s" % (type(e).__name__, e))
            raise Disconnect("tls handshake failed")
        self.tls = True
        self.srv._event(self.id, "tls-ok", self.sock.version())

    # -- command reading -------------------------------------------------------

    LITERAL_AT_END = re.compile(rb"\{(\d+)(\+?)\}$")

    def read_command(self):
        """(tag, NAME, [args]) with literals resolved; args are bytes or
        lists (parenthesised)."""
        segments = []
        while True:
            line = self.readline()
            self.at_rest = False  # no announcements inside a command
            m = self.LITERAL_AT_END.search(line)
            if not m:
                segments.append((line, None))
                break
            n = int(m.group(1))
            if n > 50 * 1024 * 1024:
                self.send(b"* BYE literal too big\r\n")
                raise Disconnect("literal too big")
            if not m.group(2):
                self.send(b"+ Ready for literal data\r\n")
            segments.append((line[: m.start()], self.readn(n)))
        toks = []
        for text, lit in segments:
            toks += tokenize(text)
            if lit is not None:
                toks.append(Literal(lit))
        return toks

    # -- session ---------------------------------------------------------------

    def caps(self):
        s = self.srv
        c = ["IMAP4rev1"]
        if s.literal_plus:
            c.append("LITERAL+")
        if s.sasl_ir:
            c.append("SASL-IR")
        if s.uidplus:
            c.append("UIDPLUS")
        if s.idle:
            c.append("IDLE")
        if s.notify:
            c.append("NOTIFY")
        if not self.tls and s.starttls in ("offer", "inject") and s.tls != "implicit":
            c.append("STARTTLS")
        if s.logindisabled or (not self.tls and s.logindisabled_before_tls):
            c.append("LOGINDISABLED")
            if s.logindisabled:
                c += ["AUTH=" + m for m in s.auth_mechs]
        else:
            c += ["AUTH=" + m for m in s.auth_mechs]
        return " ".join(c)

    def run(self):
        s = self.srv
        if s.tls == "implicit":
            self.start_tls()
        if s.before_greeting is not None:
            s.before_greeting(self)
        if s.greeting == "preauth":
            self.state = "auth"
            self.send("* PREAUTH [CAPABILITY %s] fake server: logged in as %s\r\n" % (self.caps(), s.user))
        elif s.greeting == "bye":
            self.send("* BYE fake server: go away\r\n")
            return
        elif s.greeting_caps:
            self.send("* OK [CAPABILITY %s] fake server ready\r\n" % self.caps())
        else:
            self.send("* OK fake server ready\r\n")
        while True:
            self.at_rest = True
            try:
                toks = self.read_command()
            finally:
                self.at_rest = False
            if len(toks) < 2 or not isinstance(toks[0], bytes):
                self.send(b"* BAD no tag or command\r\n")
                continue
            tag = toks[0].decode("latin-1")
            name = _upper(toks[1])
            args = toks[2:]
            if name == "UID" and args:
                name = "UID " + _upper(args[0])
                args = args[1:]
            self.srv._event(self.id, "cmd", (tag, name, [_plain(a) for a in args]))
            if self.pending and name not in ("IDLE", "LOGOUT"):
                self.flush(force=True)
            h = s.handlers.get(name)
            if h is not None:
                if h(self, tag, args) == "close":
                    return
                continue
            fn = getattr(self, "cmd_" + name.replace(" ", "_").lower(), None)
            if fn is None:
                self.send("%s BAD unknown command %s\r\n" % (tag, name))
                continue
            if fn(tag, args) == "close":
                return

    # -- commands --------------------------------------------------------------

    def cmd_capability(self, tag, args):
        self.send("* CAPABILITY %s\r\n%s OK CAPABILITY completed\r\n" % (self.caps(), tag))

    def cmd_noop(self, tag, args):
        self.send("%s OK NOOP completed\r\n" % tag)

    cmd_check = cmd_noop

    def cmd_id(self, tag, args):
        self.send('* ID ("name" "fakeimap")\r\n%s OK ID completed\r\n' % tag)

    def cmd_enable(self, tag, args):
        self.send("* ENABLED\r\n%s OK ENABLE completed\r\n" % tag)

    def _unknown(self, tag, name):
        self.send("%s BAD unknown command %s\r\n" % (tag, name))

    def cmd_idle(self, tag, args):
        s = self.srv
        if not s.idle:
            return self._unknown(tag, "IDLE")
        if not self._need_auth(tag):
            return
        fault, arg = s._idle_fault_now()
        s._event(self.id, "idle-start", (tag, self.folder.name if self.state == "selected" else None,
                                         fault and (fault + (":" + arg if arg else ""))))
        timer = None
        self.in_idle = True
        try:
            if fault != "no-continuation":
                self.send(b"+ idling\r\n")
                self.idling = True
                if fault == "flood-exists":
                    k = len(self.folder.messages) if self.state == "selected" else 0
                    s._event(self.id, "fault", "flood: %s EXISTS lines without new mail" % arg)
                    self.send(b"* %d EXISTS\r\n" % k * int(arg))
                self.flush(force=True)
            else:
                s._event(self.id, "fault", "no continuation for IDLE")
            if fault == "drop-after":
                timer = threading.Timer(float(arg), self.abort, ("drop-after: shut down %ss into IDLE" % arg,))
                timer.daemon = True
                timer.start()
            line = self.readline()
        except Disconnect as e:
            s._event(self.id, "idle-done", (tag, "disconnect: %s" % (e or "eof")))
            raise
        finally:
            self.idling = self.in_idle = False
            if timer is not None:
                timer.cancel()
        if line.upper() != b"DONE":
            s._event(self.id, "idle-done", (tag, "bad"))
            self.send("%s BAD Expected DONE.\r\n" % tag)
            return
        if fault == "no-done-reply":
            s._event(self.id, "idle-done", (tag, "DONE-unanswered"))
            s._event(self.id, "fault", "DONE not answered: the session goes quiet")
            self.quiet = True
            while True:
                self.readline()
        s._event(self.id, "idle-done", (tag, "DONE"))
        self.send("%s OK Idle completed\r\n" % tag)

    def cmd_notify(self, tag, args):
        s = self.srv
        if not s.notify:
            return self._unknown(tag, "NOTIFY")
        if not self._need_auth(tag):
            return
        what = _upper(args[0]) if args and not isinstance(args[0], list) else ""
        if what == "NONE" and len(args) == 1:
            self.notify = None
            with s.lock:
                s.notify_sets.append((self.id, None))
            self.send("%s OK NOTIFY completed\r\n" % tag)
            return
        if what != "SET":
            self.send("%s BAD NOTIFY SET or NOTIFY NONE\r\n" % tag)
            return
        rest = list(args[1:])
        spec = {"status": False, "filters": []}
        if rest and not isinstance(rest[0], list) and _upper(rest[0]) == "STATUS":
            spec["status"] = True
            rest.pop(0)
        if not rest:
            self.send("%s BAD NOTIFY SET needs an event group\r\n" % tag)
            return
        canon = {e.upper(): e for e in NOTIFY_EVENTS}
        for grp in rest:
            if not isinstance(grp, list) or not grp or isinstance(grp[0], list):
                self.send("%s BAD bad event group\r\n" % tag)
                return
            kind = _text(grp[0]).lower()
            items = grp[1:]
            names = []
            if kind in ("mailboxes", "subtree"):
                if not items:
                    self.send("%s BAD %s needs mailboxes\r\n" % (tag, kind))
                    return
                mb = items.pop(0)
                names = [_text(x) for x in mb] if isinstance(mb, list) else [_text(mb)]
            elif kind not in ("selected", "selected-delayed", "inboxes", "personal", "subscribed"):
                self.send("%s BAD unknown filter %s\r\n" % (tag, kind))
                return
            if len(items) != 1:
                self.send("%s BAD bad event list\r\n" % tag)
                return
            ev = items[0]
            if isinstance(ev, list):
                events = []
                for e in ev:
                    if isinstance(e, list) and events and events[-1] == "MessageNew":
                        fetch = _text(e)  # fetch-att of MessageNew: recorded, not sent
                        continue
                    e = _text(e)
                    if e.upper() not in canon:
                        self.send("%s NO [BADEVENT (%s)] unsupported event %s\r\n" % (
                            tag, " ".join(NOTIFY_EVENTS), e))
                        return
                    events.append(canon[e.upper()])
                if ("MessageNew" in events) != ("MessageExpunge" in events):
                    self.send("%s BAD MessageNew and MessageExpunge go together\r\n" % tag)
                    return
            elif _upper(ev) == "NONE":
                events = []
            else:
                self.send("%s BAD bad event list\r\n" % tag)
                return
            flt = {"kind": kind, "mailboxes": names, "events": events}
            if isinstance(ev, list) and any(isinstance(e, list) for e in ev):
                flt["fetch"] = fetch
            spec["filters"].append(flt)
        self.notify = spec
        with s.lock:
            s.notify_sets.append((self.id, spec))
            folders = list(s.folders.values())
        out = ""
        if spec["status"]:
            for f in folders:
                if (self.state == "selected" and self.folder is f) or not self._events_for(f, False):
                    continue
                out += "* STATUS %s (MESSAGES %d UIDNEXT %d UIDVALIDITY %d)\r\n" % (
                    _quote(f.name).decode(), len(f.messages), f.next_uid, f.uidvalidity)
        self.send(out + "%s OK NOTIFY completed\r\n" % tag)

    def cmd_logout(self, tag, args):
        self.send("* BYE fake server logging out\r\n%s OK LOGOUT completed\r\n" % tag)
        return "close"

    def cmd_starttls(self, tag, args):
        s = self.srv
        if self.tls or s.starttls == "absent" or s.tls == "implicit" or self.state != "nonauth":
            self.send("%s BAD STARTTLS not available\r\n" % tag)
            return
        if s.starttls == "inject":
            # The attack: plaintext that a careless client reads as if it had
            # come over TLS.
            self.send("%s OK Begin TLS negotiation now\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN\r\n" % tag)
        else:
            self.send("%s OK Begin TLS negotiation now\r\n" % tag)
        if self.buf:
            self.srv._event(self.id, "error", "client sent data before TLS: %r" % self.buf)
            self.buf = b""
        self.start_tls()

    def _auth_result(self, tag, user, password):
        s = self.srv
        if user == s.user and password == s.password and s.login == "ok":
            self.state = "auth"
            self.send("%s OK [CAPABILITY %s] Logged in\r\n" % (tag, self.caps()))
        else:
            self.send("%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n" % tag)

    def cmd_login(self, tag, args):
        if self.state != "nonauth":
            self.send("%s BAD already authenticated\r\n" % tag)
            return
        if self.srv.logindisabled or (not self.tls and self.srv.logindisabled_before_tls):
            self.send("%s NO [PRIVACYREQUIRED] LOGIN disabled\r\n" % tag)
            return
        if len(args) != 2 or isinstance(args[0], list) or isinstance(args[1], list):
            self.send("%s BAD LOGIN needs two arguments\r\n" % tag)
            return
        self._auth_result(tag, _text(args[0]), _text(args[1]))

    def cmd_authenticate(self, tag, args):
        if self.state != "nonauth":
            self.send("%s BAD already authenticated\r\n" % tag)
            return
        if not args:
            self.send("%s BAD mechanism missing\r\n" % tag)
            return
        mech = _upper(args[0])
        if mech not in self.srv.auth_mechs:
            self.send("%s NO unsupported mechanism\r\n" % tag)
            return

        def challenge(text):
            self.send(b"+ " + base64.b64encode(text) + b"\r\n")
            line = self.readline()
            if line == b"*":
                raise _Cancel()
            return base64.b64decode(line, validate=False)

        try:
            if mech == "PLAIN":
                if len(args) > 1:
                    if not self.srv.sasl_ir:
                        self.send("%s BAD SASL-IR not supported\r\n" % tag)
                        return
                    ir = _text(args[1])
                    data = b"" if ir == "=" else base64.b64decode(ir)
                else:
                    self.send(b"+ \r\n")
                    line = self.readline()
                    if line == b"*":
                        raise _Cancel()
                    data = base64.b64decode(line)
                parts = data.split(b"\0")
                if len(parts) != 3:
                    self.send("%s BAD bad PLAIN payload\r\n" % tag)
                    return
                self._auth_result(tag, parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace"))
            elif mech.startswith("SCRAM-"):
                self._scram(tag, mech, _text(args[1]) if len(args) > 1 else None, challenge)
            elif mech == "LOGIN":
                if len(args) > 1:
                    user = base64.b64decode(_text(args[1]))
                else:
                    user = challenge(b"Username:")
                pw = challenge(b"Password:")
                self._auth_result(tag, user.decode("utf-8", "replace"), pw.decode("utf-8", "replace"))
        except _Cancel:
            self.send("%s BAD authentication cancelled\r\n" % tag)
        except (ValueError, base64.binascii.Error):
            self.send("%s BAD bad base64\r\n" % tag)

    def _scram(self, tag, mech, ir, challenge):
        import scram

        s = self.srv
        fault = s.scram_fault
        if ir is None:
            self.send(b"+ \r\n")
            line = self.readline()
            if line == b"*":
                raise _Cancel()
            ir = line.decode()
        client_first = base64.b64decode(ir, validate=True).decode()
        cb = None
        if mech.endswith("-PLUS"):
            cb = s.end_point("wrong" if fault == "cb-mismatch" else None)
        srv = scram.Server(mech, s.user, s.password, cb_data=cb)
        first = srv.first(client_first)
        flag = srv.gs2.split(",")[0]
        plus_offered = any(m.endswith("-PLUS") for m in s.auth_mechs)
        if mech.endswith("-PLUS"):
            want = "p=tls-server-end-point" if self.sock.version() != "TLSv1.3" else "p=tls-exporter"
            if flag != want:
                self.send("%s NO [AUTHENTICATIONFAILED] channel binding type %s, expected %s\r\n" % (tag, flag, want))
                return
        elif flag == "y" and plus_offered:
            # RFC 5802: the client could bind and thinks we cannot: a downgrade
            self.send("%s NO [AUTHENTICATIONFAILED] SCRAM downgrade (y with -PLUS offered)\r\n" % tag)
            return
        if fault == "bad-nonce":
            first = srv.first(client_first, nonce="Xx" + srv.nonce_suffix)
        elif fault == "iter0":
            first = srv.first(client_first, iterations=0)
        elif fault == "iter-huge":
            first = srv.first(client_first, iterations=100000000)
        elif fault == "mandatory-ext":
            first = "m=ext," + first
        if fault == "bad-base64":
            self.send(b"+ %%not*base64%%\r\n")
            line = self.readline()
            if line == b"*":
                raise _Cancel()
            self.send("%s NO bad\r\n" % tag)
            return
        final = challenge(first.encode()).decode()
        if mech.endswith("-PLUS") and self.sock.version() == "TLSv1.3":
            # tls-exporter cannot be computed here: check its size, then trust it
            c = base64.b64decode(dict(scram.parse(final.rpartition(",p=")[0]))["c"])
            srv.cb_data = c[len(srv.gs2):] if len(c) == len(srv.gs2) + 32 else b"wrong size"
        ok, server_final = srv.final(final)
        s.scram_results.append((mech, srv.gs2, ok, server_final))
        if not ok:
            challenge(server_final.encode())
            self.send("%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n" % tag)
            return
        if fault == "no-signature":
            self.state = "auth"
            self.send("%s OK [CAPABILITY %s] Logged in\r\n" % (tag, self.caps()))
            return
        if fault == "bad-signature":
            sig = bytearray(base64.b64decode(server_final[2:]))
            sig[0] ^= 1
            server_final = "v=" + base64.b64encode(bytes(sig)).decode()
        challenge(server_final.encode())
        self.state = "auth"
        self.send("%s OK [CAPABILITY %s] Logged in\r\n" % (tag, self.caps()))

    def _need_auth(self, tag):
        if self.state not in ("auth", "selected"):
            self.send("%s BAD not authenticated\r\n" % tag)
            return False
        return True

    def _mb(self):
        """The selected folder's message list (folder= before any SELECT,
        for handlers that call _resolve early)."""
        return (self.folder or self.srv.find_folder(None)).messages

    def _need_selected(self, tag):
        if self.state != "selected":
            self.send("%s BAD no mailbox selected\r\n" % tag)
            return False
        return True

    def cmd_select(self, tag, args, readonly=False):
        if not self._need_auth(tag):
            return
        name = _text(args[0]) if args else ""
        f = self.srv.find_folder(name)
        if f is None:
            self.send("%s NO [NONEXISTENT] Mailbox doesn't exist: %s\r\n" % (tag, name))
            return
        mb = f.messages
        self.state = "selected"
        self.selected = name
        self.folder = f
        self.readonly = readonly
        with self.srv.lock:
            recent = len(f.recent)
            if not readonly:
                f.recent.clear()
            self.pending = [p for p in self.pending if p["folder"] is not f]
        unseen = [i + 1 for i, m in enumerate(mb) if "\\Seen" not in m.flags]
        out = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        out += "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n"
        out += "* %d EXISTS\r\n* %d RECENT\r\n" % (len(mb), recent)
        if unseen:
            out += "* OK [UNSEEN %d] First unseen.\r\n" % unseen[0]
        out += "* OK [UIDVALIDITY %d] UIDs valid\r\n" % f.uidvalidity
        out += "* OK [UIDNEXT %d] Predicted next UID\r\n" % f.next_uid
        out += "%s OK [%s] %s completed\r\n" % (tag, "READ-ONLY" if readonly else "READ-WRITE",
                                              "EXAMINE" if readonly else "SELECT")
        self.send(out)

    def cmd_examine(self, tag, args):
        return self.cmd_select(tag, args, readonly=True)

    def cmd_close(self, tag, args):
        if not self._need_selected(tag):
            return
        if not self.readonly:
            with self.srv.lock:
                mb = self.folder.messages
                n = len(mb)
                mb[:] = [m for m in mb if "\\Deleted" not in m.flags]
                gone = n != len(mb)
            if gone:
                self.srv._expunged(self, self.folder)
        self.state = "auth"
        self.send("%s OK CLOSE completed\r\n" % tag)

    def cmd_unselect(self, tag, args):
        if not self._need_selected(tag):
            return
        self.state = "auth"
        self.send("%s OK UNSELECT completed\r\n" % tag)

    def cmd_status(self, tag, args):
        if not self._need_auth(tag):
            return
        s = self.srv
        f = s.find_folder(_text(args[0])) if args else None
        if f is None:
            if len(s.folders) > 1:
                self.send("%s NO [NONEXISTENT] Mailbox doesn't exist: %s\r\n" % (tag, _text(args[0]) if args else ""))
                return
            f = s.find_folder(None)
        mb = f.messages
        self.send('* STATUS "%s" (MESSAGES %d UNSEEN %d UIDNEXT %d UIDVALIDITY %d)\r\n%s OK STATUS completed\r\n' % (
            f.name, len(mb), sum(1 for m in mb if "\\Seen" not in m.flags),
            f.next_uid, f.uidvalidity, tag))

    # sets and searching

    def _resolve(self, setspec, uid):
        """Messages named by a sequence set (uid or seq numbers)."""
        mb = self._mb()
        if not mb:
            return []
        keys = [m.uid for m in mb] if uid else list(range(1, len(mb) + 1))
        top = keys[-1]
        chosen = set()
        # keys ascend (UIDs and sequence numbers alike): ranges by bisection,
        # so a set of thousands of parts against a large mailbox stays fast
        for part in _text(setspec).split(","):
            if ":" in part:
                a, b = part.split(":", 1)
                a = top if a == "*" else int(a)
                b = top if b == "*" else int(b)
                lo, hi = min(a, b), max(a, b)
                chosen.update(range(bisect.bisect_left(keys, lo), bisect.bisect_right(keys, hi)))
            else:
                v = top if part == "*" else int(part)
                i = bisect.bisect_left(keys, v)
                if i < len(keys) and keys[i] == v:
                    chosen.add(i)
        return [mb[i] for i in sorted(chosen)]

    def _search(self, tag, args, uid):
        if not self._need_selected(tag):
            return
        mb = self._mb()
        toks = [a if isinstance(a, list) else _text(a) for a in args]
        try:
            pred = self._criteria(toks, uid)
        except ValueError as e:
            self.send("%s BAD bad search: %s\r\n" % (tag, e))
            return
        hits = []
        for i, m in enumerate(mb):
            if pred(m, i + 1):
                hits.append(m.uid if uid else i + 1)
        self.send("* SEARCH%s\r\n%s OK SEARCH completed\r\n" % ("".join(" %d" % h for h in hits), tag))

    def _criteria(self, toks, uid):
        preds = []
        toks = list(toks)

        def one():
            t = toks.pop(0)
            if isinstance(t, list):
                sub = self._criteria(t, uid)
                return sub
            u = t.upper()
            if u == "ALL":
                return lambda m, n: True
            flagmap = {"SEEN": "\\Seen", "DELETED": "\\Deleted", "FLAGGED": "\\Flagged",
                       "ANSWERED": "\\Answered", "DRAFT": "\\Draft"}
            if u in flagmap:
                f = flagmap[u]
                return lambda m, n: f in m.flags
            if u.startswith("UN") and u[2:] in flagmap:
                f = flagmap[u[2:]]
                return lambda m, n: f not in m.flags
            if u in ("NEW", "RECENT"):
                return lambda m, n: "\\Seen" not in m.flags
            if u == "OLD":
                return lambda m, n: False
            if u == "NOT":
                p = one()
                return lambda m, n: not p(m, n)
            if u == "OR":
                a, b = one(), one()
                return lambda m, n: a(m, n) or b(m, n)
            if u == "CHARSET":
                toks.pop(0)
                return lambda m, n: True
            if u == "UID":
                sel = set(id(m) for m in self._resolve(toks.pop(0), True))
                return lambda m, n: id(m) in sel
            if re.match(r"^[0-9*][0-9*:,]*$", u):
                sel = set(id(m) for m in self._resolve(t, False))
                return lambda m, n: id(m) in sel
            raise ValueError("unsupported key %s" % t)

        while toks:
            preds.append(one())
        return lambda m, n: all(p(m, n) for p in preds)

    def cmd_search(self, tag, args):
        return self._search(tag, args, False)

    def cmd_uid_search(self, tag, args):
        return self._search(tag, args, True)

    # fetching

    def _fetch(self, tag, args, uid):
        if not self._need_selected(tag):
            return
        if len(args) < 2:
            self.send("%s BAD FETCH needs a set and items\r\n" % tag)
            return
        msgs = self._resolve(args[0], uid)
        items = args[1] if isinstance(args[1], list) else args[1:]
        names = []
        for it in items:
            n = _upper(it) if not isinstance(it, list) else ""
            if n == "ALL" or n == "FAST":
                names += ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
            else:
                names.append(n)
        if uid and "UID" not in names:
            names.insert(0, "UID")
        for m in msgs:
            seq = self._mb().index(m) + 1
            parts = []
            literal = None
            for n in names:
                if n == "UID":
                    parts.append(b"UID %d" % m.uid)
                elif n == "FLAGS":
                    parts.append(b"FLAGS (" + " ".join(sorted(m.flags)).encode() + b")")
                elif n == "RFC822.SIZE":
                    lie = 1 if self.srv.fetch_fault == "size-lie" else 0
                    parts.append(b"RFC822.SIZE %d" % (len(m.data) + lie))
                elif n == "INTERNALDATE":
                    parts.append(b'INTERNALDATE "01-Jan-2024 12:00:00 +0000"')
                elif n in ("BODY[]", "BODY.PEEK[]", "RFC822", "BINARY[]", "BINARY.PEEK[]"):
                    label = {"BODY.PEEK[]": "BODY[]", "BINARY.PEEK[]": "BINARY[]"}.get(n, n)
                    if not n.endswith("PEEK[]") and not self.readonly:
                        m.flags.add("\\Seen")
                    literal = (label.encode(), m.data)
                elif n in ("BODY.PEEK[HEADER]", "BODY[HEADER]", "RFC822.HEADER"):
                    hdr = m.data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                    parts.append((b"RFC822.HEADER" if n == "RFC822.HEADER" else b"BODY[HEADER]") + b" {%d}\r\n" % len(hdr) + hdr)
                else:
                    self.send("%s BAD unsupported fetch item %s\r\n" % (tag, n))
                    return
            if self.srv.on_fetch_message is not None:
                self.srv.on_fetch_message(self, m)
            head = b"* %d FETCH (" % seq + b" ".join(parts)
            if literal is None:
                self.send(head + b")\r\n")
                continue
            label, data = literal
            head += (b" " if parts else b"") + label + b" {%d}\r\n" % len(data)
            fault = self.srv.fetch_fault
            if fault == "drop-mid-literal":
                self.send(head + data[: self.srv.drop_after])
                time.sleep(0.05)
                self.srv._event(self.id, "fault", "dropped connection mid-literal")
                self.sock.shutdown(socket.SHUT_RDWR)
                return "close"
            if fault == "bye":
                self.send(b"* BYE fake server: shutting down\r\n")
                self.srv._event(self.id, "fault", "BYE instead of FETCH data")
                return "close"
            if self.srv.send_literal is not None:
                self.srv.send_literal(self, head, data)
                continue
            self.send(head + data + b")\r\n")
        self.send("%s OK FETCH completed\r\n" % tag)

    def cmd_fetch(self, tag, args):
        return self._fetch(tag, args, False)

    def cmd_uid_fetch(self, tag, args):
        return self._fetch(tag, args, True)

    def _store(self, tag, args, uid):
        if not self._need_selected(tag):
            return
        if self.srv.store == "no":
            self.send("%s NO [SERVERBUG] fake server: STORE failed\r\n" % tag)
            return
        if len(args) < 3:
            self.send("%s BAD STORE needs set, item, flags\r\n" % tag)
            return
        msgs = self._resolve(args[0], uid)
        item = _upper(args[1])
        fl = args[2] if isinstance(args[2], list) else args[2:]
        fl = set(_text(f) for f in fl)
        # Canonical case for system flags.
        canon = {"\\SEEN": "\\Seen", "\\DELETED": "\\Deleted", "\\FLAGGED": "\\Flagged",
                 "\\ANSWERED": "\\Answered", "\\DRAFT": "\\Draft"}
        fl = set(canon.get(f.upper(), f) for f in fl)
        out = b""
        with self.srv.lock:
            for m in msgs:
                if item.startswith("+FLAGS"):
                    m.flags |= fl
                elif item.startswith("-FLAGS"):
                    m.flags -= fl
                elif item.startswith("FLAGS"):
                    m.flags = set(fl)
                else:
                    self.send("%s BAD bad STORE item\r\n" % tag)
                    return
                if not item.endswith(".SILENT"):
                    seq = self._mb().index(m) + 1
                    out += b"* %d FETCH (%sFLAGS (%s))\r\n" % (
                        seq, b"UID %d " % m.uid if uid else b"", " ".join(sorted(m.flags)).encode())
        self.send(out + ("%s OK STORE completed\r\n" % tag).encode())

    def cmd_store(self, tag, args):
        return self._store(tag, args, False)

    def cmd_uid_store(self, tag, args):
        return self._store(tag, args, True)

    def _expunge(self, tag, uidset):
        if not self._need_selected(tag):
            return
        out = b""
        with self.srv.lock:
            mb = self._mb()
            allowed = None if uidset is None else set(id(m) for m in self._resolve(uidset, True))
            i = 0
            while i < len(mb):
                m = mb[i]
                if "\\Deleted" in m.flags and (allowed is None or id(m) in allowed):
                    del mb[i]
                    out += b"* %d EXPUNGE\r\n" % (i + 1)
                else:
                    i += 1
        if out:
            self.srv._expunged(self, self.folder)
        self.send(out + ("%s OK EXPUNGE completed\r\n" % tag).encode())

    def cmd_expunge(self, tag, args):
        return self._expunge(tag, None)

    def cmd_uid_expunge(self, tag, args):
        if not self.srv.uidplus:
            self.send("%s BAD UID EXPUNGE needs UIDPLUS\r\n" % tag)
            return
        if not args:
            self.send("%s BAD UID EXPUNGE needs a set\r\n" % tag)
            return
        return self._expunge(tag, args[0])


class _Cancel(Exception):
    pass


class Literal(bytes):
    """A literal argument (so tokenizing can tell it from an atom)."""


def _plain(a):
    if isinstance(a, list):
        return [_plain(x) for x in a]
    return bytes(a)


def _text(a):
    if isinstance(a, list):
        return " ".join(_text(x) for x in a)
    return bytes(a).decode("utf-8", "replace")


def _upper(a):
    return _text(a).upper()


def _quote(name):
    """A mailbox name as an IMAP quoted string (bytes)."""
    return b'"' + name.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def tokenize(text):
    """Tokens of one command line: atoms, quoted strings (unescaped) and
    parenthesised lists (nested lists).  Brackets inside an atom (BODY[...])
    are kept in the atom even with spaces and parentheses in them."""
    stack = [[]]
    i = 0
    n = len(text)
    while i < n:
        c = text[i : i + 1]
        if c == b" ":
            i += 1
        elif c == b"(":
            stack.append([])
            i += 1
        elif c == b")":
            if len(stack) > 1:
                lst = stack.pop()
                stack[-1].append(lst)
            i += 1
        elif c == b'"':
            i += 1
            out = bytearray()
            while i < n and text[i : i + 1] != b'"':
                if text[i : i + 1] == b"\\" and i + 1 < n:
                    i += 1
                out += text[i : i + 1]
                i += 1
            i += 1
            stack[-1].append(bytes(out))
        else:
            j = i
            depth = 0
            while j < n:
                ch = text[j : j + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth <= 0 and ch in (b" ", b"(", b")"):
                    break
                j += 1
            stack[-1].append(text[i:j])
            i = j
    while len(stack) > 1:
        lst = stack.pop()
        stack[-1].append(lst)
    return stack[0]


if __name__ == "__main__":
    # Manual use: python3 fakeimap.py [PORT-FILE]; serves with default
    # settings (plain, STARTTLS needs certs so it is absent) until killed.
    sys.path.insert(0, HERE)
    srv = FakeIMAP(starttls="absent", messages=[b"Subject: hi\n\nhello\n"]).start()
    print("fakeimap listening on 127.0.0.1:%d" % srv.port, flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        srv.stop()
