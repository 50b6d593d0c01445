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

    def check(self, fmt, path, added_headers=()):
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
        state = {"mboxo": 0, "stripped": 0}

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
            if hit:
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
