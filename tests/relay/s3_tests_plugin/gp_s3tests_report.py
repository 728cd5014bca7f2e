"""pytest plugin for tests/relay/s3_tests_conformance_test.ts: writes one JSON line per test
(name, outcome, the last line of its failure, cut short) to $GP_S3TESTS_RESULTS. JUnit XML
would carry the suite's multi-megabyte assertion texts. Under pytest-xdist (`-n`) the workers'
reports reach the controller, which alone writes the file."""

import json
import os

_results = {}


def pytest_runtest_logreport(report):
    name = report.nodeid.split("::")[-1]
    prev = _results.get(name)
    if prev and prev["status"] == "failed":
        return
    if report.failed:
        text = report.longreprtext.strip().splitlines()
        message = text[-1][:300] if text else ""
        _results[name] = {"name": name, "status": "failed", "message": message}
    elif report.skipped:
        _results[name] = {"name": name, "status": "skipped", "message": ""}
    elif report.when == "call":
        _results[name] = {"name": name, "status": "passed", "message": ""}


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller writes every result
    with open(os.environ["GP_S3TESTS_RESULTS"], "w") as f:
        for r in _results.values():
            f.write(json.dumps(r) + "\n")
