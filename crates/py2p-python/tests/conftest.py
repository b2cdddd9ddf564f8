"""Helpers shared by the py2p_rs tests (not by py2p's own suite, which has its own)."""

import faulthandler
import socket
import time

import pytest


def free_port():
    """A port nothing listens on now (for pure py2p nodes, which cannot bind port 0 and
    still advertise a reachable address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what, timeout=30.0):
    """Waits until ``condition()`` is truthy and returns it; fails after ``timeout`` s.

    The timeout is only a bound on failure: the wait ends as soon as the condition holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.01)


@pytest.fixture
def closing():
    """Collects sockets and closes those still open at the end of the test."""
    sockets = []
    yield sockets.append
    for s in sockets:
        try:
            s.close()
        except RuntimeError:
            pass

# The longest a whole pytest run may take (the suite takes about 80 s).
SESSION_TIMEOUT_SECS = 900


def pytest_sessionstart(session):
    # A deadlock (a socket method holding the GIL while it waits for a handler, say) must
    # fail the run, not hang CI: past this bound the whole run stops with every thread's
    # stack printed. The watchdog is a C thread; it needs no GIL.
    faulthandler.dump_traceback_later(SESSION_TIMEOUT_SECS, exit=True)


def pytest_sessionfinish(session, exitstatus):
    faulthandler.cancel_dump_traceback_later()
