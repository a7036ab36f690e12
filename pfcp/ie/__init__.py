"""Information Elements of TS 29.244 §8: one class per IE type.

Importing this package fills :data:`IE_CLASSES` for every type of Table
8.1.2-1: the typed classes of the family modules, and an opaque class (payload
kept as bytes) for each remaining type.
"""

from __future__ import annotations

from ..constants import IEType
from .addressing import *  # noqa: F403
from .addressing import __all__ as _addressing
from .base import (
    IE,
    IE_CLASSES,
    FieldSpec,
    GroupedIE,
    OpaqueIE,
    Presence,
    RawIE,
    UnknownIE,
    VendorIE,
    decode_ie,
    opaque_class,
)
from .ids import *  # noqa: F403
from .ids import __all__ as _ids
from .node import *  # noqa: F403
from .node import __all__ as _node
from .reporting import *  # noqa: F403
from .reporting import __all__ as _reporting
from .rules import *  # noqa: F403
from .rules import __all__ as _rules
from .values import *  # noqa: F403
from .values import __all__ as _values

for _type in IEType:
    if _type not in IE_CLASSES:
        opaque_class(_type)

__all__ = [
    "IE",
    "IE_CLASSES",
    "FieldSpec",
    "GroupedIE",
    "OpaqueIE",
    "Presence",
    "RawIE",
    "UnknownIE",
    "VendorIE",
    "decode_ie",
    "opaque_ie_class",
    *_addressing,
    *_ids,
    *_node,
    *_reporting,
    *_rules,
    *_values,
]


def opaque_ie_class(ie_type: IEType) -> type[IE]:
    """The class registered for ``ie_type`` (typed or opaque)."""
    return IE_CLASSES[ie_type]
