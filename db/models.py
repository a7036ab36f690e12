"""The control plane's tables (SQLAlchemy 2 typed models).

Column names are the contract with the control plane (see issue 5). Uniqueness that protects an
allocation (UE IP per DNN, N3 TEID per UPF, CP SEID) is a database constraint, so a wrong allocator
can never hand the same resource to two sessions. Python ints are ``INTEGER``; identifiers that
are 32 or 64 bits on the wire (SEIDs, TEIDs) and byte counters are ``BigInteger``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, StrEnumType, utcnow

__all__ = [
    "AdminState",
    "ControlPlaneNode",
    "Dnn",
    "EdgeRule",
    "Event",
    "Health",
    "IpPool",
    "Policy",
    "RuleKind",
    "Session",
    "SessionRule",
    "SessionState",
    "Site",
    "SiteKind",
    "StaleSession",
    "Subscriber",
    "TeidAllocation",
    "Upf",
    "UsageRecord",
]


class SessionState(enum.StrEnum):
    ESTABLISHING = "establishing"  # desired state persisted, PFCP Establishment not yet confirmed
    ACTIVE = "active"  # the UPF confirmed it
    MODIFYING = "modifying"
    DELETING = "deleting"
    LOST = "lost"  # its UPF is lost or unreachable; kept in the database
    RESTORING = "restoring"  # being re-established after a UPF restart, or on another UPF


class SiteKind(enum.StrEnum):
    EDGE = "edge"
    CLOUD = "cloud"


class AdminState(enum.StrEnum):
    ENABLED = "enabled"
    DRAINED = "drained"  # takes no new sessions


class Health(enum.StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class TeidAllocation(enum.StrEnum):
    """Who allocates the N3 F-TEID: the CP, or the UP (CH flag; needs FTUP, TS 29.244 §5.5.3)."""

    CP = "cp"
    UP = "up"


class RuleKind(enum.StrEnum):
    PDR = "pdr"
    FAR = "far"
    QER = "qer"
    URR = "urr"


class ControlPlaneNode(Base):
    """The control plane's own identity; a single row with id 1."""

    __tablename__ = "control_plane_node"
    __table_args__ = (CheckConstraint("id = 1", name="singleton"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    node_id: Mapped[str]
    # Kept across restarts because the state survives in the database: TS 23.007 §19A changes
    # the Recovery Time Stamp only when the node lost its state.
    # Unix seconds; BigInteger so it outlives 2038.
    recovery_time_stamp: Mapped[int] = mapped_column(BigInteger)
    # High-water mark of CP SEIDs handed out; SEIDs are never reused.
    next_seid: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    kind: Mapped[SiteKind] = mapped_column(StrEnumType(SiteKind))
    region: Mapped[str]
    tais: Mapped[list[str]] = mapped_column(default=list)  # "MCC-MNC-TAC", e.g. "001-01-000001"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    upfs: Mapped[list[Upf]] = relationship(back_populates="site")


class Upf(Base):
    __tablename__ = "upfs"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(unique=True)
    n4_address: Mapped[str]
    n4_port: Mapped[int] = mapped_column(default=8805)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    n3_addresses: Mapped[list[str]] = mapped_column(default=list)
    network_instances: Mapped[list[str]] = mapped_column(default=list)  # DNN names served
    snssais: Mapped[list[str]] = mapped_column(default=list)  # "1-000001", or "1" without SD
    features: Mapped[list[str]] = mapped_column(default=list)  # UP Function Features advertised
    capacity: Mapped[int]  # max sessions
    admin_state: Mapped[AdminState] = mapped_column(StrEnumType(AdminState), default=AdminState.ENABLED)
    health: Mapped[Health] = mapped_column(StrEnumType(Health), default=Health.UNKNOWN)
    recovery_time_stamp: Mapped[int | None] = mapped_column(BigInteger)  # last seen from the UPF
    last_seen_at: Mapped[datetime | None]
    teid_allocation: Mapped[TeidAllocation] = mapped_column(StrEnumType(TeidAllocation), default=TeidAllocation.CP)
    # Network Instance to put in access-side PDIs when the UPF needs one.
    access_network_instance: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    site: Mapped[Site] = relationship(back_populates="upfs")


class Dnn(Base):
    __tablename__ = "dnns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    network_instance: Mapped[str]  # what the UPF calls the N6 instance; by convention the DNN name
    snssais: Mapped[list[str]] = mapped_column(default=list)  # allowed slices
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IpPool(Base):
    __tablename__ = "ip_pools"
    __table_args__ = (UniqueConstraint("dnn_id", "cidr"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    dnn_id: Mapped[int] = mapped_column(ForeignKey("dnns.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))  # None: any site
    cidr: Mapped[str]  # one IPv4 or IPv6 prefix
    family: Mapped[int]  # 4 or 6
    prefix_length: Mapped[int]  # per-UE prefix: 32 for IPv4, 64 by default for IPv6

    dnn: Mapped[Dnn] = relationship()
    site: Mapped[Site | None] = relationship()


class Policy(Base):
    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("dnn_id", "snssai"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    dnn_id: Mapped[int] = mapped_column(ForeignKey("dnns.id"))
    snssai: Mapped[str]  # "*": any slice
    qfi: Mapped[int]
    five_qi: Mapped[int]
    arp_priority: Mapped[int] = mapped_column(default=8)
    session_ambr_ul_kbps: Mapped[int]
    session_ambr_dl_kbps: Mapped[int]
    volume_threshold_bytes: Mapped[int | None] = mapped_column(BigInteger)
    time_threshold_s: Mapped[int | None]
    # The gNB sends the PDU Session Container, so QFI can be matched in the PDI.
    qfi_in_pdi: Mapped[bool] = mapped_column(default=True)
    # Re-establish on another UPF of the same site when the UPF is lost.
    failover: Mapped[bool] = mapped_column(default=False)

    dnn: Mapped[Dnn] = relationship()
    edge_rules: Mapped[list[EdgeRule]] = relationship(
        back_populates="policy", cascade="all, delete-orphan", passive_deletes=True
    )


class EdgeRule(Base):
    """A local-breakout rule: SDF filters steered to the edge site's N6 Network Instance."""

    __tablename__ = "edge_rules"
    __table_args__ = (UniqueConstraint("policy_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"))
    name: Mapped[str]
    precedence: Mapped[int]
    # IPFilterRule text (TS 29.212 §5.4.2), e.g. "permit out ip from 10.200.0.0/16 to assigned".
    flow_descriptions: Mapped[list[str]] = mapped_column(default=list)
    network_instance: Mapped[str]

    policy: Mapped[Policy] = relationship(back_populates="edge_rules")


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    supi: Mapped[str] = mapped_column(unique=True)
    allowed_dnns: Mapped[list[str]] = mapped_column(default=list)
    static_ipv4: Mapped[str | None]
    static_ipv6: Mapped[str | None]
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("policies.id"))  # overrides the DNN/slice policy


class Session(Base):
    """A PDU session, keyed by (supi, pdu_session_id); ``version`` guards concurrent updates."""

    __tablename__ = "sessions"
    __table_args__ = (
        UniqueConstraint("supi", "pdu_session_id"),
        # The database refuses a double allocation even if an allocator were wrong.
        UniqueConstraint("dnn", "ue_ipv4"),
        UniqueConstraint("dnn", "ue_ipv6"),
        UniqueConstraint("upf_id", "n3_teid"),
        Index("ix_sessions_upf_id_state", "upf_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    supi: Mapped[str]
    pdu_session_id: Mapped[int]
    dnn: Mapped[str]
    snssai: Mapped[str]
    tai: Mapped[str]
    ue_ipv4: Mapped[str | None]
    ue_ipv6: Mapped[str | None]  # a prefix, "2001:db8::/64"
    pool_v4_id: Mapped[int | None] = mapped_column(ForeignKey("ip_pools.id"))
    pool_v6_id: Mapped[int | None] = mapped_column(ForeignKey("ip_pools.id"))
    upf_id: Mapped[int | None] = mapped_column(ForeignKey("upfs.id", ondelete="RESTRICT"))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("policies.id"))
    cp_seid: Mapped[int] = mapped_column(BigInteger, unique=True)
    up_seid: Mapped[int | None] = mapped_column(BigInteger)
    up_address: Mapped[str | None]
    gnb_teid: Mapped[int | None] = mapped_column(BigInteger)
    gnb_address: Mapped[str | None]
    n3_teid: Mapped[int | None] = mapped_column(BigInteger)  # the UPF's uplink F-TEID
    n3_address: Mapped[str | None]
    state: Mapped[SessionState] = mapped_column(StrEnumType(SessionState))
    # Incremented at each (re-)establishment on a UPF; part of the usage dedupe key.
    epoch: Mapped[int] = mapped_column(default=0)
    last_cause: Mapped[int | None]
    version: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    rules: Mapped[list[SessionRule]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy declares it an instance variable)


class SessionRule(Base):
    """One desired rule of a session (the ``control_plane.domain.rules`` JSON form)."""

    __tablename__ = "session_rules"

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[RuleKind] = mapped_column(StrEnumType(RuleKind), primary_key=True)
    # 32-bit on the wire; predefined rules set the top bit (TS 29.244 §8.2.36), beyond INTEGER.
    rule_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    body: Mapped[dict[str, Any]]

    session: Mapped[Session] = relationship(back_populates="rules")


class UsageRecord(Base):
    """A usage report; outlives its session (``session_id`` becomes NULL), found by ``cp_seid``."""

    __tablename__ = "usage_records"
    # A retransmitted report (same UR-SEQN, TS 29.244 §8.2.77) is stored once.
    __table_args__ = (UniqueConstraint("cp_seid", "epoch", "urr_id", "ur_seqn"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed: PostgreSQL does not index a foreign key, and ON DELETE SET NULL looks rows up by it.
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"), index=True)
    cp_seid: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[int]
    supi: Mapped[str]
    upf_node_id: Mapped[str]
    urr_id: Mapped[int] = mapped_column(BigInteger)  # 32-bit unsigned on the wire
    ur_seqn: Mapped[int] = mapped_column(BigInteger)  # 32-bit unsigned on the wire
    triggers: Mapped[list[str]] = mapped_column(default=list)
    start_time: Mapped[datetime | None]
    end_time: Mapped[datetime | None]
    volume_ul: Mapped[int | None] = mapped_column(BigInteger)
    volume_dl: Mapped[int | None] = mapped_column(BigInteger)
    volume_total: Mapped[int | None] = mapped_column(BigInteger)
    packets_ul: Mapped[int | None] = mapped_column(BigInteger)
    packets_dl: Mapped[int | None] = mapped_column(BigInteger)
    duration_s: Mapped[int | None]
    final: Mapped[bool] = mapped_column(default=False)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaleSession(Base):
    """A session moved away from a UPF that may still hold it: deleted there when the UPF is back.

    Found by ``upf_id`` when that UPF re-associates; goes with the UPF if the UPF is deleted.
    """

    __tablename__ = "stale_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    upf_id: Mapped[int] = mapped_column(ForeignKey("upfs.id", ondelete="CASCADE"), index=True)
    up_seid: Mapped[int] = mapped_column(BigInteger)  # the SEID the UPF knows it by
    cp_seid: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """Something that happened; no foreign key, because events outlive sessions and UPFs."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str]  # "session.created", "upf.restarted", "session.downlink_data", ...
    session_id: Mapped[int | None]
    supi: Mapped[str | None]
    upf_node_id: Mapped[str | None]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
