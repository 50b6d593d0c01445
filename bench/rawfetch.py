#!/usr/bin/env python3
"""The raw limit: the least an IMAP client over TLS can do to get all mail.

    rawfetch.py HOST PORT USER PASSWORD CAFILE [FOLDER]

Logs in (LOGIN), SELECTs the folder, sends one `UID FETCH 1:* BODY.PEEK[]`,
reads every literal and throws it away, then LOGOUT.  Prints
`messages N bytes B` on stdout; exit 0 on success.  Standard library only;
the certificate is checked against CAFILE.
"""

import socket
import ssl
import sys

BUFSIZE = 1 << 18


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0
        self.chunk = bytearray(BUFSIZE)
        self.view = memoryview(self.chunk)

    def _fill(self):
        n = self.sock.recv_into(self.view, BUFSIZE)
        if not n:
            raise EOFError("connection closed by the server")
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += self.view[:n]

    def line(self):
        while True:
            nl = self.buf.find(b"\n", self.pos)
            if nl >= 0:
                out = bytes(self.buf[self.pos : nl + 1])
                self.pos = nl + 1
                return out
            self._fill()

    def skip(self, n):
        """Discard n bytes of literal."""
        have = len(self.buf) - self.pos
        if have >= n:
            self.pos += n
            return
        n -= have
        self.buf.clear()
        self.pos = 0
        while n > 0:
            got = self.sock.recv_into(self.view, BUFSIZE)
            if not got:
                raise EOFError("connection closed inside a literal")
            if got > n:
                self.buf += self.view[n:got]
                n = 0
            else:
                n -= got

    def send(self, data):
        self.sock.sendall(data)


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command(c, tag, text, on_literal=None):
    """Send a command, read to its tagged reply; returns (status line,
    untagged count)."""
    c.send(("%s %s\r\n" % (tag, text)).encode())
    t = tag.encode() + b" "
    while True:
        line = c.line()
        while line.endswith(b"}\r\n"):
            o = line.rfind(b"{")
            n = int(line[o + 1 : -3])
            if on_literal:
                on_literal(n)
            c.skip(n)
            line = c.line()  # the rest of the response after the literal
        if line.startswith(t):
            if not line[len(t):].startswith(b"OK"):
                raise RuntimeError("%s failed: %r" % (text.split()[0], line))
            return line


def main(argv):
    host, port, user, password, cafile = argv[1:6]
    folder = argv[6] if len(argv) > 6 else "INBOX"
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection((host, int(port)), timeout=120)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = ctx.wrap_socket(raw, server_hostname=host)
    c = Conn(sock)
    greeting = c.line()
    if not greeting.startswith(b"* OK"):
        raise RuntimeError("greeting: %r" % greeting)
    command(c, "a1", "LOGIN %s %s" % (quote(user), quote(password)))
    command(c, "a2", "SELECT %s" % quote(folder))
    stats = [0, 0]

    def lit(n):
        stats[0] += 1
        stats[1] += n

    command(c, "a3", "UID FETCH 1:* BODY.PEEK[]", lit)
    command(c, "a4", "LOGOUT")
    sock.close()
    print("messages %d bytes %d" % tuple(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
