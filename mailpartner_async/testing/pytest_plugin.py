"""The pytest plugin of the ``testing`` extra: the ``mailpartner_fake`` fixture.

Registered through the ``pytest11`` entry point, so installing the package (with
its ``testing`` extra, to bring pytest) is enough; no ``conftest.py`` needed.
"""

from __future__ import annotations

from .._extras import missing_extra
from . import FakeMailPartner

try:
    import pytest
except ImportError as exc:
    raise missing_extra("mailpartner_async.testing.pytest_plugin", "testing") from exc

__all__ = ["mailpartner_fake"]


@pytest.fixture
def mailpartner_fake() -> FakeMailPartner:
    """A fresh :class:`~mailpartner_async.testing.FakeMailPartner` for each test.

    Its key is ``"test-key"``, its clock the real time (UTC), no rate cap, no faults.
    Build clients with ``mailpartner_fake.async_client()`` or ``.client()``.

    Example::

        def test_cancel(mailpartner_fake):
            with mailpartner_fake.client() as client:
                assert client.cancel(mailpartner_fake.schedule(timedelta(hours=1))).success
    """
    return FakeMailPartner()
