"""The method quality protocol: `python -m bench.quality METHOD --scale SCALE` (see __main__.py).

One module per method (transfer, unlearn, merge, generate) says which jobs it runs and which goals it checks; the
shared parts are here: tasks (built-in or own JSONL), converged inputs, scoring with intervals (stats), paired goal
verdicts, and the report writer.
"""
