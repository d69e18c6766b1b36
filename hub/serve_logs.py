"""Where `adaptarium up` sends its logs: quiet by default.

A person running the hub in a terminal wants to see that it started, where, where the token is, whether the worker
came up, and errors. The access log (a line per request: the dashboard polls), library warnings and the worker's
Celery log are for later reading, so they go to DATA_DIR/adaptarium.log; `up --verbose` keeps uvicorn's and the
worker's own output on the terminal instead.
"""
from __future__ import annotations

import logging
import re
import subprocess
import threading
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# what of the worker's output reaches the terminal: its placement line, Celery's "ready", errors
_WORKER_ERROR = re.compile(r"(: (ERROR|CRITICAL)/)|(^error:)|(^Traceback)")


def quiet_warnings(log_path: Path) -> None:
    """Python warnings (deprecations from libraries) and the root logger go to the log file, not the terminal."""
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)


def uvicorn_config(log_path: Path) -> dict:
    """uvicorn's logging: everything to the file; only warnings and errors (a port in use, a failed request's
    traceback) to the terminal."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": FORMAT}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(log_path), "formatter": "plain"},
            "terminal": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain",
                         "level": "WARNING"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["file", "terminal"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["file"], "level": "INFO", "propagate": False},
            "adaptarium": {"handlers": ["file", "terminal"], "level": "INFO", "propagate": False},
        },
    }


def relay_worker(child: subprocess.Popen, log_path: Path, console) -> threading.Thread:
    """Copy the worker's output into the log file, telling the terminal when it is up, its errors, and its end."""

    def relay() -> None:
        with open(log_path, "a", buffering=1) as log:
            for raw in child.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(f"worker | {line}\n")
                if line.startswith("adaptarium worker:"):
                    console.print(f"worker starting: {line.removeprefix('adaptarium worker:').strip()}",
                                  highlight=False, markup=False, soft_wrap=True)
                elif line.rstrip().endswith(" ready."):
                    console.print("worker ready", highlight=False, soft_wrap=True)
                elif _WORKER_ERROR.search(line):
                    console.print(f"worker: {line.strip()}  (details in {log_path})", style="red", highlight=False,
                                  markup=False, soft_wrap=True)
        code = child.wait()
        if code not in (0, -15):  # -15: stopped by `up` itself
            console.print(f"worker exited with code {code}; see {log_path}", style="red", highlight=False,
                          markup=False, soft_wrap=True)

    thread = threading.Thread(target=relay, name="worker-log", daemon=True)
    thread.start()
    return thread
