"""The benchmark's deterministic mail corpus.

Every message is a function of (seed, its number i, the corpus shape), so
any one of them can be made again on its own (to show where a delivered
copy differs) and the corpus never has to be held in memory: only its
sizes and SHA-256 digests are.

Messages are LF-only bytes (Dovecot's Maildir stores LF and serves CRLF).
Each one starts, as delivered mail does, with `Return-Path: <...>`, followed
by `X-Bench-Seq: NNNNNN`; neither occurs anywhere else in the corpus, so
the output checker can name a message by the second and split a stream of
concatenated messages (fetchmail's `cat >>`) at the first.

Shape, by default (10,000 messages): 98.2 % text messages of 2-20 KB,
1.8 % multipart messages with a base64 attachment of 100 KB-1 MB, and
exactly one big message (25 MB) in the middle.  About 230 MB in all.
About a third of the text messages hold lines an mbox writer must quote
(`From `, `>From `) and lines it must leave alone.
"""

import base64
import hashlib
import os
import random

SEQ_HEADER = b"X-Bench-Seq: "

_WORDS = None


def _words():
    global _WORDS
    if _WORDS is None:
        rng = random.Random(4242)
        letters = "etaoinshrdlucmfwypvbgkqjxz"
        ws = set()
        while len(ws) < 600:
            n = rng.choice((2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 9, 11))
            ws.add("".join(rng.choice(letters[: rng.choice((12, 18, 26))]) for _ in range(n)))
        _WORDS = sorted(ws)
    return _WORDS


_POOL = None


def _line_pool():
    """4096 deterministic text lines (no line starts with `From ` or `>`)."""
    global _POOL
    if _POOL is None:
        rng = random.Random(777)
        words = _words()
        pool = []
        for k in range(4096):
            target = rng.randint(20, 76)
            parts = []
            n = 0
            while n < target:
                w = rng.choice(words)
                parts.append(w)
                n += len(w) + 1
            line = " ".join(parts)
            if k % 9 == 0:
                line = line.capitalize() + "."
            if k % 61 == 0:
                line = line + "   "  # trailing blanks
            if k % 67 == 0:
                line = "\t" + line
            pool.append(line.encode() + b"\n")
        pool[100] = b"\n"
        pool[200] = b"\n"
        pool[300] = b".\n"  # a lone dot
        pool[400] = "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e \u2013 \u00fcml\u00e4ut\u00df\n".encode()
        pool[500] = b"from lower case is not a From_ line\n"
        pool[600] = b" From with a leading blank\n"
        pool[700] = b"From:not a separator either\n"
        _POOL = pool
    return _POOL


# Lines that an mbox writer has to quote (mboxrd quotes all of them, mboxo
# only the first kind).
_QUOTE_LINES = (
    b"From the desk of the benchmark, line %d\n",
    b">From an already quoted line %d\n",
    b">>From a doubly quoted line %d\n",
    b"From \n",
)


class Corpus:
    """n messages; big = size of the one big message (0: none)."""

    def __init__(self, n, big=25 * 1024 * 1024, seed=1, attach_share=0.018,
                 small=(2000, 20000), attach=(100 * 1024, 1024 * 1024)):
        self.n = n
        self.big = big
        self.seed = seed
        self.attach_share = attach_share
        self.small = small
        self.attach = attach
        self.big_index = (n + 1) // 2 if big and n else 0
        self.sizes = []
        self.digests = []
        self.kinds = []

    def describe(self):
        return "%d messages (seed %d, big %d bytes as number %d)" % (
            self.n, self.seed, self.big, self.big_index)

    # -- making messages ----------------------------------------------------

    def _rng(self, i):
        return random.Random((self.seed * 1000003) ^ (i * 7919 + 17))

    def kind(self, i):
        if i == self.big_index:
            return "big"
        rng = self._rng(i)
        return "attach" if rng.random() < self.attach_share else "text"

    def _headers(self, i, rng, ctype):
        day = 1 + i % 28
        hh, mm, ss = (i // 3600) % 24, (i // 60) % 60, i % 60
        sender = "%s.%s@%s.example.org" % (rng.choice(_words()), rng.choice(_words()), rng.choice(_words()))
        h = [
            "Return-Path: <%s>" % sender,
            "X-Bench-Seq: %06d" % i,
            "Received: from mx%d.example.org (mx%d.example.org [192.0.2.%d])"
            % (i % 7, i % 7, 1 + i % 250),
            "\tby imap.example.net with ESMTPS id %08x" % (rng.getrandbits(32)),
            "\tfor <bench@example.net>; Mon, %02d Jan 2024 %02d:%02d:%02d +0000" % (day, hh, mm, ss),
            "From: %s <%s>" % (rng.choice(_words()).capitalize(), sender),
            "To: Bench <bench@example.net>",
            "Subject: benchmark message %d: %s %s" % (i, rng.choice(_words()), rng.choice(_words())),
            "Date: Mon, %02d Jan 2024 %02d:%02d:%02d +0000" % (day, hh, mm, ss),
            "Message-ID: <bench-%d-%d@example.org>" % (self.seed, i),
            "MIME-Version: 1.0",
        ] + ctype
        return ("\n".join(h) + "\n\n").encode()

    def _text(self, rng, size, quoting):
        pool = _line_pool()
        out = []
        total = 0
        k = 0
        rr = rng.randrange
        while total < size:
            if quoting and rr(40) == 0:
                line = _QUOTE_LINES[k % 4]
                if b"%d" in line:
                    line = line % k
                k += 1
            else:
                line = pool[rr(4096)]
            out.append(line)
            total += len(line)
        return b"".join(out)

    def message(self, i):
        """The LF-only bytes of message i (1-based)."""
        rng = self._rng(i)
        kind = "attach" if rng.random() < self.attach_share else "text"
        if i == self.big_index:
            kind = "big"
        quoting = rng.random() < 0.35
        if kind == "text":
            size = rng.randint(*self.small)
            head = self._headers(i, rng, [
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: 8bit",
            ])
            return head + self._text(rng, max(0, size - len(head)), quoting)
        if kind == "attach":
            size = rng.randint(*self.attach)
            text_size = rng.randint(300, 3000)
        else:
            size = self.big
            text_size = 200000
            quoting = True
        boundary = "=_bench_%d_%08x" % (i, rng.getrandbits(32))
        head = self._headers(i, rng, [
            'Content-Type: multipart/mixed; boundary="%s"' % boundary,
        ])
        text = self._text(rng, text_size, quoting)
        part1 = ("--%s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                 % boundary).encode() + text
        part2h = ("\n--%s\nContent-Type: application/octet-stream; name=\"data%d.bin\"\n"
                  "Content-Disposition: attachment; filename=\"data%d.bin\"\n"
                  "Content-Transfer-Encoding: base64\n\n" % (boundary, i, i)).encode()
        tail = ("\n--%s--\n" % boundary).encode()
        room = size - len(head) - len(part1) - len(part2h) - len(tail)
        raw = max(1, room * 57 // 77)
        att = base64.encodebytes(rng.randbytes(raw))
        return head + part1 + part2h + att + tail

    # -- the whole corpus -------------------------------------------------

    def build(self, write=None, progress=None):
        """Make every message once: record sizes and digests; write(i, data)
        stores it (e.g. into a Maildir)."""
        self.sizes = [0] * (self.n + 1)
        self.digests = [b""] * (self.n + 1)
        self.kinds = [""] * (self.n + 1)
        for i in range(1, self.n + 1):
            m = self.message(i)
            self.sizes[i] = len(m)
            self.digests[i] = hashlib.sha256(m).digest()
            self.kinds[i] = self.kind(i)
            if write:
                write(i, m)
            if progress and i % 1000 == 0:
                progress(i)
        return self

    def total_bytes(self):
        return sum(self.sizes)

    def index(self):
        """{sha256 digest: message number}."""
        return {d: i for i, d in enumerate(self.digests) if i}


def write_maildir_message(maildir, i, data, uid=None, gid=None):
    """Put message i into maildir/cur as an unseen message.  The name carries
    S= (size) and W= (size with CRLF line ends), so Dovecot need not stat
    or read the file to know them, and sorts by number."""
    vsize = len(data) + data.count(b"\n")
    name = "%d.M%dP1.bench,S=%d,W=%d:2," % (1600000000 + i, i, len(data), vsize)
    path = os.path.join(maildir, "cur", name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    if uid is not None:
        os.chown(path, uid, gid)
    return path
