#!/usr/bin/env python3
"""Per-request latency over HTTP, end to end, of the local session store vs the S3 store.

Starts moto_server (S3 API) on a loopback port, then two prefork instances of the release build
(`-w 2` each): one on the local store, one with `--store s3://bench/prefix` on moto. For each
instance and each of N rounds: a new session, then upload Kano (CSV + shapefile), run_analysis
(computed), population upload (not timed), ITN plan, and 10 status reads. Prints p50/p90 per
request and the S3/local ratio of the p50s. Run through scripts/bench/store_latency.sh.
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import http.client
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(port, path, deadline=60.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            if r.status < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"nothing answered on port {port}")


def request(port, method, path, sid=None, body=b"", ctype=None):
    headers = {}
    if sid:
        headers["X-Session-ID"] = sid
    if ctype:
        headers["Content-Type"] = ctype
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.perf_counter()
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    dt = time.perf_counter() - t0
    c.close()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
    return dt, data


def multipart(files):
    boundary = uuid.uuid4().hex
    out = b""
    for field, name, data in files:
        out += (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def start(cmd, env):
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=30)
    except Exception:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except Exception:
            pass


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    prefork, moto_server = sys.argv[1], sys.argv[2]
    rounds = int(os.environ.get("ROUNDS", "10"))
    csv = open(os.path.join(FIX, "kano", "kano_wards.csv"), "rb").read()
    shp = open(os.path.join(FIX, "kano", "kano_wards_shapefile.zip"), "rb").read()
    pop = open(os.path.join(FIX, "reference", "kano", "kano_auto_population_input.csv"), "rb").read()
    procs = []
    try:
        mport = free_port()
        procs.append(start([moto_server, "-H", "127.0.0.1", "-p", str(mport)], os.environ.copy()))
        end = time.time() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", mport, timeout=2)
                c.request("PUT", "/bench")
                c.getresponse().read()
                break
            except OSError:
                if time.time() > end:
                    sys.exit("moto_server did not start")
                time.sleep(0.2)
        tmp = tempfile.mkdtemp(prefix="store-latency-")
        s3env = dict(
            os.environ,
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{mport}",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_REGION="us-east-1",
            AWS_ALLOW_HTTP="true",
        )
        ports = {}
        for name, extra, env in [
            ("local", [], os.environ.copy()),
            ("s3", ["--store", "s3://bench/prefix"], s3env),
        ]:
            port = free_port()
            inst = os.path.join(tmp, name)
            procs.append(
                start(
                    [prefork, "-w", "2", "-b", f"127.0.0.1:{port}", "--instance-dir", inst] + extra,
                    env,
                )
            )
            wait_http(port, "/ping")
            ports[name] = port
        times = {n: {"status": [], "upload": [], "analysis": [], "itn": []} for n in ports}
        up_body, up_type = multipart([("csv_file", "kano.csv", csv), ("shapefile", "kano.zip", shp)])
        pop_body, pop_type = multipart([("population_file", "pop.csv", pop)])
        for r in range(rounds):
            for name, port in ports.items():
                _, minted = request(port, "POST", "/api/session")
                sid = json.loads(minted)["session_id"]
                t, _ = request(port, "POST", "/upload_both_files", sid, up_body, up_type)
                times[name]["upload"].append(t)
                t, body = request(port, "POST", "/run_analysis", sid, b"{}", "application/json")
                assert json.loads(body)["reused"] is False, body
                times[name]["analysis"].append(t)
                request(port, "POST", "/upload_population", sid, pop_body, pop_type)
                t, _ = request(
                    port, "POST", "/api/itn/plan", sid, b'{"total_nets": 50000}', "application/json"
                )
                times[name]["itn"].append(t)
                for _ in range(10):
                    t, _ = request(port, "GET", "/api/session/status", sid)
                    times[name]["status"].append(t)
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
        print(f"\nper-request latency over HTTP, {rounds} rounds, release build, -w 2, moto on loopback")
        print(f"{'request':<10} {'local p50':>10} {'local p90':>10} {'s3 p50':>10} {'s3 p90':>10} {'ratio p50':>10}")
        for op in ["status", "upload", "analysis", "itn"]:
            l, s = times["local"][op], times["s3"][op]
            lp, sp = statistics.median(l), statistics.median(s)
            print(
                f"{op:<10} {lp * 1e3:>8.2f}ms {pct(l, 0.9) * 1e3:>8.2f}ms "
                f"{sp * 1e3:>8.2f}ms {pct(s, 0.9) * 1e3:>8.2f}ms {sp / lp:>9.1f}x"
            )
    finally:
        for p in reversed(procs):
            stop(p)


if __name__ == "__main__":
    main()
