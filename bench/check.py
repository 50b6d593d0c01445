"""Did every message arrive exactly once and byte-exact?

Formats:
  mbox     From_ line, message, blank line.  The quoting is found out per
           message: mboxrd (`>*From ` lines lose one `>`) is tried first, then
           mboxo (only `From ` was quoted, as `>From `; compared against the
           original quoted the same way, since mboxo cannot be undone).
  concat   messages one after the other, no separator (fetchmail `cat >>`):
           split at each message's first header line `Return-Path: <`, which
           the corpus guarantees occurs nowhere else.
  maildir  one file per message in new/ and cur/ (CRLF -> LF first).
  exim-spool  Exim's queue (queue_only: received, not delivered): per
           message what a delivery would write: Return-Path: with the
           envelope sender, the header lines of spool/input/ID-H that are
           not marked deleted, a blank line, and the body in ID-D.

  sdbox    Dovecot's sdbox (the LMTP sink): one file u.UID per message in
           dbox-Mails/: a "2 M..." line, a 30-byte message header with the
           size in hex, the message, then Dovecot's metadata.

Header fields that the delivery path puts in front of a message
(prefix_headers: the forwarding tool's Received:, an LMTP server's
Return-Path:) are taken off the top of a piece one at a time, by name,
until the piece matches; the corpus's own first field is Return-Path:,
so nothing is taken off a piece that matches as it is.

Returns a dict: ok (corpus messages present byte-exact at least once),
duplicates (extra byte-exact copies), missing, differ (pieces that name a
corpus message by X-Bench-Seq but whose bytes differ, counted by reason in
differ_reasons), unknown (pieces that name no corpus message), notes
(format remarks: mboxo quoting, tool header lines removed) and examples (the
first few differences, with the offset and the bytes around it).
"""

import hashlib
import os
import re

FROM_LINE = re.compile(rb"^From ", re.M)
RD_QUOTED = re.compile(rb"^>(>*From )", re.M)
O_QUOTE = re.compile(rb"^From ", re.M)
FIRST_LINE = re.compile(rb"^Return-Path: <", re.M)
SEQ = re.compile(rb"^X-Bench-Seq: (\d+)$", re.M)

MAX_EXAMPLES = 5


class Checker:
    def __init__(self, corpus):
        self.corpus = corpus
        self.index = corpus.index()
        self._mboxo = None

    def mboxo_index(self):
        """{sha256 of the original quoted mboxo-style: number}; made once."""
        if self._mboxo is None:
            idx = {}
            for i in range(1, self.corpus.n + 1):
                idx[hashlib.sha256(O_QUOTE.sub(b">From ", self.corpus.message(i))).digest()] = i
            self._mboxo = idx
        return self._mboxo

    def check(self, fmt, path, added_headers=(), prefix_headers=()):
        strip = None
        if added_headers:
            strip = re.compile(rb"^(?:%s):[^\n]*\n(?:[ \t][^\n]*\n)*" % b"|".join(
                re.escape(x.encode()) for x in added_headers), re.M | re.I)
        res = {"format": fmt, "ok": 0, "missing": 0, "duplicates": 0, "differ": 0,
               "unknown": 0, "pieces": 0, "notes": [], "examples": [], "differ_reasons": {}}
        if fmt == "none":
            res["ok"] = None
            return res
        seen = {}
        state = {"mboxo": 0, "stripped": 0, "prefix": {}}
        prefix = set(x.lower().encode() for x in prefix_headers)

        def found(i):
            seen[i] = seen.get(i, 0) + 1

        def lookup(piece, raw):
            """(number, how) of the corpus message this piece is, or None."""
            i = self.index.get(hashlib.sha256(piece).digest())
            if i is not None:
                return i, "exact"
            if raw is not None:
                i = self.mboxo_index().get(hashlib.sha256(raw).digest())
                if i is not None:
                    return i, "mboxo"
            return None

        for piece, raw in self._pieces(fmt, path, res):
            res["pieces"] += 1
            if strip is not None:
                e = piece.find(b"\n\n")
                head = piece[: e + 1] if e >= 0 else piece
                head2, k = strip.subn(b"", head)
                if k:
                    state["stripped"] += k
                    piece = head2 + piece[len(head):]
            hit = lookup(piece, raw)
            taken = []
            keep = piece
            while not hit and prefix:
                name, rest = first_field(piece)
                if name is None or name.lower() not in prefix:
                    break
                if name.lower() == b"return-path":
                    keep = piece  # the corpus's own first field, for the diff
                taken.append(name.decode("latin-1"))
                piece = rest
                hit = lookup(piece, None)
            if taken and not hit:
                piece = keep
            if hit:
                for t in taken:
                    state["prefix"][t] = state["prefix"].get(t, 0) + 1
                found(hit[0])
                if hit[1] == "mboxo":
                    state["mboxo"] += 1
                continue
            # Not byte-exact.  Name it and say how it differs.
            m = SEQ.search(piece[:8192])
            i = int(m.group(1)) if m and 1 <= int(m.group(1)) <= self.corpus.n else None
            if i is None:
                res["unknown"] += 1
                if len(res["examples"]) < MAX_EXAMPLES:
                    res["examples"].append({"message": None, "why": "names no corpus message",
                                            "length": len(piece), "start": piece[:200].decode("latin-1")})
                continue
            res["differ"] += 1
            found(-i)
            why = self._reason(i, piece, raw)
            res["differ_reasons"][why] = res["differ_reasons"].get(why, 0) + 1
            if len(res["examples"]) < MAX_EXAMPLES:
                res["examples"].append(self._diff(i, piece, why))
        for i in range(1, self.corpus.n + 1):
            c = seen.get(i, 0)
            if c >= 1:
                res["ok"] += 1
                res["duplicates"] += c - 1
            elif not seen.get(-i):
                res["missing"] += 1
        if res["missing"]:
            res["missing_first"] = [i for i in range(1, self.corpus.n + 1)
                                    if not seen.get(i) and not seen.get(-i)][:10]
        if state["stripped"]:
            res["notes"].append("%d header line(s) %s added by the tool removed before comparing"
                                % (state["stripped"], "/".join(added_headers)))
        for name, k in sorted(state["prefix"].items()):
            res["notes"].append("%d %s: header(s) put in front by the delivery path removed before comparing"
                                % (k, name))
        if state["mboxo"]:
            res["notes"].append("%d message(s) are right only as mboxo (only `From ` quoted; "
                                "`>From ` lines come back with one `>` less)" % state["mboxo"])
        return res

    def _reason(self, i, got, raw):
        want = self.corpus.message(i)
        wq = O_QUOTE.sub(b">From ", want)
        for cand, tag in ((want, ""), (wq, " (mboxo)")):
            for g in ((got, raw) if raw is not None else (got,)):
                if g == cand + b"\n":
                    return "one extra blank line at the end" + tag
                if g + b"\n" == cand:
                    return "last newline missing" + tag
        if got.replace(b"\n", b"") == want.replace(b"\n", b""):
            return "line ends differ"
        k = first_difference(got, want)
        line_start = want.rfind(b"\n", 0, k) + 1
        if b"\n\n" not in want[:k]:
            return "header differs (line %r)" % want[line_start : want.find(b"\n", k)][:60].decode("latin-1")
        return "body differs"

    def _pieces(self, fmt, path, res):
        if fmt == "maildir":
            for sub in ("new", "cur"):
                p = os.path.join(path, sub)
                if not os.path.isdir(p):
                    continue
                for name in sorted(os.listdir(p)):
                    with open(os.path.join(p, name), "rb") as f:
                        data = f.read()
                    yield data.replace(b"\r\n", b"\n"), None
            return
        if fmt == "exim-spool":
            yield from exim_spool(path, res)
            return
        if fmt == "sdbox":
            yield from sdbox(path, res)
            return
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            res["notes"].append("no output file")
            return
        if fmt == "concat":
            starts = [m.start() for m in FIRST_LINE.finditer(data)]
            if not starts or starts[0] != 0:
                yield data[: starts[0] if starts else len(data)], None
            for k, s in enumerate(starts):
                yield data[s : starts[k + 1] if k + 1 < len(starts) else len(data)], None
            return
        # mbox
        starts = [m.start() for m in FROM_LINE.finditer(data)]
        if not starts or starts[0] != 0:
            yield data[: starts[0] if starts else len(data)], b""
        for k, s in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(data)
            nl = data.find(b"\n", s, end)
            body = data[nl + 1 : end] if nl >= 0 else b""
            if body.endswith(b"\n\n"):
                body = body[:-1]  # the blank line before the next From_ line
            yield RD_QUOTED.sub(rb"\1", body), body

    def _diff(self, i, got, why):
        want = self.corpus.message(i)
        k = first_difference(got, want)
        return {
            "message": i, "why": why, "got_length": len(got), "want_length": len(want),
            "first_difference": k,
            "got": got[max(0, k - 80) : k + 80].decode("latin-1"),
            "want": want[max(0, k - 80) : k + 80].decode("latin-1"),
        }


def first_field(piece):
    """(name, rest) of a message's first header field (with its
    continuation lines), or (None, piece)."""
    end = 0
    while True:
        k = piece.find(b"\n", end)
        if k < 0:
            return None, piece
        end = k + 1
        if piece[end : end + 1] not in (b" ", b"\t"):
            break
    c = piece.find(b":", 0, end)
    if c <= 0 or b" " in piece[:c]:
        return None, piece
    return piece[:c], piece[end:]


HLINE = re.compile(rb"(\d{3,})(.) ")


def exim_spool(path, res):
    """The messages of an Exim queue (spool/input, not split): per ID the
    -H file's header lines not flagged deleted (`*`), a blank line, and the
    -D file after its first line.  In -H the headers follow the first
    blank line, each as NNNc followed by a space and NNN bytes of header
    text (continuation lines included)."""
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        res["notes"].append("no spool directory")
        return
    for name in names:
        if not name.endswith("-H"):
            continue
        with open(os.path.join(path, name), "rb") as f:
            h = f.read()
        try:
            with open(os.path.join(path, name[:-2] + "-D"), "rb") as f:
                d = f.read()
        except FileNotFoundError:
            res["notes"].append("%s without its -D file" % name)
            continue
        k = h.find(b"\n\n")
        pos = k + 2 if k >= 0 else len(h)
        head = []
        while pos < len(h):
            m = HLINE.match(h, pos)
            if not m:
                res["notes"].append("%s: cannot parse at offset %d" % (name, pos))
                break
            n = int(m.group(1))
            text = h[m.end() : m.end() + n]
            if m.group(2) != b"*":
                head.append(text)
            pos = m.end() + n
        body = d[d.find(b"\n") + 1 :]
        # the envelope sender (third line), as the Return-Path: a final
        # delivery adds (return_path_add): SMTP clients such as fetchmail
        # take the message's own Return-Path: off and send it as MAIL FROM
        lines = h.split(b"\n", 3)
        sender = lines[2] if len(lines) > 3 else b"<>"
        yield b"Return-Path: " + sender + b"\n" + b"".join(head) + b"\n" + body, None


def sdbox(path, res):
    """The messages of a Dovecot sdbox mailbox directory (dbox-Mails):
    file header line, then the message header (magic \\001\\002, type,
    old UID, the message size as 16 hex digits, LF), then the message."""
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        res["notes"].append("no sdbox mailbox")
        return
    for name in names:
        if not name.startswith("u."):
            continue
        with open(os.path.join(path, name), "rb") as f:
            data = f.read()
        k = data.find(b"\n") + 1
        hdr = data[k : k + 30]
        if not (data.startswith(b"2 ") and hdr[:2] == b"\x01\x02" and hdr[29:30] == b"\n"):
            res["notes"].append("%s: not a dbox file as expected" % name)
            yield data, None
            continue
        size = int(hdr[13:29], 16)
        yield data[k + 30 : k + 30 + size], None


def first_difference(a, b):
    """Offset of the first byte where a and b differ (len of the shorter
    one if one is a prefix of the other)."""
    n = min(len(a), len(b))
    lo = 0
    step = 65536
    while lo < n and a[lo : lo + step] == b[lo : lo + step]:
        lo += step
    hi = min(n, lo + step)
    for j in range(lo, hi):
        if a[j] != b[j]:
            return j
    return hi


def summary(res):
    """One short phrase for the table."""
    if res is None:
        return "?"
    if res.get("ok") is None:
        return "n/a"
    bad = []
    for k in ("missing", "duplicates", "differ", "unknown"):
        if res.get(k):
            if k == "differ" and res.get("differ_reasons"):
                bad.append("%d differ: %s" % (res[k], ", ".join(
                    "%d %s" % (v, r) for r, v in sorted(res["differ_reasons"].items(), key=lambda kv: -kv[1]))))
            else:
                bad.append("%d %s" % (res[k], k))
    return "ok" if not bad else "; ".join(bad)
