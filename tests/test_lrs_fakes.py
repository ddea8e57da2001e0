"""The fake unreachable LRS endpoints fail the way a real outage does."""
import time
from urllib.parse import urljoin

import pytest
import requests

from .unreachable import refused_endpoint, silent_endpoint
from .xapi import sample_statements


def test_refused_endpoint_refuses_at_once():
    """Nothing listens: the POST fails with a refused connection, without waiting."""
    with refused_endpoint() as endpoint:
        assert endpoint.endswith("/xAPI/")
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError, match="[Rr]efused"):
            requests.post(urljoin(endpoint, "statements"), json=sample_statements(), timeout=5)
        assert time.monotonic() - started < 1


def test_silent_endpoint_accepts_and_never_answers():
    """The connection is accepted (counted) and the client's read times out."""
    with silent_endpoint() as server:
        started = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            requests.post(urljoin(server.endpoint, "statements"), json=sample_statements(),
                          timeout=(2, 0.5))
        assert 0.5 <= time.monotonic() - started < 2
        assert server.accepted == 1


def test_silent_endpoint_is_gone_after_the_block():
    """After the block nothing listens there any more: a new connection is refused."""
    with silent_endpoint() as server:
        with pytest.raises(requests.ReadTimeout):
            requests.get(server.endpoint, timeout=(2, 0.2))
    with pytest.raises(requests.ConnectionError):
        requests.get(server.endpoint, timeout=2)
