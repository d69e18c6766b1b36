"""README's "Using it" runs as written: its first bash block, verbatim, against a fresh `adaptarium up` with the
embedded worker, in the directory where the hub runs (as the README tells a new user to do). A README edit that
breaks a step, or a CLI change the README did not follow, fails here."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx
import pytest

from tests.conftest import ROOT, free_port, wait_for_health


def walkthrough() -> str:
    """The first ```bash block after the "## Using it" heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Using it\n", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README's 'Using it' has no bash block"
    return match.group(1)


@pytest.mark.timeout(1200)
def test_the_readme_walkthrough_runs_as_written_on_a_fresh_hub(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTARIUM_")}
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"  # the `adaptarium` of this interpreter
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    hub = subprocess.Popen(["adaptarium", "up", "--port", str(port)], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for_health(url, hub)
        # each traced line carries the seconds since the start: a slow step shows in the output of a failure
        script = "SECONDS=0; PS4='+ [${SECONDS}s] '; set -x\n" + walkthrough()
        trace = tmp_path / "walkthrough.log"  # stdout and the trace, with each line's start time, as it runs
        with trace.open("w") as log:
            run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path,
                                 env={**env, "ADAPTARIUM_URL": url}, stdout=log, stderr=subprocess.STDOUT,
                                 timeout=1100)
        print(trace.read_text())  # pytest shows it when a later check fails
        assert run.returncode == 0, f"the walkthrough stopped:\n{trace.read_text()[-8000:]}"
        token = (tmp_path / "adaptarium-data" / "admin-token").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            def versions(name: str, kind: str = "adapters") -> list[dict]:
                r = c.get(f"/api/v1/{kind}/team/{name}/versions")
                assert r.status_code == 200, (name, r.text)
                return r.json()["items"]

            # what the steps say they make, made: O3 wrote version 2 of team/bool, the generator a new adapter
            assert len(versions("bool")) == 2
            for name in ("sentiment", "sort", "both", "bool-kit", "bool-qwen", "shift-2-gen"):
                assert versions(name), name
            assert versions("forget-set", "datasets") and versions("shift-gen", "generators")
            assert c.get("/api/v1/adapters/team/bool/versions/stable").json()["number"] == 1
            assert c.get("/api/v1/jobs", params={"state": "failed"}).json()["items"] == []
    finally:
        os.killpg(hub.pid, signal.SIGTERM)
        hub.communicate(timeout=60)
