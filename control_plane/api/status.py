"""control_plane.errors <-> gRPC status, the same mapping on both ends of the wire.

Each :class:`~control_plane.errors.CpError` subclass names its status code in
``code``; the details carry ``str(error)`` ("field: message") for people, and
the trailing metadata carries the field and the UPF's PFCP Cause for programs,
so the client rebuilds the very error the procedure raised.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar, cast

import grpc
import grpc.aio

from control_plane import errors
from control_plane.errors import CpError, UpfRejected

__all__ = ["FIELD_KEY", "UPF_CAUSE_KEY", "abort_internal", "abort_with", "answer", "error_class", "error_from_rpc"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Trailing metadata key: the request field at fault, as a dotted path.
FIELD_KEY = "edgecups-field"
#: Trailing metadata key: the PFCP Cause value of an UpfRejected (TS 29.244 Table 8.2.1-1).
UPF_CAUSE_KEY = "edgecups-upf-cause"


def _by_code() -> dict[grpc.StatusCode, type[CpError]]:
    table: dict[grpc.StatusCode, type[CpError]] = {}
    for name in errors.__all__:
        cls = getattr(errors, name)
        if cls is CpError:
            continue
        code = grpc.StatusCode[cls.code]
        if code in table:
            # Two classes on one code could not be told apart by the client.
            raise RuntimeError(f"{cls.__name__} and {table[code].__name__} both map to {code.name}")
        table[code] = cls
    return table


_BY_CODE = _by_code()


def error_class(code: grpc.StatusCode) -> type[CpError]:
    """The error class a status code stands for; CpError itself for codes no procedure raises."""
    return _BY_CODE.get(code, CpError)


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: CpError) -> NoReturn:
    """End the call with ``error``'s status code, its text in the details and its field in the trailers."""
    trailers: list[tuple[str, str]] = []
    if error.field is not None:
        trailers.append((FIELD_KEY, error.field))
    if isinstance(error, UpfRejected):
        trailers.append((UPF_CAUSE_KEY, str(error.cause)))
    await context.abort(grpc.StatusCode[error.code], str(error), trailing_metadata=tuple(trailers))


async def abort_internal(context: grpc.aio.ServicerContext[Any, Any], method: str) -> NoReturn:
    """End the call with INTERNAL after a bug: logged here, not leaked to the caller."""
    log.exception("%s failed", method)
    await context.abort(grpc.StatusCode.INTERNAL, f"{method} failed inside the control plane; see its log")


async def answer(context: grpc.aio.ServicerContext[Any, Any], method: str, call: Callable[[], Awaitable[_T]]) -> _T:
    """``await call()`` for a servicer method: a CpError becomes its status, anything else INTERNAL.

    ``call`` parses the request too, so a validation error takes the same path as a procedure's.
    """
    try:
        return await call()
    except CpError as error:
        await abort_with(context, error)
    except Exception:
        await abort_internal(context, method)


def error_from_rpc(error: grpc.aio.AioRpcError) -> CpError:
    """The control_plane.errors instance a failed call stands for (as raised by the procedure)."""
    code: grpc.StatusCode = error.code()
    details: str = error.details() or code.name
    # grpc-stubs types these trailers as grpc._Metadatum objects; grpc.aio returns an aio.Metadata of pairs.
    metadata = cast("grpc.aio.Metadata | None", error.trailing_metadata())
    trailers = {key: value for key, value in (metadata or ()) if isinstance(value, str)}
    field = trailers.get(FIELD_KEY)
    message = details.removeprefix(f"{field}: ") if field is not None else details
    cls = error_class(code)
    if cls is UpfRejected:
        cause = trailers.get(UPF_CAUSE_KEY, "")
        return UpfRejected(message, cause=int(cause) if cause.isdigit() else 0, field=field)
    return cls(message, field=field)
