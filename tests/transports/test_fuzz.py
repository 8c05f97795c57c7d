"""Hypothesis drives random answers through the real client over a socket.

Each example is one raw HTTP answer: a status line (valid or not), headers
(Content-Type, Content-Encoding, Content-Length right or wrong, Retry-After forms,
the key echoed), a body (API JSON with any code, positional XML, garbage, truncated,
the key) in some charset. The hostile server sends it for every request; the client
cancels with ``max_retries=0`` and then runs a batch of three ids. Invariants: only
``MailPartnerError`` escapes, a success only when the body really said code 200,
the key in no text (errors, logs, and every span and metric point, with aiohttp's
instrumentation on for aiohttp), one outcome per id. The same answers are also served
over real TLS in each TLS case (a trusted certificate, a CA not trusted, another host
name, an expired certificate, plain HTTP on the TLS port).

``HYPOTHESIS_PROFILE=ci`` (the default: few examples, derandomized) or ``fuzz``
(``nox -s fuzz``: many).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import os
import zlib
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpartner_async import (
    APIConnectionError,
    AsyncMailPartner,
    CancelOutcome,
    CancelResult,
    MailPartnerError,
    RetryPolicy,
)
from tests.support.hostile import HostileServer, raw
from tests.support.leaks import (
    Recorded,
    assert_key_absent,
    captured_logs,
    outcome_texts,
    texts_of,
)
from tests.support.tls import TLS_CASES, TLSServer, tls_server

KEY = "hostile-Key-0123456789"
BATCH = ["a", "b", "c"]

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@dataclasses.dataclass(frozen=True)
class Answer:
    """One raw answer, and whether its body, as framed, really carries code 200."""

    status_line: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    carries_200: bool

    def render(self) -> bytes:
        lines = [self.status_line, *(f"{name}: {value}" for name, value in self.headers)]
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("latin-1", errors="replace") + self.body


ECHOES = [KEY, quote(KEY, safe=""), f"apiKey={KEY}", f"?apiKey={quote(KEY, safe='')}&x=1"]
texts = st.sampled_from(["ok", "Le courriel a été annulé", "", "\x00\u2028", *ECHOES]) | st.text(
    max_size=20
)
codes = st.just(200) | st.sampled_from([1, 3, 4, 5, 6, 7, 10, 429]) | st.integers(-3, 1000)

VALID_STATUSES = [200, 200, 200, 201, 204, 301, 302, 400, 404, 429, 500, 502, 503]
MALFORMED_STATUS_LINES = [
    f"HTTP/1.1 2x0 {KEY}",
    "HTTP/1.1  200 OK",
    "HTTP/2 200 OK",
    "HTTP/1.1 -200 OK",
    "HTTP/1.1 99999 OK",
    "ICY 200 OK",
    f"{KEY}",
    "",
]


@st.composite
def status_lines(draw: st.DrawFn) -> tuple[str, bool]:
    """A status line and whether it is valid."""
    if draw(st.integers(0, 3)):  # mostly valid, so that honest answers are explored
        status = draw(st.sampled_from(VALID_STATUSES))
        if draw(st.integers(0, 9)) == 0:
            # No reason phrase, not even its space: every HTTP library here accepts it,
            # so the body decides, as with any status line.
            return f"HTTP/1.1 {status}", True
        return f"HTTP/1.1 {status} {draw(st.sampled_from(['OK', 'Whatever', *ECHOES]))}", True
    return draw(st.sampled_from(MALFORMED_STATUS_LINES)), False


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str, bool]:
    """A body, the charset it is in, and whether it carries code 200."""
    kind = draw(
        st.sampled_from(["json"] * 3 + ["xml"] * 2 + ["garbage", "truncated", "key", "empty"])
    )
    charset = draw(st.sampled_from(["utf-8", "iso-8859-1", "utf-16"]))
    code, message = draw(codes), draw(texts)
    if kind in ("json", "truncated"):
        document: dict[str, object] = {"success": code == 200, "code": code, "message": message}
        if draw(st.booleans()):
            document["errors"] = [{"elementId": 1, "message": {"deep": [KEY]}}, [KEY], 42]
        data = json.dumps(document, ensure_ascii=draw(st.booleans()))
        encoded = data.encode(charset, errors="replace")
        if kind == "truncated":
            return encoded[: len(encoded) // 2], charset, False
        return encoded, charset, code == 200
    if kind == "xml":
        cdata = message.replace("]]>", "")
        document_text = (
            f'<?xml version="1.0" encoding="{charset}"?>\n<result><entry>'
            f"{'true' if code == 200 else 'false'}</entry><entry>{code}</entry>"
            f"<entry><![CDATA[{cdata}]]></entry></result>"
        )
        return document_text.encode(charset, errors="replace"), charset, code == 200
    if kind == "garbage":
        return draw(st.binary(max_size=200)), charset, False
    if kind == "key":
        return draw(st.sampled_from(ECHOES)).encode(), charset, False
    return b"", charset, False


CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset={charset}",
    "application/xml; charset={charset}",
    "text/html",
    "text/plain; charset=bogus",
    "application/problem+json",
]
RETRY_AFTERS = ["0", "1", "-1", "abc", "1e9", "99999999999999", "Wed, 21 Oct 2015 07:28:00 GMT"]


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    status_line, status_valid = draw(status_lines())
    body, charset, carries_200 = draw(bodies())
    headers: list[tuple[str, str]] = []
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None:
        headers.append(("Content-Type", content_type.format(charset=charset)))
    encoding = draw(st.sampled_from([None] * 4 + ["identity", "gzip", "gzip-lie", "deflate-lie"]))
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "deflate-lie":
        body = zlib.compress(body)[:-3] if body else b"x"
    if encoding is not None:
        headers.append(("Content-Encoding", encoding.removesuffix("-lie")))
        carries_200 = carries_200 and not encoding.endswith("-lie")
    framing = draw(
        st.sampled_from(["right"] * 3 + ["none", "chunked", "more", "less", "abc", "duplicate"])
    )
    body, framing_ok = _frame(body, framing, headers)
    if draw(st.booleans()):
        headers.append(("Retry-After", draw(st.sampled_from(RETRY_AFTERS))))
    if draw(st.booleans()):
        headers.append((draw(st.sampled_from(["X-Echo", "Set-Cookie", "Location"])), KEY))
    headers.append(("Connection", "close"))
    return Answer(status_line, tuple(headers), body, carries_200 and status_valid and framing_ok)


def _frame(body: bytes, framing: str, headers: list[tuple[str, str]]) -> tuple[bytes, bool]:
    """The body as framed, and whether that framing is honest."""
    if framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
        return framed + b"0\r\n\r\n", True
    lengths = {
        "right": [str(len(body))],
        "more": [str(len(body) + 5)],
        "less": [str(max(len(body) - 5, 0))],
        "none": [],
        "abc": ["abc"],
        "duplicate": [str(len(body)), str(len(body) + 1)],
    }[framing]
    headers.extend(("Content-Length", length) for length in lengths)
    return body, framing in ("right", "none") or (framing == "less" and len(body) == 0)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[HostileServer]:
    """One hostile server for every example (a function-scoped one would be shared anyway)."""
    with HostileServer() as server:
        yield server
    assert not server.errors, f"the hostile server failed: {server.errors!r}"


def check_outcome(outcome: object, answer: Answer) -> None:
    if isinstance(outcome, CancelResult):
        assert answer.carries_200, f"false success {outcome!r} from {answer!r}"
        assert int(outcome.code) == 200
    else:
        assert isinstance(outcome, MailPartnerError), outcome


async def serve_example(
    base_url: str, transport: str, recorded: Recorded
) -> tuple[object, list[CancelOutcome]]:
    """One cancel and one batch, traced into ``recorded``. Kept apart from the test so
    that no frame an error passes through holds the example (which may echo the key)
    as a local."""
    async with AsyncMailPartner(
        KEY,
        base_url=base_url,
        transport=transport,  # type: ignore[arg-type]
        rate_limit=None,
        max_retries=0,
        timeout=1.0,
        retry_policy=RetryPolicy(initial_delay=0.01, max_delay=0.02),
        **recorded.options(),
    ) as client:
        try:
            outcome: object = await client.cancel("1")
        except MailPartnerError as exc:
            outcome = exc
        return outcome, await client.cancel_many(BATCH)


@pytest.mark.anyio
@given(answer=answers())
async def test_any_answer_gives_a_mailpartner_outcome_without_the_key(
    fuzz_server: HostileServer, client_transport: str, answer: Answer
) -> None:
    fuzz_server.default = raw(answer.render(), name="fuzzed")
    recorded = Recorded()
    with captured_logs() as logs, recorded.instrumented(client_transport):
        outcome, outcomes = await serve_example(fuzz_server.base_url, client_transport, recorded)

    check_outcome(outcome, answer)
    assert [o.message_id for o in outcomes] == BATCH
    for each in outcomes:
        check_outcome(each.result or each.error, answer)
    assert_key_absent(KEY, [*texts_of(outcome), *outcome_texts(outcomes), *logs, *recorded.texts()])
    recorded.shutdown()


# --- the same answers over TLS, in each TLS case of issue 20, item 9 ------------------


@pytest.fixture(scope="module")
def tls_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TLSServer]]:
    """One server per TLS case, for every example; the client trusts ``ca`` through
    ``$SSL_CERT_FILE`` (module-wide), and ``untrusted-ca`` is served by another CA."""
    ca, stranger = trustme.CA(), trustme.CA()
    cafile = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as stack:
        patch.setenv("SSL_CERT_FILE", str(cafile))
        patch.delenv("SSL_CERT_DIR", raising=False)
        servers = {
            case: stack.enter_context(tls_server(stranger if case == "untrusted-ca" else ca, case))
            for case in TLS_CASES
        }
        yield servers


@pytest.mark.anyio
@given(answer=answers(), case=st.sampled_from(TLS_CASES))
async def test_any_answer_in_any_tls_case_gives_a_mailpartner_outcome_without_the_key(
    tls_servers: dict[str, TLSServer], client_transport: str, answer: Answer, case: str
) -> None:
    server = tls_servers[case]
    server.answer = answer.render()
    recorded = Recorded()
    with captured_logs() as logs, recorded.instrumented(client_transport):
        outcome, outcomes = await serve_example(server.base_url, client_transport, recorded)

    if case == "ok":
        check_outcome(outcome, answer)
    else:  # refused before any byte of the answer is read
        assert isinstance(outcome, APIConnectionError), outcome
        assert outcome.transient is False
    assert [o.message_id for o in outcomes] == BATCH
    for each in outcomes:
        check_outcome(each.result or each.error, answer)
    assert_key_absent(KEY, [*texts_of(outcome), *outcome_texts(outcomes), *logs, *recorded.texts()])
    recorded.shutdown()
