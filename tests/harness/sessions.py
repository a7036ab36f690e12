"""PFCP session requests for user-plane tests: one place that builds the usual rules.

A "basic" session is what an SMF installs for one PDU session on one UPF (TS 23.502 §4.3.2):

* PDR 1 (uplink): Source Interface Access, local F-TEID (fixed or CH), the UE IP as source,
  Outer Header Removal GTP-U/UDP/IPv4, FAR 1, QER 1, URR 1.
* PDR 2 (downlink): Source Interface Core, the UE IP as destination, FAR 2, QER 1, URR 1.
* FAR 1: FORW to Core in the Network Instance; FAR 2: FORW to Access with Outer Header
  Creation GTP-U/UDP/IPv4 towards the gNB's F-TEID (or BUFF with NOCP and BAR 1, for paging).
* QER 1: gates open, optional MBR, QFI; URR 1: volume and duration, optional threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

import pfcp

A = pfcp.ApplyActionFlags
SRC = pfcp.SourceInterfaceValue
DST = pfcp.DestinationInterfaceValue
OHC = pfcp.OuterHeaderCreationDescription
CP_N4 = IPv4Address("198.18.0.1")
UPF_N3 = IPv4Address("198.18.1.1")


@dataclass(frozen=True)
class BasicSession:
    """What distinguishes one basic session from another."""

    cp_seid: int
    ue: IPv4Address
    gnb: IPv4Address
    gnb_teid: int
    cp_address: IPv4Address = CP_N4
    #: Local uplink TEID chosen by the CP (CH=0); None lets the UPF choose (CH=1, CHID 1).
    ul_teid: int | None = None
    n3: IPv4Address = UPF_N3
    network_instance: str = "internet"
    qfi: int | None = 9
    #: MBR per direction in kbit/s (§8.2.8); None: no rate limit.
    mbr_kbps: tuple[int, int] | None = None
    #: Volume threshold in octets (total); None: no VOLTH trigger.
    volume_threshold: int | None = None
    #: FAR 2 buffers (BUFF + NOCP) instead of forwarding: the UE is idle.
    buffering: bool = False
    sdf: str | None = None

    def cp_f_seid(self) -> pfcp.FSEID:
        return pfcp.FSEID(seid=self.cp_seid, ipv4=self.cp_address)

    def ohc(self, teid: int | None = None, gnb: IPv4Address | None = None) -> pfcp.OuterHeaderCreation:
        return pfcp.OuterHeaderCreation(OHC.GTPU_UDP_IPV4, teid=teid or self.gnb_teid, ipv4=gnb or self.gnb)

    def establishment(self, node_id: pfcp.NodeID) -> pfcp.SessionEstablishmentRequest:
        ni = pfcp.NetworkInstance(self.network_instance)
        if self.ul_teid is None:
            fteid = pfcp.FTEID(choose_v4=True, choose_id=1)
        else:
            fteid = pfcp.FTEID(teid=self.ul_teid, ipv4=self.n3)
        uplink = pfcp.CreatePDR(
            pdr_id=pfcp.PDRID(1),
            precedence=pfcp.Precedence(100),
            pdi=pfcp.PDI(
                source_interface=pfcp.SourceInterface(SRC.ACCESS),
                local_f_teid=fteid,
                network_instance=ni,
                ue_ip_address=(pfcp.UEIPAddress(ipv4=self.ue),),
                qfi=() if self.qfi is None else (pfcp.QFI(self.qfi),),
                sdf_filter=() if self.sdf is None else (pfcp.SDFFilter(flow_description=self.sdf),),
            ),
            outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
            far_id=pfcp.FARID(1),
            qer_id=(pfcp.QERID(1),),
            urr_id=(pfcp.URRID(1),),
        )
        downlink = pfcp.CreatePDR(
            pdr_id=pfcp.PDRID(2),
            precedence=pfcp.Precedence(100),
            pdi=pfcp.PDI(
                source_interface=pfcp.SourceInterface(SRC.CORE),
                network_instance=ni,
                ue_ip_address=(pfcp.UEIPAddress(ipv4=self.ue, is_destination=True),),
            ),
            far_id=pfcp.FARID(2),
            qer_id=(pfcp.QERID(1),),
            urr_id=(pfcp.URRID(1),),
        )
        to_core = pfcp.CreateFAR(
            far_id=pfcp.FARID(1),
            apply_action=pfcp.ApplyAction(A.FORW),
            forwarding_parameters=pfcp.ForwardingParameters(
                destination_interface=pfcp.DestinationInterface(DST.CORE), network_instance=ni
            ),
        )
        if self.buffering:
            to_access = pfcp.CreateFAR(
                far_id=pfcp.FARID(2), apply_action=pfcp.ApplyAction(A.BUFF | A.NOCP), bar_id=pfcp.BARID(1)
            )
        else:
            to_access = pfcp.CreateFAR(
                far_id=pfcp.FARID(2),
                apply_action=pfcp.ApplyAction(A.FORW),
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(DST.ACCESS),
                    network_instance=ni,
                    outer_header_creation=self.ohc(),
                ),
            )
        qer = pfcp.CreateQER(
            qer_id=pfcp.QERID(1),
            gate_status=pfcp.GateStatus(pfcp.Gate.OPEN, pfcp.Gate.OPEN),
            mbr=None if self.mbr_kbps is None else pfcp.MBR(*self.mbr_kbps),
            qfi=None if self.qfi is None else pfcp.QFI(self.qfi),
        )
        triggers = pfcp.ReportingTriggersFlags(0)
        if self.volume_threshold is not None:
            triggers |= pfcp.ReportingTriggersFlags.VOLTH
        urr = pfcp.CreateURR(
            urr_id=pfcp.URRID(1),
            measurement_method=pfcp.MeasurementMethod(
                pfcp.MeasurementMethodFlags.VOLUM | pfcp.MeasurementMethodFlags.DURAT
            ),
            reporting_triggers=pfcp.ReportingTriggers(triggers),
            volume_threshold=None
            if self.volume_threshold is None
            else pfcp.VolumeThreshold(total=self.volume_threshold),
            # packet counts in the reports too (§8.2.68 MNOP)
            measurement_information=pfcp.MeasurementInformation(pfcp.MeasurementInformationFlags.MNOP),
        )
        return pfcp.SessionEstablishmentRequest(
            node_id=node_id,
            cp_f_seid=self.cp_f_seid(),
            create_pdr=(uplink, downlink),
            create_far=(to_core, to_access),
            create_qer=(qer,),
            create_urr=(urr,),
            create_bar=pfcp.CreateBAR(bar_id=pfcp.BARID(1)) if self.buffering else None,
        )

    def forward_downlink(self, up_seid: int, teid: int | None = None) -> pfcp.SessionModificationRequest:
        """FAR 2 becomes FORW towards the gNB (the UE answered paging; §5.2.3.1 releases the buffer)."""
        return pfcp.SessionModificationRequest(
            seid=up_seid,
            update_far=(
                pfcp.UpdateFAR(
                    far_id=pfcp.FARID(2),
                    apply_action=pfcp.ApplyAction(A.FORW),
                    update_forwarding_parameters=pfcp.UpdateForwardingParameters(
                        destination_interface=pfcp.DestinationInterface(DST.ACCESS),
                        network_instance=pfcp.NetworkInstance(self.network_instance),
                        outer_header_creation=self.ohc(teid),
                    ),
                ),
            ),
        )


def up_seid_of(response: pfcp.SessionEstablishmentResponse) -> int:
    """The UP F-SEID's SEID of an accepted establishment."""
    assert response.up_f_seid is not None, response
    return response.up_f_seid.seid


def uplink_teid_of(response: pfcp.SessionEstablishmentResponse, session: BasicSession) -> int:
    """The uplink TEID in force: the CP's, or the one the UPF chose (Created PDR, §7.5.3.2)."""
    if session.ul_teid is not None:
        return session.ul_teid
    created = {c.pdr_id.value: c for c in response.created_pdr}
    fteid = created[1].local_f_teid
    assert fteid is not None and fteid.teid is not None, response
    return fteid.teid
