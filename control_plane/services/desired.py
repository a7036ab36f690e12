"""A session's desired rules, from its row and the provisioned policy.

The rules are a function of the session's facts (UE IP, F-TEIDs, gNB) and its
policy, so every procedure (establish, modify, restore) derives them the same way;
the database keeps the result so that what the UPF was asked to hold is on record
even after the policy changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..domain.rules import RuleContext, SessionRules, build_rules
from ..inventory import Inventory, PolicyRecord, UpfRecord
from ..n4.build import PeerProfile

__all__ = ["cp_allocates_teid", "desired_rules", "peer_profile"]


def cp_allocates_teid(upf: UpfRecord) -> bool:
    """The CP allocates the N3 F-TEID unless the UPF is set to and can (FTUP, §5.5.3).

    CP-allocated F-TEIDs survive a UPF restart unchanged, so the gNB's tunnel stays
    valid when sessions are restored; the default for that reason.
    """
    return not peer_profile(upf).choose_teid


def desired_rules(inventory: Inventory, upf: UpfRecord, policy: PolicyRecord, row: Mapping[str, Any]) -> SessionRules:
    n3_teid = row.get("n3_teid")
    n3_address = row.get("n3_address")
    n3_fteid = None
    if cp_allocates_teid(upf) and n3_teid is not None and n3_address is not None:
        n3_fteid = (int(n3_teid), str(n3_address))
    return build_rules(
        RuleContext(
            ue_ipv4=row.get("ue_ipv4"),
            ue_ipv6=row.get("ue_ipv6"),
            qfi=policy.qfi,
            qfi_in_pdi=policy.qfi_in_pdi,
            mbr=(policy.ambr_ul_kbps, policy.ambr_dl_kbps),
            volume_threshold=policy.volume_threshold,
            time_threshold=policy.time_threshold,
            dnn_network_instance=inventory.dnn_instances.get(row["dnn"], row["dnn"]),
            access_network_instance=upf.access_network_instance,
            n3_fteid=n3_fteid,
            gnb_teid=row.get("gnb_teid"),
            gnb_address=row.get("gnb_address"),
            # Local breakout only where the session is anchored at an edge site.
            edge_rules=policy.edge_rules if upf.site_kind == "edge" else (),
        )
    )


def peer_profile(upf: UpfRecord) -> PeerProfile:
    return PeerProfile(node_id=upf.node_id, features=upf.features, teid_allocation=upf.teid_allocation)
