import os, sys, time, socket, random, tempfile, shutil, importlib.machinery, json
sys.path.insert(0, "/work/main/tests/lib"); sys.path.insert(0, "/work/main/bench")
br = importlib.machinery.SourceFileLoader("benchrun", "/work/main/bench/run").load_module()
h = br.h
N = int(os.environ.get("N", "2000"))
rnd = random.Random(1)
msgs = []
for i in range(N):
    size = rnd.randint(2000, 20000)
    body = "".join(rnd.choice("abcdefghij klmnop\r\n") for _ in range(64))
    lines = ["Return-Path: <a@example.org>", "From: a@example.org", "To: sink@localhost",
             "Subject: m %d" % i, "Message-ID: <%d@bench>" % i, ""]
    text = "\r\n".join(lines) + "\r\n"
    while len(text) < size:
        text += "line of text %d quite ordinary words here and there\r\n" % len(text)
    msgs.append(text.encode())
BASE = br.LMTP_SINK_CONF
KN = "lmtp_rcpt_check_quota = no\nlmtp_save_to_detail_mailbox = no\nmail_plugins =\nprotocol lmtp {\n  mail_plugins =\n}\nverbose_proctitle = no\nmail_debug = no\nlmtp_user_concurrency_limit = 0\n"
NC = "mail_cache_min_mail_count = 1000000\n"
NL = "info_log_path = /dev/null\n"
VARIANTS = {
  "A current (sdbox)": BASE,
  "C mdbox": BASE.replace("sdbox:~/sdbox", "mdbox:~/sdbox"),
  "E sdbox +knobs": BASE + KN,
  "H sdbox +no cache file": BASE + NC,
  "J sdbox +info log to /dev/null": BASE + NL,
  "K sdbox +E+H+J": BASE + KN + NC + NL,
  "L mdbox +E+H+J": BASE.replace("sdbox:~/sdbox", "mdbox:~/sdbox") + KN + NC + NL,
  "G maildir:INDEX=MEMORY": BASE.replace("sdbox:~/sdbox", "maildir:~/sdbox:INDEX=MEMORY"),
}
only = sys.argv[1:] 
certs = h.make_ca(tempfile.mkdtemp(dir="/dev/shm")) if hasattr(h, "make_ca") else None
def recv_replies(f, n):
    out = []
    for _ in range(n):
        while True:
            l = f.readline()
            if not l: raise RuntimeError("eof")
            if l[3:4] != b"-": out.append(l); break
    return out
res = {}
for name, conf in VARIANTS.items():
    if only and name[0] not in only: continue
    d = tempfile.mkdtemp(prefix="hG-lmtp-", dir="/dev/shm")
    dv = h.Dovecot(os.path.join(d, "dovecot"), certs, users={"sink": "x-Pass1"}, lmtp=True, extra_conf=conf).start()
    try:
        def session(msgs):
            s = socket.socket(socket.AF_UNIX); s.connect(dv.lmtp_socket); f = s.makefile("rb")
            recv_replies(f, 1); s.sendall(b"LHLO bench\r\n"); recv_replies(f, 1)
            for m in msgs:
                s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<sink@localhost>\r\nDATA\r\n")
                r = recv_replies(f, 3); assert r[2].startswith(b"354"), r
                s.sendall(m + b".\r\n"); r = recv_replies(f, 1); assert r[0].startswith(b"250"), r
            s.sendall(b"QUIT\r\n"); recv_replies(f, 1); s.close()
        try:
            session(msgs[:20])  # warm: process, auth cache
        except Exception as e:
            print(name, "FAILED", e); print(open(os.path.join(dv.dir, "dovecot.log")).read()[-1500:]); continue
        time.sleep(0.3)
        c0 = br.group_cpu(dv.proc.pid); l0 = sum(sum(t[:2]) for p, c, t in br.group_procs(dv.proc.pid) if c == "lmtp")
        pr = None
        if os.environ.get("PERF"):
            import subprocess
            lp = [str(p) for p, c, t in br.group_procs(dv.proc.pid) if c == "lmtp"]
            pr = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-o", "/tmp/hG/perf.lmtp.data", "-p", ",".join(lp)], stderr=subprocess.DEVNULL) if os.environ["PERF"] == "1" else subprocess.Popen(["strace", "-c", "-o", "/tmp/hG/strace.lmtp.txt"] + sum([["-p", x] for x in lp], []))
            time.sleep(0.5)
        t0 = time.time(); session(msgs); wall = time.time() - t0
        if pr:
            import signal; pr.send_signal(signal.SIGINT); pr.wait()
        time.sleep(0.3)
        c1 = br.group_cpu(dv.proc.pid); l1 = sum(sum(t[:2]) for p, c, t in br.group_procs(dv.proc.pid) if c == "lmtp")
        tick = os.sysconf("SC_CLK_TCK")
        r = dict(wall_ms=1000*wall/N, group_ms=1000*(c1-c0)/N, lmtp_ms=1000*(l1-l0)/tick/N)
        res[name] = r
        print("%-40s wall %.3f ms/msg  dovecot CPU %.3f ms/msg  lmtp procs %.3f ms/msg" % (name, r["wall_ms"], r["group_ms"], r["lmtp_ms"]), flush=True)
    finally:
        dv.stop(); shutil.rmtree(d, ignore_errors=True)
