"""Registry benchmark (issue 2): moving a large adapter through the API, against moving the same bytes raw.

    python -m bench.registry [--size-mb 500] [--runs 5]

- upload / download throughput of a ~size-mb PEFT adapter through the REST API (a uvicorn process on loopback, SQLite +
  local blobs; upload with the CLI's client, download with the CLI's `pull`, which also verifies the sha256), after one
  uncounted warm-up run, against a raw loopback copy of the same file right after it (a TCP socket whose server writes
  to disk, sent with sendfile; goal: API / raw >= 0.8), reported as the ratio of medians and as the median of each
  run's paired ratio; also against the same copy done with 1 MiB reads/sends from Python;
- the API process's peak RSS growth during an upload (goal < 64 MB), sampled from /proc every 20 ms;
- p50 / p99 latency of version metadata reads at concurrency 16;
- what durability costs (issue 10): staging + committing the weights file into the local blob store with fsync
  (file before the rename, directory after it) against the same without, interleaved runs, median of each
  (`--fsync-only` runs just this part).
Writes bench/reports/registry-<stamp>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from safetensors.numpy import save_file

from hub import auth
from hub.db import make_engine, make_session_factory
from hub.migrate import upgrade
from hub.settings import Settings
from hub.storage import LocalBlobStore

REPORTS = Path(__file__).parent / "reports"
HIDDEN, RANK = 4096, 1024  # one module's A + B in float32 = 32 MiB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_adapter(folder: Path, size_mb: int) -> tuple[dict, int]:
    """A PEFT folder of ~size_mb and the base module shapes it fits."""
    modules = max(1, round(size_mb * 1e6 / (2 * HIDDEN * RANK * 4)))
    rng = np.random.default_rng(0)
    tensors, shapes = {}, {}
    for i in range(modules):
        module = f"model.layers.{i}.mlp.proj"
        shapes[module] = [HIDDEN, HIDDEN]
        tensors[f"base_model.model.{module}.lora_A.weight"] = rng.standard_normal((RANK, HIDDEN), dtype=np.float32)
        tensors[f"base_model.model.{module}.lora_B.weight"] = rng.standard_normal((HIDDEN, RANK), dtype=np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"run": "0"})
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": RANK, "lora_alpha": RANK, "target_modules": ["proj"],
        "base_model_name_or_path": "bench-base", "task_type": "CAUSAL_LM"}))
    return shapes, (folder / "adapter_model.safetensors").stat().st_size


def mark_run(path: Path, run: int) -> None:
    """Change the header metadata in place (same length) so each upload is new content, not a dedup hit."""
    with open(path, "r+b") as f:
        head = f.read(4096)
        at = head.index(b'"run":"') + len(b'"run":"')
        f.seek(at)
        f.write(str(run % 10).encode())


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class PeakRss:
    def __init__(self, pid: int):
        self.pid, self.base, self.peak, self._stop = pid, rss_kb(pid), 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 1024


def raw_copy(path: Path, target: Path, kernel: bool = True) -> tuple[float, float]:
    """Seconds to push the file over a loopback socket to a server writing it to disk, and to pull it back.

    kernel=True sends with sendfile (no user-space copy on the sending side: the fastest a copy can be);
    kernel=False reads and sends 1 MiB chunks from Python, as any user-space server or client must."""
    size = path.stat().st_size
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def receive():
        conn, _ = server.accept()
        with conn, open(target, "wb") as out:
            while chunk := conn.recv(1 << 20):
                out.write(chunk)

    def send():
        conn, _ = server.accept()
        with conn, open(target, "rb") as f:
            _send(conn, f, kernel)

    t = threading.Thread(target=receive)
    t.start()
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as c, open(path, "rb") as f:
        _send(c, f, kernel)
    t.join()
    up = time.perf_counter() - start
    t = threading.Thread(target=send)
    t.start()
    start = time.perf_counter()
    received = 0
    with socket.create_connection(("127.0.0.1", port)) as c, open(str(target) + ".back", "wb") as out:
        while chunk := c.recv(1 << 20):
            out.write(chunk)
            received += len(chunk)
    down = time.perf_counter() - start
    t.join()
    server.close()
    assert received == size
    os.unlink(str(target) + ".back")
    return up, down


def _send(conn: socket.socket, f, kernel: bool) -> None:
    if kernel:
        conn.sendfile(f)
        return
    while chunk := f.read(1 << 20):
        conn.sendall(chunk)


def fsync_cost(path: Path, work: Path, runs: int) -> dict:
    """Seconds to stage and commit `path` into a local blob store, durable (fsync) and not, alternating per run.

    Each run stages new content (its first bytes carry the run number), so every commit is a real write and rename,
    never a dedup hit; the file is read from the page cache, so the difference is the cost of the fsyncs."""
    size = path.stat().st_size
    stores = {durable: LocalBlobStore(work / f"fsync-{durable}", durable=durable) for durable in (True, False)}
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for run in range(-1, runs):  # run -1 warms the page cache and the directories
        for durable in ((True, False) if run % 2 else (False, True)):
            start = time.perf_counter()
            staging = stores[durable].staging()
            staging.write(f"{run}:{durable}".encode())
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    staging.write(chunk)
            stores[durable].commit(staging.finish())
            if run >= 0:
                seconds[durable].append(time.perf_counter() - start)
    med = statistics.median
    return {"fsync_size_mb": round(size / 1e6, 1), "fsync_runs": runs,
            "commit_durable_s": round(med(seconds[True]), 4), "commit_not_durable_s": round(med(seconds[False]), 4),
            "commit_durable_mb_s": round(size / 1e6 / med(seconds[True]), 1),
            "commit_not_durable_mb_s": round(size / 1e6 / med(seconds[False]), 1),
            "fsync_overhead_s": round(med(seconds[True]) - med(seconds[False]), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--fsync-only", action="store_true", help="measure only what the store's fsync costs")
    args = parser.parse_args()
    if args.fsync_only:
        work = Path(tempfile.mkdtemp(prefix="adaptarium-bench-"))
        make_adapter(work / "adapter", args.size_mb)
        report = fsync_cost(work / "adapter" / "adapter_model.safetensors", work, args.runs)
        print(json.dumps(report, indent=2))
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"registry-fsync-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(report, indent=2))
        print(f"wrote {path}")
        return

    work = Path(tempfile.mkdtemp(prefix="adaptarium-bench-"))
    settings = Settings.from_env({"ADAPTARIUM_DATA_DIR": str(work / "data"),
                                  "ADAPTARIUM_MAX_UPLOAD_BYTES": str(8 * 1024**3)})
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as s:
        token = auth.create_token(s, None, {"admin"})
        s.commit()
    engine.dispose()
    folder = work / "adapter"
    shapes, weights_size = make_adapter(folder, args.size_mb)
    print(f"adapter: {weights_size / 1e6:.0f} MB of weights")

    port = free_port()
    env = {**os.environ, "ADAPTARIUM_DATA_DIR": str(settings.data_dir),
           "ADAPTARIUM_MAX_UPLOAD_BYTES": str(8 * 1024**3)}
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "hub.api.app:create_app", "--factory", "--port", str(port),
                            "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        httpx.post(f"{url}/api/v1/bases", headers=headers, json={
            "name": "bench-base", "architecture": "synthetic", "module_shapes": shapes}).raise_for_status()

        from hub.client import HubClient

        client = HubClient(url, token)
        ups, downs, raws_up, raws_down, rss, py_up, py_down = [], [], [], [], [], [], []
        for run in range(-1, args.runs):  # run -1 warms up: on this VM, first touches of fresh memory are slow
            mark_run(folder / "adapter_model.safetensors", run)
            with PeakRss(api.pid) as peak:
                start = time.perf_counter()
                version = client.push(folder, "bench", f"big{run}")
                up = time.perf_counter() - start
            start = time.perf_counter()
            client.pull("bench", f"big{run}", str(version["number"]), work / f"pulled{run}")
            down = time.perf_counter() - start
            raw_up, raw_down = raw_copy(folder / "adapter_model.safetensors", work / "raw.bin")
            up_py, down_py = raw_copy(folder / "adapter_model.safetensors", work / "raw.bin", kernel=False)
            for f in (work / f"pulled{run}").iterdir():
                f.unlink()
            print(f"run {run}: upload {up:.2f}s (raw {raw_up:.2f}s), download {down:.2f}s "
                  f"(raw {raw_down:.2f}s), API RSS growth {peak.growth_mb:.1f} MB{' (warm-up)' if run < 0 else ''}")
            if run >= 0:
                for values, value in ((ups, up), (downs, down), (raws_up, raw_up), (raws_down, raw_down),
                                      (rss, peak.growth_mb), (py_up, up_py), (py_down, down_py)):
                    values.append(value)

        def one_read(_):
            with httpx.Client(base_url=url, headers=headers) as c:
                out = []
                for _ in range(args.requests // 16):
                    start = time.perf_counter()
                    c.get("/api/v1/adapters/bench/big0/versions/1").raise_for_status()
                    out.append(time.perf_counter() - start)
                return out

        with ThreadPoolExecutor(16) as pool:
            latencies = sorted(x for chunk in pool.map(one_read, range(16)) for x in chunk)
        durability = fsync_cost(folder / "adapter_model.safetensors", work, args.runs)
    finally:
        api.terminate()
        api.wait(timeout=30)

    mb = weights_size / 1e6
    med = statistics.median
    report = {
        "size_mb": round(mb, 1), "runs": args.runs,
        "upload_mb_s": round(mb / med(ups), 1), "raw_upload_mb_s": round(mb / med(raws_up), 1),
        "upload_ratio": round(med(raws_up) / med(ups), 3),
        # the raw copy's time swings with the VM's memory (0.5-1.3 s for the same bytes): the paired ratio of each
        # run, API and raw back to back, is the steadier number
        "upload_ratio_paired_median": round(med(r / a for r, a in zip(raws_up, ups)), 3),
        "download_ratio_paired_median": round(med(r / a for r, a in zip(raws_down, downs)), 3),
        "download_mb_s": round(mb / med(downs), 1), "raw_download_mb_s": round(mb / med(raws_down), 1),
        "download_ratio": round(med(raws_down) / med(downs), 3),
        "python_copy_upload_mb_s": round(mb / med(py_up), 1), "python_copy_download_mb_s": round(mb / med(py_down), 1),
        "upload_ratio_vs_python_copy": round(med(py_up) / med(ups), 3),
        "download_ratio_vs_python_copy": round(med(py_down) / med(downs), 3),
        "api_rss_growth_mb_max": round(max(rss), 1), "api_rss_growth_mb_median": round(med(rss), 1),
        "metadata_requests": len(latencies), "metadata_concurrency": 16,
        "metadata_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "metadata_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        **durability,
        "machine": f"{os.cpu_count()} cpus",
    }
    print()
    print("| measure | value | goal |")
    print("|---|---|---|")
    print(f"| upload MB/s (API / raw) | {report['upload_mb_s']} / {report['raw_upload_mb_s']} = "
          f"{report['upload_ratio']} (paired runs: {report['upload_ratio_paired_median']}) | >= 0.8 |")
    print(f"| download MB/s (API / raw) | {report['download_mb_s']} / {report['raw_download_mb_s']} = "
          f"{report['download_ratio']} (paired runs: {report['download_ratio_paired_median']}) | >= 0.8 |")
    print(f"| vs a user-space Python socket copy (up / down) | {report['upload_ratio_vs_python_copy']} / "
          f"{report['download_ratio_vs_python_copy']} | |")
    print(f"| API peak RSS growth during upload | {report['api_rss_growth_mb_max']} MB | < 64 MB |")
    print(f"| version metadata p50 / p99 @16 | {report['metadata_p50_ms']} / {report['metadata_p99_ms']} ms | |")
    print(f"| stage + commit with / without fsync | {report['commit_durable_s']} / {report['commit_not_durable_s']} s "
          f"({report['commit_durable_mb_s']} / {report['commit_not_durable_mb_s']} MB/s) | |")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"registry-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
