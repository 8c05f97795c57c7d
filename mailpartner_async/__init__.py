"""mailpartner-async: cancel scheduled emails on the Mail Partner API, async-first.

Example::

    from mailpartner_async import AsyncMailPartner

    async with AsyncMailPartner() as client:  # key from $MAILPARTNER_API_KEY
        result = await client.cancel("300")
"""

from ._async.batch import AsyncBatch
from ._async.client import AsyncMailPartner
from ._core.errors import (
    AlreadyCancelledError,
    AlreadySentError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BatchError,
    CancellationTooLateError,
    ConfigurationError,
    IdsSourceError,
    InvalidRequestError,
    MailPartnerError,
    MessageNotFoundError,
    RateLimitError,
    UnexpectedResponseError,
)
from ._core.models import BatchProgress, CancelCode, CancelOutcome, CancelResult, ScheduledMessage
from ._core.rescue import RescuePlan, plan_rescue
from ._core.response import ResponseInfo
from ._core.settings import RetryPolicy
from ._journal import Journal, JournalTarget
from ._sync.batch import Batch
from ._sync.client import MailPartner
from ._telemetry import AttemptHook, AttemptInfo
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AlreadyCancelledError",
    "AlreadySentError",
    "AsyncBatch",
    "AsyncMailPartner",
    "AttemptHook",
    "AttemptInfo",
    "AuthenticationError",
    "Batch",
    "BatchError",
    "BatchProgress",
    "CancelCode",
    "CancelOutcome",
    "CancelResult",
    "CancellationTooLateError",
    "ConfigurationError",
    "IdsSourceError",
    "InvalidRequestError",
    "Journal",
    "JournalTarget",
    "MailPartner",
    "MailPartnerError",
    "MessageNotFoundError",
    "RateLimitError",
    "RescuePlan",
    "ResponseInfo",
    "RetryPolicy",
    "ScheduledMessage",
    "UnexpectedResponseError",
    "__version__",
    "plan_rescue",
]
