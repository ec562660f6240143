#!/usr/bin/env python3
"""Helpers for bench/run: start servers and time their start-up, set OpenBao up, seed secrets,
verify counts, read RSS, parse wrk output and write the markdown report.

Standard library only (it runs under bench/.venv's Python, but needs nothing installed).
Every network call goes to 127.0.0.1 and every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import json
import os
import platform
import random
import re
import socket
import string
import subprocess
import sys
import time
from pathlib import Path


def die(msg: str) -> None:
    print(f"benchctl: {msg}", file=sys.stderr)
    sys.exit(1)


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        die(f"refusing non-loopback address {addr}")
    return "127.0.0.1", int(port)


def request(addr: str, method: str, path: str, headers: dict | None = None, body=None, timeout: float = 10.0):
    """One HTTP request on a fresh connection. Returns (status, parsed JSON or text or None)."""
    host, port = split_addr(addr)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return resp.status, parsed
    finally:
        conn.close()


def auth_headers(kind: str, token: str) -> dict:
    if kind == "openbao":
        return {"X-Vault-Token": token}
    return {"Authorization": f"Bearer {token}"}


def secret_url(kind: str, path: str) -> str:
    return f"/v1/secret/data/{path}" if kind == "openbao" else f"/v1/secrets/{path}"


def seed_path(i: int) -> str:
    return f"bench/s{i:06d}"


# ---------------------------------------------------------------------------------------------
# freeport


def cmd_freeport(_args) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# launch: start a server detached, time start -> first response -> (unseal) -> first good request


def try_status(addr: str, method: str, path: str, headers=None, body=None) -> int | None:
    try:
        status, _ = request(addr, method, path, headers, body, timeout=2.0)
        return status
    except (OSError, http.client.HTTPException):
        return None


def cmd_launch(args) -> None:
    log = open(args.log, "ab")
    env = dict(os.environ)
    for kv in args.env or []:
        k, _, v = kv.partition("=")
        env[k] = v
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        die("launch: no command")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    with open(args.pidfile, "w") as f:
        f.write(f"{proc.pid}\n")
    deadline = t0 + args.timeout
    result: dict = {"pid": proc.pid}

    def check_alive() -> None:
        if proc.poll() is not None:
            print(json.dumps(result))
            die(f"launch: process exited with {proc.returncode} (log: {args.log})")
        if time.monotonic() > deadline:
            print(json.dumps(result))
            die(f"launch: not ready within {args.timeout}s (log: {args.log})")

    # 1. the ready line on stdout, if asked for
    if args.ready_line:
        pat = re.compile(args.ready_line)
        while True:
            text = Path(args.log).read_text(errors="replace")
            m = pat.search(text)
            if m:
                result["ready_line_ms"] = round((time.monotonic() - t0) * 1000, 1)
                result["ready_line"] = m.group(0)
                break
            check_alive()
            time.sleep(0.002)

    # 2. first HTTP answer on the health URL (any status, or 200 with --health-ok)
    while True:
        st = try_status(args.addr, "GET", args.health)
        if st is not None and (not args.health_ok or st == 200):
            result["health_ms"] = round((time.monotonic() - t0) * 1000, 1)
            result["health_status"] = st
            break
        check_alive()
        time.sleep(0.002)

    # 3. OpenBao: unseal
    if args.unseal_key:
        st, body = request(args.addr, "PUT", "/v1/sys/unseal", body={"key": args.unseal_key})
        if st != 200 or (isinstance(body, dict) and body.get("sealed")):
            die(f"launch: unseal failed: {st} {body}")
        result["unsealed_ms"] = round((time.monotonic() - t0) * 1000, 1)

    # 4. the first successful authenticated request (a read of a seeded secret)
    if args.probe:
        headers = auth_headers(args.kind, args.token or "")
        last = None
        probe_deadline = min(deadline, time.monotonic() + args.probe_timeout)
        while True:
            last = try_status(args.addr, "GET", args.probe, headers)
            if last == 200:
                result["first_request_ms"] = round((time.monotonic() - t0) * 1000, 1)
                break
            if proc.poll() is not None:
                check_alive()
            if time.monotonic() > probe_deadline:
                result["first_request_ms"] = None
                result["probe_last_status"] = last
                break
            time.sleep(0.002)
    print(json.dumps(result))


# ---------------------------------------------------------------------------------------------
# OpenBao setup: init, unseal, wait for active, kv-v2, ACL policy, restricted token

BAO_POLICY = """
path "secret/data/bench/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/bench/*" {
  capabilities = ["read", "list"]
}
"""


def wait_until(fn, what: str, timeout: float = 60.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            ok, last = fn()
            if ok:
                return last
        except (OSError, http.client.HTTPException) as e:  # noqa: PERF203
            last = repr(e)
        time.sleep(interval)
    die(f"timed out waiting for {what}: last={last}")


def cmd_bao_setup(args) -> None:
    a = args.addr
    # a fresh raft node elects itself during init, which can take ~10 s
    st, body = request(a, "PUT", "/v1/sys/init", body={"secret_shares": 1, "secret_threshold": 1}, timeout=90)
    if st != 200:
        die(f"bao init: {st} {body}")
    key, root = body["keys_base64"][0], body["root_token"]
    st, body = request(a, "PUT", "/v1/sys/unseal", body={"key": key})
    if st != 200 or body.get("sealed"):
        die(f"bao unseal: {st} {body}")
    rh = {"X-Vault-Token": root}
    # single-node raft: wait until this node is the active leader
    wait_until(lambda: (lambda r: (r[0] == 200, r))(request(a, "GET", "/v1/sys/health")), "OpenBao active")
    st, body = request(a, "POST", "/v1/sys/mounts/secret", rh, {"type": "kv", "options": {"version": "2"}})
    if st not in (200, 204):
        die(f"bao mount kv-v2: {st} {body}")
    st, body = request(a, "PUT", "/v1/sys/policies/acl/bench", rh, {"policy": BAO_POLICY})
    if st not in (200, 204):
        die(f"bao policy: {st} {body}")
    st, body = request(a, "POST", "/v1/auth/token/create", rh,
                      {"policies": ["bench"], "ttl": "24h", "display_name": "bench"})
    if st != 200:
        die(f"bao token create: {st} {body}")
    token = body["auth"]["client_token"]
    th = {"X-Vault-Token": token}
    # a fresh kv-v2 mount answers 'upgrading' errors for a moment: wait for a first good write
    wait_until(lambda: (lambda r: (r[0] == 200, r))(
        request(a, "POST", "/v1/secret/data/bench/warmup", th, {"data": {"value": "x"}})),
        "kv-v2 mount ready")
    # the restricted token must be refused outside its policy
    st, _ = request(a, "GET", "/v1/sys/mounts", th)
    if st != 403:
        die(f"bench token is not restricted: GET sys/mounts gave {st}")
    st, body = request(a, "GET", "/v1/sys/audit", rh)
    audit = sorted((body or {}).get("data", body or {}).keys()) if st == 200 and isinstance(body, dict) else []
    if not any(k.startswith("file") for k in audit):
        die(f"bao: file audit device missing: {st} {body}")
    st, _ = request(a, "DELETE", "/v1/secret/metadata/bench/warmup", rh)
    out = {"unseal_key": key, "root_token": root, "token": token, "audit_devices": audit}
    Path(args.out).write_text(json.dumps(out))
    print(f"OpenBao ready: kv-v2 at secret/, audit devices {audit}, restricted token with policy 'bench'")


# ---------------------------------------------------------------------------------------------
# ScaiVault setup: a non-admin user whose token is restricted by a policy, like OpenBao's

SV_POLICY_RULES = [{"path_pattern": "bench/**", "permissions": ["read", "write", "list"]}]


def cmd_sv_setup(args) -> None:
    a, ah = args.addr, {"Authorization": f"Bearer {args.admin_token}"}
    user = "user:bench@scaivault.local"
    st, body = request(a, "POST", "/v1/identity/tenants/tnt_default/users", ah,
                       {"email": "bench@scaivault.local", "display_name": "benchmark",
                        "scopes": ["secrets:read", "secrets:write", "secrets:list"]})
    if st != 201:
        die(f"scaivault user create: {st} {body}")
    st, body = request(a, "POST", "/v1/policies", ah, {"name": "bench", "rules": SV_POLICY_RULES})
    if st != 201:
        die(f"scaivault policy create: {st} {body}")
    pol = body["id"]
    st, body = request(a, "POST", f"/v1/policies/{pol}/bindings", ah,
                       {"identity_type": "user", "identity_id": user})
    if st != 201:
        die(f"scaivault policy binding: {st} {body}")
    st, body = request(a, "POST", "/v1/auth/tokens", ah,
                       {"identity_id": user, "name": "bench", "expires_in": "1d"})
    if st != 201:
        die(f"scaivault token create: {st} {body}")
    token = body["token"]
    th = {"Authorization": f"Bearer {token}"}
    # the bench token must be allowed inside its policy and refused outside it
    st, body = request(a, "PUT", "/v1/secrets/bench/warmup", th, {"data": {"value": "x"}})
    if st not in (200, 201):
        die(f"bench token cannot write bench/: {st} {body}")
    for method, path, body in (("PUT", "/v1/secrets/other/x", {"data": {"v": "x"}}),
                               ("GET", "/v1/audit/logs", None),
                               ("GET", "/v1/policies", None)):
        st, _ = request(a, method, path, th, body)
        if st != 403:
            die(f"bench token is not restricted: {method} {path} gave {st}")
    request(a, "DELETE", "/v1/secrets/bench/warmup?permanent=true", ah)
    Path(args.out).write_text(json.dumps({"token": token, "policy_id": pol, "identity_id": user}))
    print(f"ScaiVault ready: {user} with policy {pol} ({SV_POLICY_RULES}), restricted token")


# ---------------------------------------------------------------------------------------------
# seed: write secrets bench/s<from>..bench/s<to-1> with a small asyncio HTTP/1.1 keep-alive client


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    chunked = False
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        if k == "content-length":
            length = int(v.strip())
        elif k == "transfer-encoding" and "chunked" in v.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
        return status, body
    return status, (await reader.readexactly(length) if length else b"")


async def _seed(kind: str, addr: str, token: str, start: int, end: int, conc: int, timeout: float):
    host, port = split_addr(addr)
    queue = list(range(start, end))
    queue.reverse()
    failures: list[str] = []
    auth = ("X-Vault-Token: " + token) if kind == "openbao" else ("Authorization: Bearer " + token)
    method = "POST" if kind == "openbao" else "PUT"
    rng = random.Random(42)
    alphabet = string.ascii_letters + string.digits

    async def worker():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue:
                i = queue.pop()
                p = seed_path(i)
                value = "".join(rng.choice(alphabet) for _ in range(32))
                body = json.dumps({"data": {"value": value, "n": str(i)}}).encode()
                url = secret_url(kind, p)
                req = (f"{method} {url} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
                writer.write(req)
                await writer.drain()
                status, resp = await _read_response(reader)
                if status not in (200, 201, 204):
                    failures.append(f"{p}: {status} {resp[:200]!r}")
                    if len(failures) > 20:
                        return
        finally:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(conc))), timeout)
    return failures


def cmd_seed(args) -> None:
    t0 = time.monotonic()
    failures = asyncio.run(_seed(args.kind, args.addr, args.token, args.start, args.end, args.concurrency,
                                 args.timeout))
    elapsed = time.monotonic() - t0
    n = args.end - args.start
    if failures:
        print("\n".join(failures[:10]), file=sys.stderr)
        die(f"seed: {len(failures)} failed writes")
    out = {"secrets": n, "seconds": round(elapsed, 3), "per_second": round(n / elapsed, 1) if elapsed else None}
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------
# verify: one seeded secret reads back, and listing sees the expected count


def list_count(kind: str, addr: str, token: str, timeout: float = 600.0) -> int:
    h = auth_headers(kind, token)
    if kind == "openbao":
        st, body = request(addr, "GET", "/v1/secret/metadata/bench/?list=true", h, timeout=timeout)
        if st != 200:
            die(f"verify: OpenBao list gave {st} {str(body)[:300]}")
        return len(body["data"]["keys"])
    total, cursor = 0, None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        q = "/v1/secrets?prefix=bench/&limit=1000"
        if cursor:
            q += "&cursor=" + cursor
        st, body = request(addr, "GET", q, h, timeout=timeout)
        if st != 200:
            die(f"verify: ScaiVault list gave {st} {str(body)[:300]}")
        total += len(body.get("secrets", []))
        cursor = body.get("cursor")
        if not body.get("has_more") or not cursor:
            return total
    die("verify: listing did not finish in time")
    return -1


def cmd_verify(args) -> None:
    h = auth_headers(args.kind, args.token)
    p = seed_path(args.expect - 1)
    st, body = request(args.addr, "GET", secret_url(args.kind, p), h)
    if st != 200:
        die(f"verify: read of {p} gave {st} {str(body)[:300]}")
    data = body["data"]["data"] if args.kind == "openbao" else body.get("data")
    if not isinstance(data, dict) or data.get("n") != str(args.expect - 1):
        die(f"verify: read of {p} returned unexpected data {str(body)[:300]}")
    n = list_count(args.kind, args.addr, args.token)
    if n != args.expect:
        die(f"verify: listing bench/ found {n} secrets, expected {args.expect}")
    if args.kind != "openbao":
        paths = [seed_path(i) for i in range(min(100, args.expect))]
        st, body = request(args.addr, "POST", "/v1/secrets/batch", h, {"paths": paths})
        if st != 200 or body.get("retrieved") != len(paths):
            die(f"verify: batch read gave {st} {str(body)[:300]}")
        st, body = request(args.addr, "GET", "/v1/secrets?prefix=bench/&limit=1000", h)
        if st != 200 or len(body.get("secrets", [])) != min(1000, args.expect):
            die(f"verify: list workload request gave {st}, {len((body or {}).get('secrets', []))} items")
    print(json.dumps({"verified": n}))


# ---------------------------------------------------------------------------------------------
# rss


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    die(f"no {field} for pid {pid}")
    return -1


def cmd_rss(args) -> None:
    print(rss_kib(args.pid, args.field))


# ---------------------------------------------------------------------------------------------
# wrk output -> JSON record


def cmd_wrkparse(args) -> None:
    text = Path(args.file).read_text(errors="replace")
    rec = None
    for line in text.splitlines():
        if line.startswith("BENCHJSON "):
            rec = json.loads(line[len("BENCHJSON "):])
    if rec is None:
        die(f"no BENCHJSON line in {args.file}:\n{text[-2000:]}")
    rec["system"] = args.system
    rec["workload"] = args.workload
    rec["connections"] = args.connections
    secs = rec["duration_us"] / 1e6
    rec["rps"] = rec["requests"] / secs if secs else 0.0
    if "batch" in rec:
        rec["batch"]["per_second"] = rec["batch"]["count"] / secs if secs else 0.0
    errs = rec["errors"]
    rec["error_total"] = sum(errs.values())
    with open(args.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    b = rec.get("batch")
    extra = f", {b['count']} batches, p50 {b['p50_us']}us p99 {b['p99_us']}us per batch" if b else ""
    print(f"  {args.system:18} {args.workload:10} c={args.connections:<3} {rec['rps']:10.1f} req/s  "
          f"p50 {rec['latency_us']['p50']}us p99 {rec['latency_us']['p99']}us  errors {errs}{extra}")
    if rec["requests"] == 0:
        die(f"{args.system} {args.workload}: no request completed")
    if errs["status"] > 0 and errs["status"] >= rec["requests"] * 0.01:
        die(f"{args.system} {args.workload}: {errs['status']} of {rec['requests']} responses were not 2xx/3xx")


def cmd_record(args) -> None:
    """Append a free-form figure: --set key=value (value parsed as JSON when it parses)."""
    rec = {"system": args.system, "figure": args.figure}
    for kv in args.set or []:
        k, _, v = kv.partition("=")
        try:
            rec[k] = json.loads(v)
        except ValueError:
            rec[k] = v
    with open(args.results, "a") as f:
        f.write(json.dumps(rec) + "\n")


# ---------------------------------------------------------------------------------------------
# report

SYSTEM_LABEL = {
    "hello": "hyper hello (ceiling)",
    "openbao": "OpenBao (raft)",
    "scaivault-sqlite": "ScaiVault (SQLite)",
    "scaivault-sqlite-interval": "ScaiVault (SQLite, audit sync interval)",
    "scaivault-postgres": "ScaiVault (PostgreSQL)",
}
SYSTEM_ORDER = ["hello", "openbao", "scaivault-sqlite", "scaivault-sqlite-interval", "scaivault-postgres"]
WORKLOADS = [
    ("read", 1, "single-secret read, random of 1,000, 1 connection"),
    ("read", 16, "single-secret read, random of 1,000, 16 connections"),
    ("read", 64, "single-secret read, random of 1,000, 64 connections"),
    ("write", 16, "write (new version of a random path), 16 connections"),
    ("batch", 1, "100-path batch read (OpenBao: 100 sequential GETs), 1 connection; per batch"),
    ("list", 1, "list 1,000 paths, 1 connection"),
]


def fmt_us(us) -> str:
    if us is None:
        return "n/a"
    us = float(us)
    if us >= 1_000_000:
        return f"{us / 1e6:.2f} s"
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.0f} µs"


def fmt_rate(x) -> str:
    if x is None:
        return "n/a"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:,.1f}"


def ratio(a, b, invert=False) -> str:
    if a is None or b is None or a == 0 or b == 0:
        return "—"
    r = (b / a) if invert else (a / b)
    return f"{r:.2f}×"


def fmt_mib(kib) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def fmt_ms(ms) -> str:
    return "n/a" if ms is None else f"{ms:.0f} ms"


def cmd_report(args) -> None:
    recs = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
    meta = json.loads(Path(args.meta).read_text())
    runs = {(r["system"], r["workload"], r["connections"]): r for r in recs if "workload" in r}
    figs: dict[tuple[str, str], dict] = {(r["system"], r["figure"]): r for r in recs if "figure" in r}
    systems = [s for s in SYSTEM_ORDER if any(k[0] == s for k in runs) or any(k[0] == s for k in figs)]
    servers = [s for s in systems if s != "hello"]

    out: list[str] = []
    w = out.append
    title = "ScaiVault vs OpenBao — benchmark results" + (" (short mode: proves the harness, not the numbers)"
                                                          if meta.get("mode") == "short" else "")
    w(f"# {title}\n")
    w(f"- Date: {meta['date']}")
    w(f"- Machine: {meta['nproc']} cores, {meta['cpu_model']}, {meta['mem_total']} RAM, {meta['kernel']}")
    if meta.get("load"):
        w(f"- Load average (1/5/15 min) before the run: {meta['load'][0]} (other work on the machine; "
          f"well above 0 means the figures are noisy); after: {meta['load'][-1]} (includes the benchmark)")
    w(f"- Mode: `{meta['mode']}` — {meta['duration']} s per workload after a {meta['warmup']} s warm-up, "
      f"{meta['seed']:,} secrets seeded" + (", 100,000 for the RSS figure" if meta.get("mode") == "full" else ""))
    w(f"- Versions: {'; '.join(meta['versions'])}")
    w(f"- Load generator: {meta['wrk_version']}, on the same machine (it shares the 2 cores with the server)")
    w("")
    w("Ratios are ScaiVault ÷ OpenBao for throughput (above 1× = ScaiVault serves more) and for latency "
      "(below 1× = ScaiVault answers faster). \"% of ceiling\" is a server's throughput as a share of the "
      "minimal hyper server's under the same generator and connection count.\n")

    w("## Throughput and latency\n")
    w("| workload | system | throughput | p50 | p99 | errors | throughput vs OpenBao | p50 vs OpenBao "
      "| p99 vs OpenBao | % of ceiling |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for wl, conns, label in WORKLOADS:
        base = runs.get(("openbao", wl, conns))
        ceil = runs.get(("hello", "read", conns)) if wl == "read" else None
        for s in systems:
            r = runs.get((s, wl, conns))
            if r is None:
                continue
            if wl == "batch":
                b = r["batch"]
                thr, p50, p99 = b["per_second"], b["p50_us"], b["p99_us"]
                bb = base["batch"] if base else None
                bthr, bp50, bp99 = (bb["per_second"], bb["p50_us"], bb["p99_us"]) if bb else (None, None, None)
                unit = "batches/s"
            else:
                thr, p50, p99 = r["rps"], r["latency_us"]["p50"], r["latency_us"]["p99"]
                bthr, bp50, bp99 = ((base["rps"], base["latency_us"]["p50"], base["latency_us"]["p99"])
                                    if base else (None, None, None))
                unit = "req/s"
            is_base = s == "openbao"
            is_ceil = s == "hello"
            pct = f"{100 * r['rps'] / ceil['rps']:.0f}%" if (ceil and not is_ceil and ceil["rps"]) else "—"
            w(f"| {label} | {SYSTEM_LABEL[s]} | {fmt_rate(thr)} {unit} | {fmt_us(p50)} | {fmt_us(p99)} "
              f"| {r['error_total']} "
              f"| {'1.00× (base)' if is_base else ('—' if is_ceil else ratio(thr, bthr))} "
              f"| {'—' if is_base or is_ceil else ratio(p50, bp50)} "
              f"| {'—' if is_base or is_ceil else ratio(p99, bp99)} | {pct} |")
    w("")

    # Issue #6: what the durable audit costs a read. Same binary, same data shape, same run; the second
    # server runs with SCAIVAULT_DEV_DISABLE_AUDIT=1 (accepted only with --dev).
    on = runs.get(("scaivault-sqlite-audit-on", "read", 16))
    mid = runs.get(("scaivault-sqlite-audit-interval", "read", 16))
    off = runs.get(("scaivault-sqlite-audit-off", "read", 16))
    if on and off:
        w("## Audit's cost on read throughput (ScaiVault SQLite, 16 connections)\n")
        w("The servers are fresh `--dev` SQLite servers seeded with the same 1,000 secrets and read with "
          "the same policy-restricted token, one after the other in this run: the default, one with "
          "`SCAIVAULT_AUDIT_SYNC=interval`, and one with `SCAIVAULT_DEV_DISABLE_AUDIT=1` (dev mode only: "
          "no audit entry at all).\n")
        w("| audit | throughput | p50 | p99 | errors | throughput vs audit off |")
        w("|---|---:|---:|---:|---:|---:|")
        rows = [("on, fsync before every answer (default)", on)]
        if mid:
            rows.append(("on, written before every answer, fsync within 10 ms (SCAIVAULT_AUDIT_SYNC=interval)", mid))
        rows.append(("off (SCAIVAULT_DEV_DISABLE_AUDIT=1)", off))
        for name, r in rows:
            w(f"| {name} | {fmt_rate(r['rps'])} req/s | {fmt_us(r['latency_us']['p50'])} "
              f"| {fmt_us(r['latency_us']['p99'])} | {r['error_total']} | {ratio(r['rps'], off['rps'])} |")
        if off["rps"]:
            w(f"\nWith the default audit, reads run at **{on['rps'] / off['rps']:.2f}×** the throughput without "
              f"it (audit costs {100 * (1 - on['rps'] / off['rps']):.0f}% of read throughput); "
              f"p50 {ratio(on['latency_us']['p50'], off['latency_us']['p50'])} of the unaudited p50.")
        w("")

    w("## Memory and start-up\n")
    header = "| figure | " + " | ".join(SYSTEM_LABEL[s] for s in servers)
    cols = [s for s in servers if s != "openbao"]
    header += "".join(f" | {SYSTEM_LABEL[s]} vs OpenBao" for s in cols) + " |"
    w(header)
    w("|---" * (1 + len(servers) + len(cols)) + "|")

    def row(label, key, field, fmt, invert=False):
        vals = {s: figs.get((s, key), {}).get(field) for s in servers}
        if all(v is None for v in vals.values()):
            return
        cells = [fmt(vals[s]) for s in servers]
        rs = [ratio(vals[s], vals.get("openbao"), invert) for s in cols]
        w(f"| {label} | " + " | ".join(cells) + "".join(f" | {x}" for x in rs) + " |")

    row("RSS after 1,000 secrets (server process, VmRSS)", "rss_1k", "kib", fmt_mib)
    row("RSS after all workloads", "rss_after", "kib", fmt_mib)
    row("RSS after 100,000 secrets", "rss_100k", "kib", fmt_mib)
    row("PostgreSQL backends serving the bench database after 1,000 secrets (private memory: RssAnon sum)",
        "rss_1k", "pg_backends_kib", fmt_mib)
    row("PostgreSQL backends serving the bench database after all workloads (RssAnon sum)",
        "rss_after", "pg_backends_kib", fmt_mib)
    row("PostgreSQL backends serving the bench database after 100,000 secrets (RssAnon sum)",
        "rss_100k", "pg_backends_kib", fmt_mib)
    row("cold start (empty data dir): process start → first health answer", "start_cold", "health_ms", fmt_ms)
    row("restart with 1,000+ secrets: process start → first health answer", "start_restart", "health_ms", fmt_ms)
    row("restart with 1,000+ secrets: process start → first secret read served (OpenBao: incl. unseal)",
        "start_restart", "first_request_ms", fmt_ms)
    row("seeding 1,000 secrets, 16 connections (secrets/s)", "seed_1k", "per_second", fmt_rate)
    row("seeding to 100,000 secrets, 16 connections (secrets/s)", "seed_100k", "per_second", fmt_rate)
    w("")

    w("## Notes\n")
    for n in meta.get("notes", []):
        w(f"- {n}")
    w("")
    w("## Exact commands\n")
    w("```sh")
    for c in Path(args.commands).read_text().splitlines():
        w(c)
    w("```")
    text = "\n".join(out) + "\n"
    Path(args.out).write_text(text)
    print(text)


# ---------------------------------------------------------------------------------------------
# meta


def cmd_meta(args) -> None:
    cpu = "unknown"
    mem = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "mem_total": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "mode": args.mode,
        "duration": args.duration,
        "warmup": args.warmup,
        "seed": args.seed,
        "wrk_version": args.wrk_version,
        "versions": [v for v in args.version or []],
        "notes": [n for n in args.note or []],
        "load": args.load or [],
    }
    Path(args.out).write_text(json.dumps(meta, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(prog="benchctl")
    sub = p.add_subparsers(dest="cmd", required=True)

    sub.add_parser("freeport").set_defaults(fn=cmd_freeport)

    s = sub.add_parser("launch")
    s.add_argument("--log", required=True)
    s.add_argument("--pidfile", required=True)
    s.add_argument("--addr", required=True)
    s.add_argument("--health", required=True)
    s.add_argument("--health-ok", action="store_true", help="the health URL must answer 200")
    s.add_argument("--ready-line")
    s.add_argument("--unseal-key")
    s.add_argument("--probe")
    s.add_argument("--probe-timeout", type=float, default=30.0)
    s.add_argument("--kind", default="scaivault")
    s.add_argument("--token")
    s.add_argument("--timeout", type=float, default=120.0)
    s.add_argument("--env", action="append")
    s.add_argument("cmd", nargs=argparse.REMAINDER)
    s.set_defaults(fn=cmd_launch)

    s = sub.add_parser("bao-setup")
    s.add_argument("--addr", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_bao_setup)

    s = sub.add_parser("sv-setup")
    s.add_argument("--addr", required=True)
    s.add_argument("--admin-token", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_sv_setup)

    s = sub.add_parser("seed")
    for a in ("--kind", "--addr", "--token"):
        s.add_argument(a, required=True)
    s.add_argument("--start", type=int, default=0)
    s.add_argument("--end", type=int, required=True)
    s.add_argument("--concurrency", type=int, default=16)
    s.add_argument("--timeout", type=float, default=1800.0)
    s.set_defaults(fn=cmd_seed)

    s = sub.add_parser("verify")
    for a in ("--kind", "--addr", "--token"):
        s.add_argument(a, required=True)
    s.add_argument("--expect", type=int, required=True)
    s.set_defaults(fn=cmd_verify)

    s = sub.add_parser("rss")
    s.add_argument("pid", type=int)
    s.add_argument("--field", default="VmRSS", help="a /proc/PID/status field: VmRSS, RssAnon, ...")
    s.set_defaults(fn=cmd_rss)

    s = sub.add_parser("wrkparse")
    for a in ("--file", "--system", "--workload", "--results"):
        s.add_argument(a, required=True)
    s.add_argument("--connections", type=int, required=True)
    s.set_defaults(fn=cmd_wrkparse)

    s = sub.add_parser("record")
    for a in ("--system", "--figure", "--results"):
        s.add_argument(a, required=True)
    s.add_argument("--set", action="append")
    s.set_defaults(fn=cmd_record)

    s = sub.add_parser("meta")
    s.add_argument("--out", required=True)
    s.add_argument("--mode", required=True)
    s.add_argument("--duration", type=int, required=True)
    s.add_argument("--warmup", type=int, required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--wrk-version", required=True)
    s.add_argument("--version", action="append")
    s.add_argument("--note", action="append")
    s.add_argument("--load", action="append", help="1/5/15-minute load averages (start, end)")
    s.set_defaults(fn=cmd_meta)

    s = sub.add_parser("report")
    for a in ("--results", "--meta", "--commands", "--out"):
        s.add_argument(a, required=True)
    s.set_defaults(fn=cmd_report)

    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
