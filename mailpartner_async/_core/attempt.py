"""What an attempt's failure means, whatever the HTTP library.

Each transport reads two facts off its own library's exception (whether the request
may have reached the server, and whether a time-out ended it); the functions here
turn those facts, or their absence, into the SDK's errors, and settle an attempt.
"""

from __future__ import annotations

from .errors import APIConnectionError, APITimeoutError, MailPartnerError
from .protocol import RawResponse

__all__ = ["attempt_failure", "deadline_passed", "settled", "transport_error"]


def transport_error(
    name: str,
    detail: str,
    *,
    message_id: str,
    sent: bool,
    timed_out: bool,
    tls: str | None = None,
    source: str | None = None,
    refused: str = "",
) -> APIConnectionError:
    """Our error for a transport failure of class ``name`` whose (redacted) text is
    ``detail``: an ``APITimeoutError`` when a time-out ended it.

    Three failures are not transient, and not retried: ``source`` says why the
    connection could not leave from the client's ``local_address``; ``refused`` why
    the answer's framing was refused (:mod:`.framing`: the server answered, so the
    request reached it, and it would frame its next answer the same way); ``tls``
    what TLS refused."""
    final: tuple[str, bool] | None = None
    if source is not None:
        final = f"the connection could not leave from local_address: {source}", False
    elif refused:
        final = f"the answer was refused: {refused}", True
    elif tls is not None:
        final = f"TLS refused the connection: {tls}", sent
    if final is not None:
        why, reached = final
        return APIConnectionError(
            f"{why}; not retried ({name}: {detail})",
            message_id=message_id,
            request_sent=reached,
            transient=False,
        )
    if timed_out:
        return APITimeoutError(
            f"request timed out ({name}: {detail})", message_id=message_id, request_sent=sent
        )
    return APIConnectionError(
        f"request failed ({name}: {detail})", message_id=message_id, request_sent=sent
    )


def attempt_failure(
    exc: Exception,
    mapped: MailPartnerError | None,
    *,
    message_id: str,
    closed: bool,
    stopped: bool = False,
) -> MailPartnerError:
    """What an attempt that raised ``exc`` fails with.

    The batch having stopped meanwhile (its stop shuts the attempt's connection, on
    the SDK's own transport), an error saying so: whatever the library raised then
    is only the echo of that.
    Else ``mapped``, the transport failure as our error; else, the client having been
    closed meanwhile, an error saying so; else ``exc`` itself is raised again (a bug,
    which the batch still turns into that id's outcome).
    """
    if stopped:
        return APIConnectionError(
            "the batch stopped while this attempt was in flight",
            message_id=message_id,
            request_sent=True,
        )
    if mapped is not None:
        return mapped
    if closed:
        return MailPartnerError(
            "the client was closed while this call was in flight", message_id=message_id
        )
    raise exc


def deadline_passed(
    failure: MailPartnerError | None,
    *,
    message_id: str,
    deadline: float | None,
    request_sent: bool = True,
) -> MailPartnerError:
    """``failure``, or, when there is none, the error of an attempt its deadline ended:
    the request may have reached the server, unless the transport knows that not a
    byte of it was written (``request_sent=False``: the deadline came while the
    connection was being opened)."""
    if failure is not None:
        return failure
    return APITimeoutError(
        f"the attempt took longer than its time-out ({deadline} s)",
        message_id=message_id,
        request_sent=request_sent,
    )


def settled(raw: RawResponse | None, failure: MailPartnerError | None) -> RawResponse:
    """The answer of an attempt, or its failure raised (here, outside any ``except``:
    nothing of the HTTP library is chained to it)."""
    if failure is not None:
        raise failure
    assert raw is not None
    return raw
