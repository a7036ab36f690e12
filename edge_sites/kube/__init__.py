"""Kubernetes deployment from the site manifests: ``edgecups deploy render -f sites/ -o out/``.

The same manifests operators apply to the API (``edgecups apply``) give a Kustomize tree: a
base (control plane, its migration Job, database, MQTT broker, monitoring) and one overlay per
site (that site's UPF CNFs). Pure data in, plain objects out: nothing here imports the control
plane or the user plane; the agent configuration it generates is plain data in the agent's
format (the tests load it with user_plane.config). See deploy/README.md.
"""

from .objects import RenderError
from .render import MARKER, Rendered, default_deploy_dir, render, write
from .settings import CNI_TYPES, RenderOptions, Settings, SiteSettings, UpfSettings, parse_settings

__all__ = [
    "CNI_TYPES",
    "MARKER",
    "RenderError",
    "RenderOptions",
    "Rendered",
    "Settings",
    "SiteSettings",
    "UpfSettings",
    "default_deploy_dir",
    "parse_settings",
    "render",
    "write",
]
