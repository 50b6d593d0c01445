#!/usr/bin/env python3
"""A scripted fake SMTP or LMTP server, for the faults a real one will not
produce on demand.

    srv = FakeSMTP(certs=certs, script={("RCPT", 2): "550 5.1.1 no such user"}).start()
    ... run mailfetch with smtp = 127.0.0.1:srv.port ...
    srv.stop()
    [m.data for m in srv.messages]

It listens on a free 127.0.0.1 port (or on a unix socket: unix_path), one
thread per connection, and speaks enough of RFC 5321 (lmtp=True: RFC 2033,
LHLO and one reply per accepted recipient after the data) to take a client
through the greeting, EHLO/HELO/LHLO, STARTTLS, MAIL, RCPT, DATA, RSET,
NOOP and QUIT, and BDAT when caps offers CHUNKING (RFC 3030).

Replies are scripted per step and per transaction: script maps STEP or
(STEP, N) to a reply line ("451 4.3.0 try later") or an action, N counting
MAIL commands from 1 across all connections.  Steps: GREETING, EHLO (also
HELO and LHLO), STARTTLS, MAIL, RCPT, DATA, DOT (the end of the data:
also BDAT ... LAST), BDAT (a chunk before the last), RSET, QUIT.  Actions:
    "DROP"         close the connection instead of replying
    "STALL"        say nothing more; close when the client does (or after
                   io_timeout)
    "DRIP <reply>" send the reply one byte a second (a slow server)
    "BYE <reply>"  send the reply and a 421, and close (an idle timeout)

What the server saw is kept: messages (one Transaction per end of data
received, with .mail_from, .mail_params, .rcpts, .data (dot-unstuffed),
.raw (as sent), .chunks (BDAT sizes; [] for DATA), .pipelined, .conn), commands ([(conn, VERB, line)]),
events, and sync_violations (commands sent before the reply to the one
before while PIPELINING was not offered).

Pipelining is seen as real servers see it: replies are held while more
input is buffered, and after MAIL and RCPT, when nothing is buffered, for
a moment (hold) in case the next command is on its way; a transaction
whose MAIL, RCPT and DATA were all read before any of their replies went
out counts as pipelined."""

import os
import select
import socket
import ssl
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Disconnect(Exception):
    pass


class Transaction:
    def __init__(self, conn):
        self.conn = conn
        self.mail_from = None
        self.mail_params = []
        self.rcpts = []
        self.accepted = []
        self.data = None
        self.raw = None
        self.pipelined = False
        self.replied = False  # a reply of this transaction went out before DATA was read
        self.chunks = []

    def __repr__(self):
        return "Transaction(from=%r, rcpts=%r, %s bytes, pipelined=%s)" % (
            self.mail_from, self.rcpts, None if self.data is None else len(self.data), self.pipelined)


class FakeSMTP:
    def __init__(self, certs=None, lmtp=False, unix_path=None, host="127.0.0.1",
                 caps=("PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"),
                 starttls=False, cert="good", script=None, hold=0.3, io_timeout=30.0, log_path=None,
                 name="fake.test"):
        self.certs = certs
        self.lmtp = lmtp
        self.unix_path = unix_path
        self.host = host
        self.caps = list(caps)
        self.starttls = starttls
        self.cert = cert  # "good" etc. (a Certs pair) or (cert, key) paths
        self.script = dict(script or {})
        self.hold = hold
        self.io_timeout = io_timeout
        self.log_path = log_path
        self.name = name
        self.port = None
        self.messages = []
        self.commands = []
        self.events = []
        self.sync_violations = []
        self.ntrans = 0
        self.connections = 0
        self.lock = threading.Lock()
        self._sock = None
        self._thread = None
        self._stop = threading.Event()
        self._conns = []
        self._logf = open(log_path, "a") if log_path else None

    # -- record ------------------------------------------------------------

    def _event(self, conn, kind, data=None):
        with self.lock:
            self.events.append((conn, kind, data))
        if self._logf:
            self._logf.write("%d %s %r\n" % (conn, kind, data if not isinstance(data, bytes) else data[:300]))
            self._logf.flush()

    def log_tail(self, n=60):
        return "\n".join("%d %s %r" % (c, k, d if not isinstance(d, bytes) else d[:200])
                         for (c, k, d) in list(self.events)[-n:]) + "\n"

    def verbs(self):
        return [v for (_c, v, _l) in list(self.commands)]

    def delivered(self):
        """Transactions whose data the server accepted (a 2xx after it)."""
        return [t for t in list(self.messages) if t.accepted]

    # -- server ------------------------------------------------------------

    def start(self):
        if self.unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                os.unlink(self.unix_path)
            except FileNotFoundError:
                pass
            s.bind(self.unix_path)
            os.chmod(self.unix_path, 0o666)
        else:
            s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((self.host, 0))
            self.port = s.getsockname()[1]
        s.listen(8)
        s.settimeout(0.2)
        self._sock = s
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
        if self._thread:
            self._thread.join(5)
            self._thread = None
        if self._sock:
            self._sock.close()
            self._sock = None
            if self.unix_path:
                try:
                    os.unlink(self.unix_path)
                except OSError:
                    pass
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
        while not self._stop.is_set():
            try:
                c, _addr = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                self.connections += 1
                n = self.connections
            t = threading.Thread(target=self._serve, args=(c, n), daemon=True)
            self._conns.append(t)
            t.start()

    def server_context(self):
        if isinstance(self.cert, tuple):
            cert, key = self.cert
        else:
            cert, key = self.certs.pair(self.cert)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    def _serve(self, sock, conn):
        self._event(conn, "connect")
        sess = Session(self, sock, conn)
        try:
            sess.run()
        except Disconnect as e:
            self._event(conn, "eof", str(e) or None)
        except (OSError, ssl.SSLError) as e:
            self._event(conn, "error", "%s: %s" % (type(e).__name__, e))
        except Exception:
            import traceback

            self._event(conn, "error", traceback.format_exc())
        finally:
            try:
                sess.sock.close()
            except OSError:
                pass
            self._event(conn, "closed")

    def reply_for(self, step, n, default):
        """The scripted reply (or action) for step of transaction n."""
        if (step, n) in self.script:
            return self.script[(step, n)]
        return self.script.get(step, default)


class Session:
    def __init__(self, srv, sock, conn):
        self.srv = srv
        self.sock = sock
        self.id = conn
        self.buf = b""
        self.pending = []
        self.tls = False
        self.greeted = False
        self.trans = None
        self.sock.settimeout(srv.io_timeout)

    # -- I/O -----------------------------------------------------------------

    def _fill(self, timeout=None):
        if timeout is not None:
            if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
                pass
            else:
                r, _w, _x = select.select([self.sock], [], [], timeout)
                if not r:
                    return False
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            raise Disconnect("timeout")
        except (ConnectionResetError, BrokenPipeError):
            raise Disconnect("reset")
        if not b:
            raise Disconnect()
        self.buf += b
        return True

    def readline(self):
        while b"\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise Disconnect("line too long")
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def queue(self, text):
        self.pending.append(text.encode() if isinstance(text, str) else text)

    def flush(self):
        if self.pending:
            data = b"".join(p + b"\r\n" for p in self.pending)
            self.pending = []
            self.srv._event(self.id, "sent", data)
            self.sock.sendall(data)
            if self.trans is not None and self.trans.data is None:
                self.trans.replied = True

    def act(self, reply):
        """Queues reply, or carries out an action.  Returns False when the
        session must end."""
        if reply == "DROP":
            self.flush()
            self.srv._event(self.id, "drop")
            return False
        if reply == "STALL":
            self.flush()
            self.srv._event(self.id, "stall")
            deadline = time.monotonic() + self.srv.io_timeout
            try:
                while time.monotonic() < deadline and not self.srv._stop.is_set():
                    self._fill(0.2)
            except Disconnect:
                pass
            return False
        if reply.startswith("BYE "):
            # The reply, then the 421 of a server ending an idle session,
            # then the end of the connection.
            self.queue(reply[4:])
            self.queue("421 4.4.2 %s closing the connection" % self.srv.name)
            self.flush()
            self.srv._event(self.id, "bye")
            return False
        if reply.startswith("DRIP "):
            self.flush()
            for ch in (reply[5:] + "\r\n").encode():
                self.sock.sendall(bytes([ch]))
                time.sleep(1.0)
            return True
        self.queue(reply)
        return True

    # -- protocol ---------------------------------------------------------

    def run(self):
        srv = self.srv
        if not self.act(srv.reply_for("GREETING", srv.ntrans + 1, "220 %s %s ready" % (
                srv.name, "LMTP" if srv.lmtp else "ESMTP"))):
            return
        self.flush()
        while True:
            line = self.readline()
            self.srv._event(self.id, "recv", line)
            text = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb = text.split(" ", 1)[0].upper()
            if verb in ("MAIL", "RCPT"):
                verb = text.split(":", 1)[0].upper()
                verb = {"MAIL FROM": "MAIL", "RCPT TO": "RCPT"}.get(verb, verb)
            with srv.lock:
                srv.commands.append((self.id, verb, text))
            if self.pending and "PIPELINING" not in srv.caps:
                srv.sync_violations.append((self.id, verb))
            handler = getattr(self, "do_" + verb.replace(" ", "_"), None)
            if handler is None:
                ok = self.act("500 5.5.1 unknown command")
            else:
                ok = handler(text)
            if not ok:
                return
            # Replies go out when no more input is buffered; after MAIL
            # and RCPT of a pipelining session, a moment later (see above).
            if b"\n" in self.buf:
                continue
            if verb in ("MAIL", "RCPT") and "PIPELINING" in srv.caps and srv.hold > 0:
                if self._fill(srv.hold) and b"\n" in self.buf:
                    continue
            self.flush()

    def _n(self):
        return self.srv.ntrans

    def do_EHLO(self, text, verb="EHLO"):
        srv = self.srv
        if (verb == "LHLO") != srv.lmtp:
            return self.act("500 5.5.1 %s is not for this server" % verb)
        r = srv.reply_for("EHLO", self._n() + 1, None)
        if r is not None:
            return self.act(r)
        caps = list(srv.caps)
        if srv.starttls and not self.tls:
            caps.append("STARTTLS")
        lines = [srv.name] + caps
        for k, l in enumerate(lines):
            self.queue("250%s%s" % ("-" if k + 1 < len(lines) else " ", l))
        self.trans = None
        return True

    def do_LHLO(self, text):
        return self.do_EHLO(text, "LHLO")

    def do_HELO(self, text):
        if self.srv.lmtp:
            return self.act("500 5.5.1 HELO is not for this server")
        r = self.srv.reply_for("EHLO", self._n() + 1, "250 %s" % self.srv.name)
        return self.act(r)

    def do_STARTTLS(self, text):
        srv = self.srv
        if not srv.starttls or self.tls:
            return self.act("502 5.5.1 no STARTTLS here")
        r = srv.reply_for("STARTTLS", self._n() + 1, "220 2.0.0 go ahead")
        if not self.act(r):
            return False
        self.flush()
        if not r.startswith("220"):
            return True
        if self.buf:
            srv._event(self.id, "injected", self.buf)
        try:
            self.sock = srv.server_context().wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            srv._event(self.id, "tls-failed", str(e))
            return False
        srv._event(self.id, "tls-ok")
        self.tls = True
        self.buf = b""
        self.trans = None
        return True

    def do_MAIL(self, text):
        srv = self.srv
        with srv.lock:
            srv.ntrans += 1
            n = srv.ntrans
        t = Transaction(self.id)
        arg = text.split(":", 1)[1] if ":" in text else ""
        path, _, params = arg.strip().partition(" ")
        t.mail_from = path.strip("<>")
        t.mail_params = params.split()
        t.n = n
        r = srv.reply_for("MAIL", n, "250 2.1.0 Ok")
        # A refused MAIL starts no transaction: RCPT and DATA get 503.
        self.trans = t if r.startswith("2") else None
        return self.act(r)

    def do_RCPT(self, text):
        t = self.trans
        if t is None:
            return self.act("503 5.5.1 need MAIL first")
        addr = text.split(":", 1)[1].strip() if ":" in text else ""
        t.rcpts.append(addr.strip("<>"))
        r = self.srv.reply_for("RCPT", t.n, "250 2.1.5 Ok")
        if r.startswith("2"):
            t.accepted_rcpts = getattr(t, "accepted_rcpts", 0) + 1
        return self.act(r)

    def do_DATA(self, text):
        srv = self.srv
        t = self.trans
        if t is None:
            return self.act("503 5.5.1 need MAIL first")
        t.pipelined = not t.replied
        if not getattr(t, "accepted_rcpts", 0):
            ok = self.act("554 5.5.1 no valid recipients")
            self.trans = None
            return ok
        r = srv.reply_for("DATA", t.n, "354 go ahead")
        if not self.act(r):
            return False
        if not r.startswith("354"):
            self.trans = None
            return True
        self.flush()
        raw = []
        while True:
            line = self.readline()
            if line in (b".\r\n", b".\n"):
                break
            raw.append(line)
        t.raw = b"".join(raw)
        return self._end_of_data(t, b"".join(l[1:] if l.startswith(b".") else l for l in raw))

    def _end_of_data(self, t, data):
        """The whole message is in (after DATA's dot or BDAT ... LAST):
        keep it, then the replies to its end (LMTP: one per accepted
        recipient), scripted as DOT."""
        srv = self.srv
        t.data = data
        with srv.lock:
            srv.messages.append(t)
        srv._event(self.id, "data", t.data)
        self.trans = None
        for k in range(t.accepted_rcpts if srv.lmtp else 1):
            r = srv.reply_for("DOT", t.n, "250 2.0.0 Ok: queued as %d" % t.n)
            if r.startswith("2"):
                t.accepted.append(k)
            if not self.act(r):
                return False
        return True

    def do_BDAT(self, text):
        srv = self.srv
        parts = text.split()
        if "CHUNKING" not in srv.caps:
            return self.act("500 5.5.1 unknown command")
        if len(parts) not in (2, 3) or not parts[1].isdigit() or (len(parts) == 3 and parts[2].upper() != "LAST"):
            return self.act("501 5.5.4 BDAT size [LAST]")
        n, last = int(parts[1]), len(parts) == 3
        while len(self.buf) < n:
            if len(self.buf) > 64 << 20:
                raise Disconnect("chunk too large")
            self._fill()
        chunk, self.buf = self.buf[:n], self.buf[n:]
        srv._event(self.id, "chunk", chunk)
        t = self.trans
        if t is None or not getattr(t, "accepted_rcpts", 0):
            # RFC 3030, 4.2: the chunk is read and dropped all the same.
            if last:
                self.trans = None
            return self.act("503 5.5.1 need MAIL first" if t is None else "554 5.5.1 no valid recipients")
        if not t.chunks:
            t.pipelined = not t.replied
            t.raw = b""
        t.chunks.append(n)
        t.raw += chunk
        if not last:
            return self.act(srv.reply_for("BDAT", t.n, "250 2.0.0 %d octets received" % n))
        return self._end_of_data(t, t.raw)

    def do_RSET(self, text):
        self.trans = None
        return self.act(self.srv.reply_for("RSET", self._n(), "250 2.0.0 Ok"))

    def do_NOOP(self, text):
        return self.act("250 2.0.0 Ok")

    def do_QUIT(self, text):
        self.act(self.srv.reply_for("QUIT", self._n(), "221 2.0.0 Bye"))
        self.flush()
        return False
