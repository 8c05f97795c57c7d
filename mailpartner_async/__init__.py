"""mailpartner-async: cancel scheduled emails on the Mail Partner API, async-first.

Example::

    from mailpartner_async import AsyncMailPartner

    async with AsyncMailPartner() as client:  # key from $MAILPARTNER_API_KEY
        result = await client.cancel("300")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__

if TYPE_CHECKING:
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
    from ._core.models import (
        BatchProgress,
        CancelCode,
        CancelOutcome,
        CancelResult,
        ScheduledMessage,
    )
    from ._core.rescue import RescuePlan, plan_rescue
    from ._core.response import ResponseInfo
    from ._core.settings import RetryPolicy
    from ._journal import Journal, JournalTarget
    from ._sync.batch import Batch
    from ._sync.client import MailPartner
    from ._telemetry import AttemptHook, AttemptInfo

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

# Where each name lives, imported on first use (PEP 562): importing the package loads
# no engine, no HTTP library, no event loop. pytest imports it, the parent of the
# plugin, in every run of every project that installs the SDK.
_EXPORTS: dict[str, str] = {
    "APIConnectionError": "._core.errors",
    "APIError": "._core.errors",
    "APITimeoutError": "._core.errors",
    "AlreadyCancelledError": "._core.errors",
    "AlreadySentError": "._core.errors",
    "AsyncBatch": "._async.batch",
    "AsyncMailPartner": "._async.client",
    "AttemptHook": "._telemetry",
    "AttemptInfo": "._telemetry",
    "AuthenticationError": "._core.errors",
    "Batch": "._sync.batch",
    "BatchError": "._core.errors",
    "BatchProgress": "._core.models",
    "CancelCode": "._core.models",
    "CancelOutcome": "._core.models",
    "CancelResult": "._core.models",
    "CancellationTooLateError": "._core.errors",
    "ConfigurationError": "._core.errors",
    "IdsSourceError": "._core.errors",
    "InvalidRequestError": "._core.errors",
    "Journal": "._journal",
    "JournalTarget": "._journal",
    "MailPartner": "._sync.client",
    "MailPartnerError": "._core.errors",
    "MessageNotFoundError": "._core.errors",
    "RateLimitError": "._core.errors",
    "RescuePlan": "._core.rescue",
    "ResponseInfo": "._core.response",
    "RetryPolicy": "._core.settings",
    "ScheduledMessage": "._core.models",
    "UnexpectedResponseError": "._core.errors",
    "plan_rescue": "._core.rescue",
}

if not TYPE_CHECKING:  # type checkers read the imports above
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
