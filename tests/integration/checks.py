"""How the Python integration tests report: check() prints each outcome ("ok: what" or "FAIL: what") and keeps the
failures, finish() ends the test, exit 1 when any check failed, else printing "ok"."""
import sys

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def finish():
    if failures:
        sys.exit(1)
    print("ok")
