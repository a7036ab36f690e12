"""Provisioning of sites, UPFs, DNNs, pools, policies and subscribers, and what Status and Watch read.

:class:`~control_plane.provisioning.service.Provisioning` is the service the northbound
API calls; :mod:`.tables` and :mod:`.checks` are its database operations.
"""

from .objects import Change, FieldChange, ObjectView, Resource
from .service import Provisioning

__all__ = ["Change", "FieldChange", "ObjectView", "Provisioning", "Resource"]
