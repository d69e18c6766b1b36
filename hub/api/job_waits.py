"""`POST /api/v1/jobs?wait=S`: waiting for jobs to end without holding a thread, and a bound on waits per caller.

A wait used to sleep in a pool thread for up to 60 s, polling its job; 48 of them took every thread of the API
process's pool, and every synchronous route (the adapter list among them) queued behind them for ~55 s.
Here a wait is an asyncio future on the event loop. One poller per API process, alive only while something
waits, asks the database every POLL_S which of the awaited jobs have ended: one short thread trip and one query
however many callers wait, and it resolves their futures. A caller (a token; all anonymous callers share one) may
have `Settings.max_waits_per_token` waits at once in a process; past that the submit is a 429 with Retry-After before
anything is stored, so a retried request cannot make a job twice.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from hub.models import Job

POLL_S = 0.2  # how late a waiter hears that its job ended, at most (plus one query)
TERMINAL = ("succeeded", "failed", "cancelled")
CHUNK = 500  # job ids per query: an IN list well under every driver's parameter limit


class JobWaits:
    """The waits of one API process (app.state.job_waits). Touched only on the event loop's thread: no lock."""

    def __init__(self, session_factory: sessionmaker, per_caller: int):
        self.session_factory, self.per_caller = session_factory, per_caller
        self.by_caller: Counter[str] = Counter()
        self.futures: dict[str, list[asyncio.Future]] = {}
        self.poller: asyncio.Task | None = None

    @contextlib.contextmanager
    def slot(self, caller: str):
        """One of the caller's wait slots for the block, or a 429 with Retry-After when all are taken."""
        if self.by_caller[caller] >= self.per_caller:
            raise HTTPException(429, f"this token already has {self.by_caller[caller]} submits waiting for their jobs "
                                     f"(at most {self.per_caller} at once); retry after Retry-After seconds, or submit "
                                     "without ?wait and follow the job's events",
                                headers={"Retry-After": "1"})
        self.by_caller[caller] += 1
        try:
            yield
        finally:
            self.by_caller[caller] -= 1
            if not self.by_caller[caller]:
                del self.by_caller[caller]

    async def until_ended(self, job_id: str, seconds: float) -> None:
        """Return once the job has ended or after `seconds`, whichever is first, holding no thread meanwhile."""
        future = asyncio.get_running_loop().create_future()
        self.futures.setdefault(job_id, []).append(future)
        if self.poller is None or self.poller.done():
            self.poller = asyncio.create_task(self._poll())
        try:
            await asyncio.wait_for(future, seconds)
        except TimeoutError:
            pass
        finally:
            waiting = self.futures.get(job_id, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                self.futures.pop(job_id, None)

    async def _poll(self) -> None:
        while self.futures:
            await asyncio.sleep(POLL_S)
            ids = list(self.futures)
            try:
                ended = await run_in_threadpool(self._ended, ids)
            except Exception:  # the database is away for a moment: the waits run out or a later poll answers
                continue
            for job_id in ended:
                for future in self.futures.pop(job_id, []):
                    if not future.done():
                        future.set_result(None)

    def _ended(self, ids: list[str]) -> list[str]:
        with self.session_factory() as s:
            return [job_id for start in range(0, len(ids), CHUNK)
                    for job_id in s.scalars(select(Job.id).where(Job.id.in_(ids[start:start + CHUNK]),
                                                                 Job.state.in_(TERMINAL)))]


def job_waits(app) -> JobWaits:
    waits = getattr(app.state, "job_waits", None)
    if waits is None:
        waits = app.state.job_waits = JobWaits(app.state.session_factory, app.state.settings.max_waits_per_token)
    return waits
