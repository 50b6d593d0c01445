#!/usr/bin/env python3
"""A TLS-terminating delay proxy that counts IMAP commands.

    proxy.py --target-port PORT --cert CERT --key KEY --ca CA
             [--delay-ms ONE_WAY] [--log FILE]

Listens on 127.0.0.1 (a free port, printed as `PORT n` on stdout once it
listens), takes TLS from the client with CERT/KEY, and opens a TLS
connection to 127.0.0.1:PORT (the server's certificate checked against CA)
for each client.  Decrypted data is forwarded in both directions, each
chunk held back until ONE_WAY milliseconds after it was read, so that the
round trip grows by 2 x ONE_WAY; order is kept and nothing else limits the
rate (beyond what one Python process manages).  The TLS handshakes
themselves are not delayed: the delay applies from the first IMAP byte on.

It parses the client -> server stream as IMAP commands (lines, literals
`{n}` / `{n+}` skipped) and counts the commands: a line that starts a
command and has the form `TAG SP NAME`.  Lines without a space at command
start (SASL responses, DONE) are counted as continuations.  When a
connection ends it appends one JSON line to --log:
  {"conn": k, "commands": n, "by_command": {...}, "continuations": n,
   "c2s_bytes": n, "s2c_bytes": n, "seconds": t}

Only 127.0.0.1 is ever contacted.  Standard library only.
"""

import argparse
import asyncio
import collections
import json
import os
import re
import signal
import ssl
import sys
import time

LITERAL = re.compile(rb"\{(\d+)\+?\}\r?\n?$")


class CommandCounter:
    """Incremental parser of the client's side of an IMAP conversation."""

    def __init__(self):
        self.buf = bytearray()
        self.skip = 0  # literal bytes still to skip
        self.in_command = False  # inside a command continued after a literal
        self.commands = 0
        self.continuations = 0
        self.by_command = collections.Counter()

    def feed(self, data):
        pos = 0
        n = len(data)
        while pos < n:
            if self.skip:
                take = min(self.skip, n - pos)
                self.skip -= take
                pos += take
                continue
            nl = data.find(b"\n", pos)
            if nl < 0:
                self.buf += data[pos:]
                if len(self.buf) > 1 << 20:  # not IMAP; do not grow forever
                    del self.buf[:-65536]
                return
            self.buf += data[pos : nl + 1]
            pos = nl + 1
            self._line(bytes(self.buf))
            self.buf.clear()

    def _line(self, line):
        if not self.in_command:
            body = line.rstrip(b"\r\n")
            parts = body.split(b" ", 3)
            if len(parts) >= 2 and parts[0] and parts[1]:
                name = parts[1].upper()
                if name == b"UID" and len(parts) >= 3:
                    name = b"UID " + parts[2].upper()
                self.commands += 1
                self.by_command[name.decode("ascii", "replace")] += 1
            else:
                self.continuations += 1
        m = LITERAL.search(line)
        if m:
            self.skip = int(m.group(1))
            self.in_command = True
        else:
            self.in_command = False


class Proxy:
    def __init__(self, args):
        self.args = args
        self.delay = args.delay_ms / 1000.0
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.load_cert_chain(args.cert, args.key)
        self.client_ctx = ssl.create_default_context(cafile=args.ca)
        self.seq = 0
        self.active = 0
        self.log = open(args.log, "a") if args.log else None

    async def pump(self, reader, writer, counter, totals, key):
        """Copy reader -> writer, each chunk delayed; keeps order."""
        loop = asyncio.get_running_loop()
        queue = collections.deque()
        wake = asyncio.Event()
        done = False

        async def writer_task():
            while True:
                while not queue:
                    if done:
                        return
                    wake.clear()
                    await wake.wait()
                due, data = queue.popleft()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        wt = asyncio.ensure_future(writer_task())
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    break
                totals[key] += len(data)
                if counter is not None:
                    counter.feed(data)
                queue.append((loop.time() + self.delay, data))
                wake.set()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            done = True
            wake.set()
        try:
            await wt
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        # TLS has no half-close: when one side is done, so is the other.
        try:
            writer.close()
        except (OSError, RuntimeError, ssl.SSLError):
            pass

    async def handle(self, creader, cwriter):
        self.seq += 1
        self.active += 1
        k = self.seq
        t0 = time.monotonic()
        counter = CommandCounter()
        totals = {"c2s": 0, "s2c": 0}
        sreader = swriter = None
        try:
            sreader, swriter = await asyncio.open_connection(
                "127.0.0.1", self.args.target_port, ssl=self.client_ctx,
                server_hostname="127.0.0.1")
            await asyncio.gather(
                self.pump(creader, swriter, counter, totals, "c2s"),
                self.pump(sreader, cwriter, None, totals, "s2c"),
            )
        except (ConnectionError, ssl.SSLError, OSError) as e:
            print("proxy: connection %d: %s" % (k, e), file=sys.stderr, flush=True)
        finally:
            for w in (cwriter, swriter):
                if w is not None:
                    try:
                        w.close()
                    except Exception:
                        pass
            self.active -= 1
            rec = {
                "conn": k,
                "commands": counter.commands,
                "by_command": dict(counter.by_command),
                "continuations": counter.continuations,
                "c2s_bytes": totals["c2s"],
                "s2c_bytes": totals["s2c"],
                "seconds": round(time.monotonic() - t0, 4),
                "active_after": self.active,
            }
            if self.log:
                self.log.write(json.dumps(rec, sort_keys=True) + "\n")
                self.log.flush()

    async def main(self):
        srv = await asyncio.start_server(self.handle, "127.0.0.1", self.args.port,
                                         ssl=self.server_ctx, backlog=64)
        port = srv.sockets[0].getsockname()[1]
        print("PORT %d" % port, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, stop.set)
        async with srv:
            await stop.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target-port", type=int, required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay (RTT/2)")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # die with the parent
    except Exception:
        pass
    asyncio.run(Proxy(args).main())


if __name__ == "__main__":
    main()
