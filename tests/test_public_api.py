"""The public surface: one sorted re-export, every name real, the models' guarantees."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from types import ModuleType

import pydantic
import pytest

import mailpartner_async
import mailpartner_async.testing
from mailpartner_async import (
    CancelCode,
    CancelOutcome,
    CancelResult,
    MailPartnerError,
    MessageNotFoundError,
)

# Every name CONTRACT.md makes importable from the package root.
CONTRACT_NAMES = {
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AlreadyCancelledError",
    "AlreadySentError",
    "AsyncMailPartner",
    "AuthenticationError",
    "CancelCode",
    "CancelOutcome",
    "CancelResult",
    "CancellationTooLateError",
    "InvalidRequestError",
    "MailPartner",
    "MailPartnerError",
    "MessageNotFoundError",
    "RateLimitError",
    "UnexpectedResponseError",
}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def _private_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(mailpartner_async.__path__, "mailpartner_async.")
        if not info.ispkg and any(_is_private(part) for part in info.name.split(".")[1:])
    )


def test_root_all_is_sorted_without_duplicates() -> None:
    names = mailpartner_async.__all__

    assert names == sorted(names)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("name", mailpartner_async.__all__)
def test_every_exported_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from mailpartner_async import {name}", namespace)  # noqa: S102

    assert namespace[name] is getattr(mailpartner_async, name)


def test_contract_names_are_exported() -> None:
    assert set(mailpartner_async.__all__) >= CONTRACT_NAMES


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from mailpartner_async import *", namespace)  # noqa: S102

    assert set(namespace) - {"__builtins__"} == set(mailpartner_async.__all__)


@pytest.mark.parametrize("module_name", _private_modules())
def test_private_module_all_names_exist(module_name: str) -> None:
    module: ModuleType = importlib.import_module(module_name)
    names: list[str] = module.__all__

    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []
    assert len(set(names)) == len(names)


def test_every_private_module_the_package_loads_has_its_all_checked() -> None:
    loaded = {
        name
        for name, module in sys.modules.items()
        if name.startswith("mailpartner_async.")
        and not hasattr(module, "__path__")
        and any(_is_private(part) for part in name.split(".")[1:])
    }

    assert "mailpartner_async._core.secrets" in loaded
    assert loaded <= set(_private_modules())


# --- names loaded on first use ---------------------------------------------------------

LAZY_PACKAGES = [mailpartner_async, mailpartner_async.testing]


def _type_checking_imports(package: ModuleType) -> dict[str, str]:
    """What the package's ``if TYPE_CHECKING:`` block imports: name -> module."""
    tree = ast.parse(inspect.getsource(package))
    [block] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    return {
        alias.name: "." * node.level + (node.module or "")
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda package: package.__name__)
def test_each_lazy_name_is_imported_from_where_type_checkers_read_it(package: ModuleType) -> None:
    exports: dict[str, str] = package._EXPORTS

    assert exports == _type_checking_imports(package)
    assert set(exports) == set(package.__all__) - {"__version__"}
    assert set(package.__all__) <= set(dir(package))


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda package: package.__name__)
def test_an_unknown_name_is_an_attribute_error(package: ModuleType) -> None:
    with pytest.raises(AttributeError, match="has no attribute 'AsyncMailPartnr'"):
        _ = package.AsyncMailPartnr


# --- models ----------------------------------------------------------------------

RESULT = CancelResult(
    success=True, code=CancelCode.CANCELLED, message="ok", message_id="300", attempts=2
)


def test_cancel_results_compare_by_value_and_serve_as_keys() -> None:
    twin = CancelResult(
        success=True, code=CancelCode.CANCELLED, message="ok", message_id="300", attempts=2
    )
    retried = RESULT.model_copy(update={"attempts": 3})

    assert twin == RESULT
    assert {RESULT: "first", twin: "second"} == {RESULT: "second"}
    assert len({RESULT, twin, retried}) == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"code": 42},
        {"unexpected": "field"},
        {"message_id": None},
    ],
)
def test_cancel_result_validates_its_fields(fields: dict[str, object]) -> None:
    data: dict[str, object] = {
        "success": True,
        "code": 200,
        "message": "ok",
        "message_id": "300",
        **fields,
    }

    with pytest.raises(pydantic.ValidationError):
        CancelResult.model_validate(data)


def test_cancel_result_code_is_the_enum_member() -> None:
    result = CancelResult.model_validate(
        {"success": True, "code": 200, "message": "ok", "message_id": "300"}
    )

    assert result.code is CancelCode.CANCELLED
    assert result.attempts == 1


ERROR = MessageNotFoundError("Message not found", code=4, message_id="300")


@pytest.mark.parametrize(
    ("result", "error", "ok"),
    [(RESULT, None, True), (None, ERROR, False)],
)
def test_cancel_outcome_holds_a_result_or_an_error(
    result: CancelResult | None, error: MailPartnerError | None, ok: bool
) -> None:
    outcome = CancelOutcome(message_id="300", result=result, error=error)

    assert outcome.ok is ok
    assert outcome.result is result
    assert outcome.error is error


@pytest.mark.parametrize(("result", "error"), [(None, None), (RESULT, ERROR)])
def test_cancel_outcome_refuses_neither_or_both(
    result: CancelResult | None, error: MailPartnerError | None
) -> None:
    with pytest.raises(ValueError, match="exactly one of result or error"):
        CancelOutcome(message_id="300", result=result, error=error)


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda package: package.__name__)
def test_a_lazy_name_read_once_becomes_a_plain_attribute(package: ModuleType) -> None:
    name = sorted(package._EXPORTS)[0]

    value = getattr(package, name)

    assert vars(package)[name] is value
