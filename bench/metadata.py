"""Metadata API benchmark (issue 11): Adaptarium's registry API against MLflow 3's model registry, side by side.

    python -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install 'mlflow>=3,<4' 'psycopg[binary]'
    python -m bench.metadata [--db sqlite,postgres] [--runs 3] [--mlflow-python /tmp/mlflow-venv/bin/python]

MLflow lives in a virtual environment of its own (it pins its own SQLAlchemy, Flask, ...; psycopg for PostgreSQL),
so it cannot change the hub's packages; this module only starts `mlflow server` from there and talks HTTP to it.

For each database kind (SQLite: a fresh file each; PostgreSQL: a fresh database each in the local server at
127.0.0.1:5432, user postgres, trust auth) both servers start fresh, one server process each, on loopback:
- Adaptarium: `uvicorn hub.api.app:create_app --factory` (SQLite or PostgreSQL, local blob directory), called with an
  admin token, as any client would (the token check is part of every request);
- MLflow: `mlflow server --workers 1 --backend-store-uri <db> --artifacts-destination <dir>` (no auth: it has none
  by default), over its REST API (/api/2.0/mlflow/...).
The operations, each on both sides (what is comparable to what):
- create version: an upload of a PEFT adapter (adapter_config.json as PEFT writes it + a 32 KiB safetensors file,
  new bytes every time) | MLflow `model-versions/create` alone (metadata only), and MLflow uploading the same two
  files as proxied artifacts (two PUTs) and then creating the version: the same work, the one the goal is about;
  each client thread publishes to an adapter / registered model of its own;
- get version (`versions/1` | `model-versions/get`), get adapter (`adapters/ns/name` | `registered-models/get`);
- list 200 versions (`versions` | `model-versions/search?filter=name='...'&max_results=200`);
- set tag (`PUT tags/prod` | `registered-models/alias`), get by tag (`versions/prod` | `registered-models/alias` GET).
Each is measured sequentially (one client: p50 / p99 latency) and with 16 client threads (keep-alive httpx clients:
throughput, and the server's CPU seconds per request read from /proc for its whole process tree), after a short
uncounted warm-up, in --runs rounds that interleave the two servers (ours first in odd rounds, MLflow first in even
ones); the report gives the median over rounds and the median of each round's paired ratio (Adaptarium / MLflow
throughput at 16 clients; goal >= 2 on every operation, on both databases).

The machine is shared (2 cores; other people's tests run at the same time) and the client threads run on it too:
single numbers swing by tens of percent, which is why the two servers alternate and each round pairs them.
Writes bench/reports/metadata-<stamp>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
from safetensors.numpy import save as safetensors_bytes

from bench.registry import free_port
from hub import auth
from hub.db import make_engine, make_session_factory
from hub.migrate import upgrade

REPORTS = Path(__file__).parent / "reports"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLIENTS = 16
LIST_VERSIONS = 200
HIDDEN, RANK, LAYERS = 64, 8, 2
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
OPS = ("create", "get_version", "get_adapter", "list_200", "set_tag", "get_by_tag")


# ------------------------------------------------------------------ the adapter both sides store

def peft_config() -> dict:
    """adapter_config.json as PEFT writes it (every field of LoraConfig), so the stored config has its real size."""
    from peft import LoraConfig

    config = LoraConfig(r=RANK, lora_alpha=2 * RANK, target_modules=list(PROJECTIONS), task_type="CAUSAL_LM",
                        base_model_name_or_path="bench-base").to_dict()
    return json.loads(json.dumps(config, default=lambda o: sorted(o) if isinstance(o, (set, frozenset)) else str(o)))


def module_shapes() -> dict:
    return {f"model.layers.{i}.self_attn.{p}": [HIDDEN, HIDDEN] for i in range(LAYERS) for p in PROJECTIONS}


_TENSORS = None


def weights(n: int) -> bytes:
    """The safetensors file, with `n` in its header metadata: new content per upload, never a dedup hit."""
    global _TENSORS
    if _TENSORS is None:
        rng = np.random.default_rng(0)
        _TENSORS = {}
        for module in module_shapes():
            _TENSORS[f"base_model.model.{module}.lora_A.weight"] = rng.standard_normal((RANK, HIDDEN), dtype=np.float32)
            _TENSORS[f"base_model.model.{module}.lora_B.weight"] = rng.standard_normal((HIDDEN, RANK), dtype=np.float32)
    return safetensors_bytes(_TENSORS, metadata={"n": str(n)})


# ------------------------------------------------------------------ databases and servers

class Database:
    """A fresh database of one kind for one server: a SQLite file, or a PostgreSQL database dropped afterwards."""

    def __init__(self, kind: str, work: Path, who: str):
        self.kind, self.name = kind, f"bench_{who}_{uuid.uuid4().hex[:8]}"
        if kind == "sqlite":
            self.sqlalchemy_url = f"sqlite:///{work / (self.name + '.db')}"
            self.mlflow_url = self.sqlalchemy_url
        else:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.sqlalchemy_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.name}"
            self.mlflow_url = f"postgresql://postgres@127.0.0.1:5432/{self.name}"  # psycopg in MLflow's venv

    def drop(self) -> None:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def wait_healthy(url: str, proc: subprocess.Popen, path: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}{path}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}{path} did not answer within {timeout}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants (MLflow's server runs its app in a child)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


class Side:
    """One server under test: how to start it, fill it, and send each operation's request."""

    name = ""
    proc: subprocess.Popen
    url: str

    def headers(self) -> dict:
        return {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Adaptarium(Side):
    name = "adaptarium"

    def __init__(self, kind: str, work: Path):
        self.db = Database(kind, work / "adaptarium", "ada") if kind == "postgres" else None
        data = work / "adaptarium"
        data.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ADAPTARIUM_DATA_DIR": str(data)}
        if self.db is not None:
            env["ADAPTARIUM_DATABASE_URL"] = self.db.sqlalchemy_url
        db_url = env.get("ADAPTARIUM_DATABASE_URL", f"sqlite:///{data / 'adaptarium.db'}")
        upgrade(db_url)
        engine = make_engine(db_url)
        with make_session_factory(engine)() as s:
            self.token = auth.create_token(s, None, {"admin"})
            s.commit()
        engine.dispose()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "hub.api.app:create_app", "--factory",
                                      "--port", str(port), "--log-level", "warning"], env=env)
        wait_healthy(self.url, self.proc, "/healthz")

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def setup(self, c: httpx.Client, config: bytes) -> None:
        c.post("/api/v1/bases", json={"name": "bench-base", "architecture": "synthetic",
                                      "module_shapes": module_shapes()}).raise_for_status()
        self.config = config
        for _ in range(2):
            self._upload(c, "get", next_n())
        c.put("/api/v1/adapters/bench/get/tags/prod", json={"version": 1}).raise_for_status()
        for _ in range(LIST_VERSIONS):
            self._upload(c, "list", next_n())

    def _upload(self, c: httpx.Client, name: str, n: int) -> None:
        files = {"adapter_config.json": ("adapter_config.json", self.config),
                 "adapter_model.safetensors": ("adapter_model.safetensors", weights(n))}
        c.post(f"/api/v1/adapters/bench/{name}/versions", files=files).raise_for_status()

    def request(self, op: str, c: httpx.Client, thread: int, i: int) -> int:
        if op == "create":
            self._upload(c, f"create-{thread}", next_n())
            return 0
        if op == "set_tag":
            r = c.put("/api/v1/adapters/bench/get/tags/prod", json={"version": 1 + i % 2})
        else:
            r = c.get({"get_version": "/api/v1/adapters/bench/get/versions/1",
                       "get_adapter": "/api/v1/adapters/bench/get",
                       "list_200": "/api/v1/adapters/bench/list/versions",
                       "get_by_tag": "/api/v1/adapters/bench/get/versions/prod"}[op])
        r.raise_for_status()
        if op == "list_200":
            assert len(r.json()["items"]) == LIST_VERSIONS
        return len(r.content)

    def stop(self) -> None:
        super().stop()
        if self.db is not None:
            self.db.drop()


class MLflow(Side):
    name = "mlflow"
    API = "/api/2.0/mlflow"

    def __init__(self, kind: str, work: Path, python: str):
        folder = work / "mlflow"
        folder.mkdir(parents=True, exist_ok=True)
        self.db = Database(kind, folder, "mlf")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        mlflow = str(Path(python).parent / "mlflow")
        self.proc = subprocess.Popen(
            [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", self.db.mlflow_url, "--artifacts-destination", str(folder / "artifacts")],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "w"),
            env={**os.environ, "PATH": f"{Path(python).parent}:{os.environ.get('PATH', '')}"}, start_new_session=True)
        try:
            wait_healthy(self.url, self.proc, "/health")
        except RuntimeError:
            self.stop()
            sys.stderr.write((folder / "server.log").read_text()[-3000:])
            raise

    def setup(self, c: httpx.Client, config: bytes) -> None:
        """Registered models, and one run per client thread whose artifact directory holds that thread's files
        (MLflow accepts an mlflow-artifacts: source only inside the artifact directory of the run it names)."""
        self.config = config
        r = c.post(f"{self.API}/experiments/create", json={"name": "bench"})
        assert r.status_code == 200, r.text
        experiment = r.json()["experiment_id"]
        self.runs = {}
        for t in range(CLIENTS):
            r = c.post(f"{self.API}/runs/create", json={"experiment_id": experiment})
            assert r.status_code == 200, r.text
            info = r.json()["run"]["info"]
            assert info["artifact_uri"].startswith("mlflow-artifacts:/"), info
            self.runs[t] = (info["run_id"], info["artifact_uri"].removeprefix("mlflow-artifacts:/"))
        for model in ["bench-get", "bench-list", *(f"bench-create-{t}" for t in range(CLIENTS))]:
            c.post(f"{self.API}/registered-models/create", json={"name": model}).raise_for_status()
        for _ in range(2):
            self._create(c, "bench-get", 0, next_n(), artifacts=True)
        c.post(f"{self.API}/registered-models/alias", json={"name": "bench-get", "alias": "prod", "version": "1"}
               ).raise_for_status()
        for _ in range(LIST_VERSIONS):
            self._create(c, "bench-list", 0, next_n(), artifacts=True)

    def _create(self, c: httpx.Client, model: str, thread: int, n: int, artifacts: bool) -> None:
        run_id, root = self.runs[thread]
        path = f"{root}/{model}/{n}"
        if artifacts:
            c.put(f"/api/2.0/mlflow-artifacts/artifacts/{path}/adapter_config.json", content=self.config
                  ).raise_for_status()
            c.put(f"/api/2.0/mlflow-artifacts/artifacts/{path}/adapter_model.safetensors", content=weights(n)
                  ).raise_for_status()
        r = c.post(f"{self.API}/model-versions/create",
                   json={"name": model, "source": f"mlflow-artifacts:/{path}", "run_id": run_id})
        assert r.status_code == 200, r.text

    def request(self, op: str, c: httpx.Client, thread: int, i: int) -> int:
        if op in ("create", "create_meta"):
            self._create(c, f"bench-create-{thread}", thread, next_n(), artifacts=op == "create")
            return 0
        if op == "set_tag":
            r = c.post(f"{self.API}/registered-models/alias",
                       json={"name": "bench-get", "alias": "prod", "version": str(1 + i % 2)})
        else:
            path, params = {
                "get_version": ("model-versions/get", {"name": "bench-get", "version": "1"}),
                "get_adapter": ("registered-models/get", {"name": "bench-get"}),
                "list_200": ("model-versions/search", {"filter": "name='bench-list'", "max_results": LIST_VERSIONS}),
                "get_by_tag": ("registered-models/alias", {"name": "bench-get", "alias": "prod"})}[op]
            r = c.get(f"{self.API}/{path}", params=params)
        r.raise_for_status()
        if op == "list_200":
            assert len(r.json()["model_versions"]) == LIST_VERSIONS
        return len(r.content)

    def stop(self) -> None:
        if self.proc.poll() is None:  # the server's process group: `mlflow server` and the app it spawned
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(timeout=30)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.db.drop()


_counter = iter(range(10**9))
_counter_lock = threading.Lock()


def next_n() -> int:
    with _counter_lock:
        return next(_counter)


# ------------------------------------------------------------------ measuring

def measure(side: Side, op: str, sequential: int, concurrent: int) -> dict:
    """Sequential latencies (one client), then throughput and server CPU per request at CLIENTS threads."""
    with httpx.Client(base_url=side.url, headers=side.headers(), timeout=120) as c:
        for i in range(3):
            side.request(op, c, 0, i)  # warm-up: connection, caches, the route's first call
        latencies, size = [], 0
        for i in range(sequential):
            start = time.perf_counter()
            size = side.request(op, c, 0, i)
            latencies.append(time.perf_counter() - start)
    per_thread = max(1, concurrent // CLIENTS)
    barrier = threading.Barrier(CLIENTS + 1)

    def client(thread: int) -> None:
        with httpx.Client(base_url=side.url, headers=side.headers(), timeout=120) as c:
            side.request(op, c, thread, 0)  # connect before the clock starts
            barrier.wait()
            for i in range(per_thread):
                side.request(op, c, thread, i)

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client, t) for t in range(CLIENTS)]
        barrier.wait()
        cpu0, start = cpu_seconds(side.proc.pid), time.perf_counter()
        for f in futures:
            f.result()
        elapsed, cpu = time.perf_counter() - start, cpu_seconds(side.proc.pid) - cpu0
    latencies.sort()
    done = per_thread * CLIENTS
    return {"p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
            "rps_16": round(done / elapsed, 1), "server_cpu_ms_per_request": round(1000 * cpu / done, 2),
            "response_bytes": size}


def counts(op: str, scale: float) -> tuple[int, int]:
    """(sequential, concurrent) request counts: listing is ~50x the work of a get, so it gets fewer."""
    base = {"list_200": (30, 96), "create": (40, 160), "create_meta": (40, 160)}.get(op, (100, 480))
    return max(5, int(base[0] * scale)), max(CLIENTS, int(base[1] * scale))


def bench_kind(kind: str, args, config: bytes) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"adaptarium-bench-metadata-{kind}-"))
    ours = theirs = None
    try:
        ours = Adaptarium(kind, work)
        theirs = MLflow(kind, work, args.mlflow_python)
        for side in (ours, theirs):
            start = time.perf_counter()
            with httpx.Client(base_url=side.url, headers=side.headers(), timeout=120) as c:
                side.setup(c, config)
            print(f"[{kind}] {side.name}: filled in {time.perf_counter() - start:.1f}s", flush=True)
        ops = [op for op in OPS if op in args.ops]
        rounds: dict[str, dict[str, list[dict]]] = {}
        for run in range(args.runs):
            for op in ops:
                pairs = [(ours, op), (theirs, op)] + ([(theirs, "create_meta")] if op == "create" else [])
                if run % 2:
                    pairs.reverse()
                for side, what in pairs:
                    seq, conc = counts(what, args.scale)
                    result = measure(side, what, seq, conc)
                    key = what if side is ours or what == "create_meta" else op
                    rounds.setdefault(key, {}).setdefault(side.name, []).append(result)
                    print(f"[{kind}] run {run} {side.name:10s} {what:12s} {json.dumps(result)}", flush=True)
        return summarize(rounds)
    finally:
        for side in (ours, theirs):
            if side is not None:
                side.stop()
        shutil.rmtree(work, ignore_errors=True)


def summarize(rounds: dict) -> dict:
    med = statistics.median
    out = {}
    for op, sides in rounds.items():
        if op == "create_meta":
            continue
        entry = {}
        for name, results in sides.items():
            entry[name] = {k: round(med(r[k] for r in results), 2) for k in results[0]}
        ours, theirs = sides["adaptarium"], sides["mlflow"]
        entry["ratio_16"] = round(med(a["rps_16"] / m["rps_16"] for a, m in zip(ours, theirs)), 2)
        entry["ratio_p50"] = round(med(m["p50_ms"] / a["p50_ms"] for a, m in zip(ours, theirs)), 2)
        if op == "create":
            meta = rounds["create_meta"]["mlflow"]
            entry["mlflow_metadata_only"] = {k: round(med(r[k] for r in meta), 2) for k in meta[0]}
            entry["ratio_16_vs_metadata_only"] = round(med(a["rps_16"] / m["rps_16"] for a, m in zip(ours, meta)), 2)
        out[op] = entry
    return out


def markdown(report: dict) -> str:
    lines = [f"# Metadata API: Adaptarium vs MLflow {report['mlflow_version']} ({report['stamp']})", "",
             f"One server process each, {CLIENTS} client threads, median of {report['runs']} interleaved rounds; "
             f"{report['machine']}, the client threads on the same machine (Notes: what else ran).", "",
             "Ratios are Adaptarium / MLflow (throughput at 16 clients; MLflow's p50 / ours for latency); goal: "
             "throughput ratio >= 2 everywhere.", ""]
    for kind, results in report["databases"].items():
        lines += [f"## {kind}", "", "| operation | ours p50 / p99 ms | MLflow p50 / p99 ms | ours req/s @16 | "
                  "MLflow req/s @16 | ratio @16 | ratio p50 | server CPU ms/req ours / MLflow | bytes ours / MLflow |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for op, e in results.items():
            a, m = e["adaptarium"], e["mlflow"]
            lines.append(f"| {op} | {a['p50_ms']} / {a['p99_ms']} | {m['p50_ms']} / {m['p99_ms']} | {a['rps_16']} | "
                         f"{m['rps_16']} | **{e['ratio_16']}** | {e['ratio_p50']} | "
                         f"{a['server_cpu_ms_per_request']} / {m['server_cpu_ms_per_request']} | "
                         f"{int(a['response_bytes'])} / {int(m['response_bytes'])} |")
            if op == "create":
                mm = e["mlflow_metadata_only"]
                lines.append(f"| create vs MLflow metadata-only | | {mm['p50_ms']} / {mm['p99_ms']} | {a['rps_16']} | "
                             f"{mm['rps_16']} | {e['ratio_16_vs_metadata_only']} | | "
                             f"{a['server_cpu_ms_per_request']} / {mm['server_cpu_ms_per_request']} | |")
        lines.append("")
    if report.get("notes"):
        lines += ["## Notes", "", report["notes"], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--ops", default=",".join(OPS), help="comma-separated subset of " + ", ".join(OPS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every request count")
    parser.add_argument("--mlflow-python", default="/tmp/mlflow-venv/bin/python")
    parser.add_argument("--notes", default="", help="a paragraph for the report")
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args()
    args.ops = set(args.ops.split(","))
    mlflow_version = subprocess.run([args.mlflow_python, "-c", "import mlflow; print(mlflow.__version__)"],
                                    capture_output=True, text=True, check=True).stdout.strip()
    config = json.dumps(peft_config(), indent=2).encode()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report = {"stamp": stamp, "mlflow_version": mlflow_version, "runs": args.runs, "scale": args.scale,
              "clients": CLIENTS, "machine": f"{os.cpu_count()} cpus", "config_bytes": len(config),
              "weights_bytes": len(weights(0)), "notes": args.notes, "databases": {}}
    for kind in args.db.split(","):
        report["databases"][kind] = bench_kind(kind, args, config)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"metadata-{stamp}.json").write_text(json.dumps(report, indent=2))
        (args.out / f"metadata-{stamp}.md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {args.out / f'metadata-{stamp}.md'}")


if __name__ == "__main__":
    main()
