"""Request handlers per VPP API module; :data:`HANDLERS` maps a request name to its handler."""

from __future__ import annotations

from tests.vpp_emulator.handlers import acl, gtpu, interface, ip, memif, policer
from tests.vpp_emulator.model import Handler

HANDLERS: dict[str, Handler] = {
    **interface.HANDLERS,
    **ip.HANDLERS,
    **gtpu.HANDLERS,
    **policer.HANDLERS,
    **acl.HANDLERS,
    **memif.HANDLERS,
}
