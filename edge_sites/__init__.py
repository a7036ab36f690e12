"""Declarative edge-site provisioning: YAML manifests of Site, UPF, DNN, Pool, Policy and Subscriber objects.

Pure Python (PyYAML and the standard library): the control plane imports this package,
never the other way round. See README.md for the manifest format.
"""

from .diff import Change, FieldChange, plan, render_plan
from .manifests import Manifest, ManifestError, load_manifests, order
from .schema import API_VERSION, FIELDS, KINDS, SchemaError, to_document, validate_name, validate_object

__all__ = [
    "API_VERSION",
    "FIELDS",
    "KINDS",
    "Change",
    "FieldChange",
    "Manifest",
    "ManifestError",
    "SchemaError",
    "load_manifests",
    "order",
    "plan",
    "render_plan",
    "to_document",
    "validate_name",
    "validate_object",
]
