"""The pytest plugin of the ``testing`` extra: the ``mailpartner_fake`` fixture.

Registered through the ``pytest11`` entry point, so installing the package (with
its ``testing`` extra, to bring pytest) is enough; no ``conftest.py`` needed. pytest
loads it in every run of every project that installs the SDK, so it imports pytest
only: the fake, and the SDK behind it, are imported when a test asks for the fixture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest  # pytest loads this plugin: it is there

if TYPE_CHECKING:
    from . import FakeMailPartner

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
    from ._fake import FakeMailPartner

    return FakeMailPartner()
