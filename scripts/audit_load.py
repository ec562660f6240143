"""Appends N synthetic audit entries to a tenant's chain in a (stopped) server's SQLite database, with
hashes computed exactly as crates/core/src/audit.rs does, so the chain stays valid. For measurements
only (scripts/audit-export-figures.sh).

usage: python audit_load.py DB TENANT N
"""

import hashlib
import sqlite3
import sys
import time


def chain_hash(prev, seq, e):
    h = hashlib.sha256()
    h.update(b"scaivault-audit-v1")
    h.update(prev)
    h.update(seq.to_bytes(8, "big", signed=True))
    for f in (e["id"], e["tenant_id"], e["action"], e["identity_type"], e["identity_id"],
              e["secret_path"] or "", e["source_ip"] or "", e["user_agent"] or "",
              e["error_code"] or "", e["request_id"], e["extra_data"]):
        b = f.encode()
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    h.update(e["ts"].to_bytes(8, "big", signed=True))
    h.update(bytes([1 if e["success"] else 0]))
    h.update(e["status"].to_bytes(4, "big", signed=True))
    h.update(e["duration_ms"].to_bytes(8, "big", signed=True))
    return h.digest()


def main():
    db, tenant, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    con = sqlite3.connect(db)
    row = con.execute("SELECT seq, hash FROM audit_heads WHERE tenant_id = ?", (tenant,)).fetchone()
    seq, prev = (row[0], bytes(row[1])) if row else (0, bytes(32))
    now = int(time.time() * 1_000_000)
    cols = ("id, tenant_id, ts, action, identity_type, identity_id, secret_path, source_ip, user_agent, "
            "success, status, error_code, duration_ms, request_id, extra_data, seq, hash")
    sql = f"INSERT INTO audit_log ({cols}) VALUES ({', '.join('?' * 17)})"
    batch = []
    for i in range(n):
        seq += 1
        e = {
            "id": f"log_load{seq:012d}",
            "tenant_id": tenant,
            "ts": now - (n - i),
            "action": "read" if i % 4 else "write",
            "identity_type": "service_account",
            "identity_id": f"sa:loader-{i % 50}",
            "secret_path": f"load/app{i % 1000}/db",
            "source_ip": "10.0.1.50",
            "user_agent": "audit-load/1.0",
            "success": i % 97 != 0,
            "status": 200 if i % 97 else 403,
            "error_code": None if i % 97 else "access_denied",
            "duration_ms": i % 20,
            "request_id": f"req_load{seq:012d}",
            "extra_data": '{"version":1}' if i % 4 else "{}",
        }
        prev = chain_hash(prev, seq, e)
        batch.append((e["id"], tenant, e["ts"], e["action"], e["identity_type"], e["identity_id"],
                      e["secret_path"], e["source_ip"], e["user_agent"], e["success"], e["status"],
                      e["error_code"], e["duration_ms"], e["request_id"], e["extra_data"], seq, prev))
        if len(batch) == 20000:
            con.executemany(sql, batch)
            batch.clear()
    if batch:
        con.executemany(sql, batch)
    con.execute(
        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (?, ?, ?) "
        "ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (tenant, seq, prev),
    )
    con.commit()
    con.close()


if __name__ == "__main__":
    main()
