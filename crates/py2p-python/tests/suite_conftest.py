"""conftest.py of the copied py2p 0.5.607 suite (see run_py2p_suite.py): the tests that
cannot pass, each with the reason, as strict expected failures (a test listed here that
passes fails the run, so the list cannot go stale)."""

import faulthandler
import os

import pytest

IMPL = os.environ.get("PY2P_SUITE_IMPL", "py2p_rs")

# test id -> why it fails against py2p_rs (none now: the SSL tests pass since the Rust
# TLS transport is bound).
EXPECTED_FAILURES = {
    "py2p_rs": {},
    "py2p": {},
}


def pytest_collection_modifyitems(config, items):
    expected = EXPECTED_FAILURES.get(IMPL, {})
    for item in items:
        key = item.nodeid.split("/")[-1]
        if key in expected:
            item.add_marker(pytest.mark.xfail(reason=expected[key], strict=True))

# The longest a whole pytest run may take (the suite takes about 80 s).
SESSION_TIMEOUT_SECS = 900


def pytest_sessionstart(session):
    # A deadlock (a socket method holding the GIL while it waits for a handler, say) must
    # fail the run, not hang CI: past this bound the whole run stops with every thread's
    # stack printed. The watchdog is a C thread; it needs no GIL.
    faulthandler.dump_traceback_later(SESSION_TIMEOUT_SECS, exit=True)


def pytest_sessionfinish(session, exitstatus):
    faulthandler.cancel_dump_traceback_later()
