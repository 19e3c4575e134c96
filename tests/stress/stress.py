"""Load test for ferryd: many concurrent clients, each running a session of
mixed RETR and STOR transfers of 64 KiB to 8 MiB, every byte checked.

    /usr/bin/python3 tests/stress/stress.py [--clients 1000] [--files 5]

Starts its own ferryd (build/ferryd, or FERRY_BUILD) on a loopback port in
a temporary root, prints one summary, exits non-zero on any error. Source
files are made once and shared; downloads are hashed as they stream in,
uploads are hashed on disk afterwards.
"""
import argparse
import ftplib
import hashlib
import io
import math
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

BLOCK = 256 * 1024


def sizes(n, lo, hi, seed):
    """n sizes spread evenly on a log scale between lo and hi."""
    rnd = random.Random(seed)
    return [int(math.exp(rnd.uniform(math.log(lo), math.log(hi)))) for _ in range(n)]


class Pool:
    """The source files: written once, hashed once."""

    def __init__(self, directory, count, lo, hi):
        self.files = []
        for i, size in enumerate(sizes(count, lo, hi, 7)):
            name = f"src{i:03d}.bin"
            path = os.path.join(directory, name)
            harness.make_file(path, size, seed=1000 + i)
            self.files.append((name, path, size, harness.sha256_file(path)))


def session(port, client_id, plan, pool, results, timeout):
    errors = []
    moved = 0
    f = ftplib.FTP()
    try:
        f.connect("127.0.0.1", port, timeout=timeout)
        f.login()
        f.voidcmd("TYPE I")
        for j, (op, k) in enumerate(plan):
            name, path, size, digest = pool.files[k]
            if op == "RETR":
                h = hashlib.sha256()
                got = [0]

                def take(b, h=h, got=got):
                    h.update(b)
                    got[0] += len(b)

                f.retrbinary("RETR " + name, take, blocksize=BLOCK)
                if got[0] != size or h.hexdigest() != digest:
                    errors.append(f"client {client_id}: RETR {name}: {got[0]} bytes, checksum mismatch")
            else:
                with open(path, "rb") as src:
                    f.storbinary(f"STOR up-{client_id}-{j}.bin", src, blocksize=BLOCK)
            moved += size
        f.quit()
    except (ftplib.Error, OSError, EOFError) as e:
        errors.append(f"client {client_id}: {type(e).__name__}: {e}")
    finally:
        f.close()
    results[client_id] = (moved, errors)


def run(clients, files, lo, hi, pool_size=24, timeout=120, out=sys.stdout):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="ferry-stress-")
    root = os.path.join(tmp, "root")
    os.mkdir(root)
    try:
        pool = Pool(root, pool_size, lo, hi)
        harness.give_to_server(tmp, root)
        server = harness.start_ferryd(root, "-w", "--max-sessions", str(clients + 100), "--max-per-ip", "0")
        try:
            rnd = random.Random(42)
            plans = [[(rnd.choice(("RETR", "STOR")), rnd.randrange(pool_size)) for _ in range(files)]
                     for _ in range(clients)]
            results = {}
            threads = [threading.Thread(target=session, args=(server.port, i, plans[i], pool, results, timeout),
                                        daemon=True) for i in range(clients)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            deadline = t0 + timeout * files + 60
            for t in threads:
                t.join(max(0.1, deadline - time.monotonic()))
            elapsed = time.monotonic() - t0
            errors = [e for moved, errs in results.values() for e in errs]
            hung = clients - len(results)
            if hung:
                errors.append(f"{hung} clients did not finish in time")
            # Every upload is on disk, whole and exact.
            for i, plan in enumerate(plans):
                for j, (op, k) in enumerate(plan):
                    if op != "STOR" or i not in results or results[i][1]:
                        continue
                    p = os.path.join(root, f"up-{i}-{j}.bin")
                    if not os.path.exists(p) or harness.sha256_file(p) != pool.files[k][3]:
                        errors.append(f"client {i}: upload {j} differs on disk")
            moved = sum(m for m, _ in results.values())
            alive = server.proc.poll() is None
        finally:
            rc = server.stop()
        if not alive:
            errors.append("ferryd died during the run")
        transfers = clients * files
        print(f"stress: {clients} clients x {files} files = {transfers} transfers, "
              f"{moved / 2**20:.0f} MiB in {elapsed:.1f} s ({moved / 2**20 / max(elapsed, 1e-9):.0f} MiB/s), "
              f"{len(errors)} errors, ferryd exit {rc}", file=out)
        for e in errors[:20]:
            print("  " + e, file=out)
        return errors
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--min", type=int, default=64 * 1024)
    ap.add_argument("--max", type=int, default=8 * 1024 * 1024)
    a = ap.parse_args()
    errors = run(a.clients, a.files, a.min, a.max)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
