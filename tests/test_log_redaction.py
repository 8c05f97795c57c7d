"""The log filter on the HTTP libraries' loggers: attached by the first client, not by an import."""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from urllib.parse import quote_plus

import pytest

from mailpartner_async import MailPartner
from mailpartner_async._core.secrets import Secret
from mailpartner_async._log_redaction import FILTERED_LOGGERS, _RedactAPIKey

URL = "https://api.mailpartner.fr/v1/message-cancel"
KEY = "k3y/w1th+odd&chars=and space"

# Run in a fresh interpreter: which loggers carry a filter, after each step.
IMPORT_THEN_CLIENT = """
import json, logging, sys

def filtered():
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    return sorted(
        logger.name for logger in loggers if isinstance(logger, logging.Logger) and logger.filters
    )

import mailpartner_async
from mailpartner_async import AsyncMailPartner, MailPartner
import mailpartner_async.cli, mailpartner_async.redis, mailpartner_async.testing
from mailpartner_async.testing import FakeMailPartner
import httpx, httpcore
after_import = filtered()

client = MailPartner("sk-Subprocess-0042")
after_client = filtered()
other = AsyncMailPartner("sk-Another-0043", http_client=httpx.AsyncClient())
after_second = filtered()

class Keep(logging.Handler):
    def emit(self, record):
        shown.append(record.getMessage())

shown = []
httpx_logger = logging.getLogger("httpx")
httpx_logger.addHandler(Keep())
httpx_logger.setLevel(logging.INFO)
httpx_logger.info("HTTP Request: GET %s %s", "/v1?apiKey=x", "sk-Subprocess-0042")
client.close()
print(json.dumps([after_import, after_client, after_second, shown]))
"""


def test_importing_the_package_attaches_no_filter_and_the_first_client_does() -> None:
    out = subprocess.run(  # noqa: S603 - our own interpreter on our own script
        [sys.executable, "-W", "error", "-c", IMPORT_THEN_CLIENT],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after_import, after_client, after_second, shown = json.loads(out)

    assert after_import == []
    assert after_client == sorted(FILTERED_LOGGERS)
    assert after_second == after_client  # once per logger, whatever the clients
    assert shown == ["HTTP Request: GET /v1?apiKey=[REDACTED] [REDACTED]"]


@pytest.mark.parametrize("logger_name", FILTERED_LOGGERS)
def test_once_a_client_exists_a_record_with_its_key_is_masked(
    logger_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=logger_name)
    client = MailPartner(KEY)

    logging.getLogger(logger_name).debug(
        "Location: %s?apiKey=%s&messageId=1, echoed %s", URL, quote_plus(KEY), KEY
    )

    [record] = caplog.records
    assert (
        record.getMessage() == f"Location: {URL}?apiKey=[REDACTED]&messageId=1, echoed [REDACTED]"
    )
    client.close()


def test_the_sdk_logger_carries_no_filter_its_records_are_built_redacted() -> None:
    MailPartner(KEY).close()
    assert logging.getLogger("mailpartner_async").filters == []
    assert logging.getLogger().filters == []


# --- the filter itself, a fresh one for each test ------------------------------------------


@pytest.fixture
def fresh_filter() -> Iterator[_RedactAPIKey]:
    log_filter = _RedactAPIKey()
    yield log_filter
    for name in FILTERED_LOGGERS:
        logging.getLogger(name).removeFilter(log_filter)


def _shown(log_filter: _RedactAPIKey, message: str) -> str:
    record = logging.LogRecord("httpx", logging.INFO, "f", 1, "%s", (message,), None)
    assert log_filter.filter(record) is True
    return record.getMessage()


def test_the_filter_leaves_a_record_without_args_once_it_masks(
    fresh_filter: _RedactAPIKey,
) -> None:
    record = logging.LogRecord("httpx", logging.INFO, "f", 1, "GET %s", ("/x?apiKey=abc",), None)
    assert fresh_filter.filter(record) is True
    assert (record.msg, record.args, record.getMessage()) == (
        "GET /x?apiKey=[REDACTED]",
        None,
        "GET /x?apiKey=[REDACTED]",
    )


def test_a_record_without_a_key_is_left_as_it_is(fresh_filter: _RedactAPIKey) -> None:
    record = logging.LogRecord("httpx", logging.INFO, "f", 1, "GET %s", ("/x?id=1",), None)
    assert fresh_filter.filter(record) is True
    assert (record.msg, record.args) == ("GET %s", ("/x?id=1",))


def test_the_filter_masks_a_key_while_its_holder_lives_then_forgets_it(
    fresh_filter: _RedactAPIKey,
) -> None:
    key = Secret("held-Key-0001")
    fresh_filter.protect(key)
    assert _shown(fresh_filter, "echo held-Key-0001") == "echo [REDACTED]"

    del key
    gc.collect()

    assert _shown(fresh_filter, "echo held-Key-0001") == "echo held-Key-0001"


def test_the_filter_masks_the_keys_of_every_live_client(fresh_filter: _RedactAPIKey) -> None:
    first, second = Secret("first-Key-0001"), Secret("second-Key-0002")
    fresh_filter.protect(first)
    fresh_filter.protect(second)
    fresh_filter.protect(None)  # a client without a key adds nothing

    assert _shown(fresh_filter, "first-Key-0001 second-Key-0002") == "[REDACTED] [REDACTED]"


def test_protect_attaches_the_filter_once_to_each_logger_from_many_threads(
    fresh_filter: _RedactAPIKey,
) -> None:
    keys = [Secret(f"thread-Key-{n:04}") for n in range(16)]
    start = threading.Barrier(len(keys))

    def protect(key: Secret) -> None:
        start.wait()
        fresh_filter.protect(key)

    threads = [threading.Thread(target=protect, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    counts = [logging.getLogger(name).filters.count(fresh_filter) for name in FILTERED_LOGGERS]
    assert counts == [1] * len(FILTERED_LOGGERS)
    assert fresh_filter not in logging.getLogger().filters
    shown = _shown(fresh_filter, " ".join(key.reveal() for key in keys))
    assert shown == " ".join(["[REDACTED]"] * len(keys))
