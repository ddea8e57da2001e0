"""Benchmark harness for the progress service (never imported by progress_service).

`python -m bench.run` seeds an embedded SecantusDB, serves the service and a minimal
reference implementation (`bench.reference_app`) under gunicorn in turn, drives both with wrk
and writes `bench/results.json`.
"""
