import os, sys, time, subprocess, tempfile, json, collections
binary, deliver = sys.argv[1], sys.argv[2]
extra = sys.argv[3:]  # prefix cmd e.g. valgrind
d = tempfile.mkdtemp(dir="/tmp/hG")
cfg = os.path.join(d, "rc")
dl = {"mbox": "deliver = mbox\nmbox = %s/out.mbox" % d,
      "lmtp": "deliver = lmtp\nlmtp = %s\nrecipient = sink" % os.environ.get("LMTPSOCK", "")}[deliver]
open(cfg, "w").write("""[bench]
host = 127.0.0.1
port = %s
tls = implicit
tls_ca_file = %s
user = bench10000
password = bench-Pass1
keep = yes
fetch = all
%s
""" % (os.environ["PORT"], os.environ["CA"], dl))
os.chmod(cfg, 0o600)
env = dict(os.environ, HOME=d, TMPDIR=d)
env.update({k: v for k, v in [x.split("=", 1) for x in os.environ.get("MFENV", "").split()] })
t0 = time.time()
p = subprocess.Popen(extra + [binary, "-c", cfg, "--lockfile", d + "/lock"], env=env, stdout=open(d + "/out", "w"), stderr=open(d + "/err", "w"))
snaps = []; best = None; hwm = 0; series = []
def smaps(pid):
    agg = collections.Counter(); name = None
    try:
        for line in open("/proc/%d/smaps" % pid):
            parts = line.split()
            if len(parts) >= 5 and "-" in parts[0]:
                name = parts[5] if len(parts) > 5 else "[anon]"
            elif parts[0] == "Rss:":
                agg[name] += int(parts[1])
    except Exception:
        return None
    return agg
i = 0
while p.poll() is None:
    try:
        st = {l.split(":")[0]: l.split()[1] for l in open("/proc/%d/status" % p.pid) if l.startswith(("VmRSS", "VmHWM", "RssAnon", "RssFile"))}
        rss = int(st["VmRSS"]); hwm = max(hwm, int(st["VmHWM"]))
        series.append((round(time.time() - t0, 3), rss, int(st["RssAnon"]), int(st["RssFile"])))
        if best is None or rss >= best[0] + 64:
            sm = smaps(p.pid)
            if sm:
                prev = best; best = (rss, time.time() - t0, sm)
                if prev: snaps.append((prev, best))
    except Exception:
        pass
    i += 1
    time.sleep(0.005)
ru = os.wait4 if False else None
print("rc", p.returncode, "wall %.2f" % (time.time() - t0), "VmHWM KiB", hwm, "max VmRSS", max(s[1] for s in series) if series else None)
mx = max(series, key=lambda s: s[1])
print("peak sample t=%.2f rss=%d anon=%d file=%d" % mx)
if best:
    print("smaps at max sampled rss %d KiB t=%.2f:" % (best[0], best[1]))
    for k, v in best[2].most_common(14): print("  %6d %s" % (v, k))
for a, b in snaps[-3:]:
    print("diff %d->%d KiB at t=%.2f:" % (a[0], b[0], b[1]), {k: b[2][k]-a[2].get(k,0) for k in b[2] if b[2][k]!=a[2].get(k,0)})
json.dump(series, open(d + "/series.json", "w"))
print("dir", d)
