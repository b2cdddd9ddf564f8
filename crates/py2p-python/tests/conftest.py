"""Helpers shared by the py2p_rs tests (not by py2p's own suite, which has its own)."""

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
