"""Initial schema: sites, UPFs, DNNs, pools, policies, subscribers, sessions, usage, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 04:25:43.138815

Written by autogenerate, then reviewed: indexes created plainly (no batch mode needed for a new
table); tables dropped in reverse dependency order (their indexes go with them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "control_plane_node",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("node_id", sa.String(), nullable=False),
        sa.Column("recovery_time_stamp", sa.BigInteger(), nullable=False),
        sa.Column("next_seid", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_control_plane_node_singleton")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_plane_node")),
    )
    op.create_table(
        "dnns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("network_instance", sa.String(), nullable=False),
        sa.Column("snssais", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dnns")),
        sa.UniqueConstraint("name", name=op.f("uq_dnns_name")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("supi", sa.String(), nullable=True),
        sa.Column("upf_node_id", sa.String(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("tais", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("name", name=op.f("uq_sites_name")),
    )
    op.create_table(
        "ip_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("dnn_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("cidr", sa.String(), nullable=False),
        sa.Column("family", sa.Integer(), nullable=False),
        sa.Column("prefix_length", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["dnn_id"], ["dnns.id"], name=op.f("fk_ip_pools_dnn_id_dnns")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_ip_pools_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_pools")),
        sa.UniqueConstraint("dnn_id", "cidr", name=op.f("uq_ip_pools_dnn_id_cidr")),
        sa.UniqueConstraint("name", name=op.f("uq_ip_pools_name")),
    )
    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("dnn_id", sa.Integer(), nullable=False),
        sa.Column("snssai", sa.String(), nullable=False),
        sa.Column("qfi", sa.Integer(), nullable=False),
        sa.Column("five_qi", sa.Integer(), nullable=False),
        sa.Column("arp_priority", sa.Integer(), nullable=False),
        sa.Column("session_ambr_ul_kbps", sa.Integer(), nullable=False),
        sa.Column("session_ambr_dl_kbps", sa.Integer(), nullable=False),
        sa.Column("volume_threshold_bytes", sa.BigInteger(), nullable=True),
        sa.Column("time_threshold_s", sa.Integer(), nullable=True),
        sa.Column("qfi_in_pdi", sa.Boolean(), nullable=False),
        sa.Column("failover", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["dnn_id"], ["dnns.id"], name=op.f("fk_policies_dnn_id_dnns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint("dnn_id", "snssai", name=op.f("uq_policies_dnn_id_snssai")),
        sa.UniqueConstraint("name", name=op.f("uq_policies_name")),
    )
    op.create_table(
        "upfs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(), nullable=False),
        sa.Column("n4_address", sa.String(), nullable=False),
        sa.Column("n4_port", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("n3_addresses", sa.JSON(), nullable=False),
        sa.Column("network_instances", sa.JSON(), nullable=False),
        sa.Column("snssais", sa.JSON(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("admin_state", sa.String(length=32), nullable=False),
        sa.Column("health", sa.String(length=32), nullable=False),
        sa.Column("recovery_time_stamp", sa.BigInteger(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("teid_allocation", sa.String(length=32), nullable=False),
        sa.Column("access_network_instance", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_upfs_site_id_sites"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upfs")),
        sa.UniqueConstraint("node_id", name=op.f("uq_upfs_node_id")),
    )
    op.create_table(
        "edge_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("precedence", sa.Integer(), nullable=False),
        sa.Column("flow_descriptions", sa.JSON(), nullable=False),
        sa.Column("network_instance", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["policies.id"], name=op.f("fk_edge_rules_policy_id_policies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edge_rules")),
        sa.UniqueConstraint("policy_id", "name", name=op.f("uq_edge_rules_policy_id_name")),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supi", sa.String(), nullable=False),
        sa.Column("pdu_session_id", sa.Integer(), nullable=False),
        sa.Column("dnn", sa.String(), nullable=False),
        sa.Column("snssai", sa.String(), nullable=False),
        sa.Column("tai", sa.String(), nullable=False),
        sa.Column("ue_ipv4", sa.String(), nullable=True),
        sa.Column("ue_ipv6", sa.String(), nullable=True),
        sa.Column("pool_v4_id", sa.Integer(), nullable=True),
        sa.Column("pool_v6_id", sa.Integer(), nullable=True),
        sa.Column("upf_id", sa.Integer(), nullable=True),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("cp_seid", sa.BigInteger(), nullable=False),
        sa.Column("up_seid", sa.BigInteger(), nullable=True),
        sa.Column("up_address", sa.String(), nullable=True),
        sa.Column("gnb_teid", sa.BigInteger(), nullable=True),
        sa.Column("gnb_address", sa.String(), nullable=True),
        sa.Column("n3_teid", sa.BigInteger(), nullable=True),
        sa.Column("n3_address", sa.String(), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("last_cause", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["policy_id"], ["policies.id"], name=op.f("fk_sessions_policy_id_policies")),
        sa.ForeignKeyConstraint(["pool_v4_id"], ["ip_pools.id"], name=op.f("fk_sessions_pool_v4_id_ip_pools")),
        sa.ForeignKeyConstraint(["pool_v6_id"], ["ip_pools.id"], name=op.f("fk_sessions_pool_v6_id_ip_pools")),
        sa.ForeignKeyConstraint(["upf_id"], ["upfs.id"], name=op.f("fk_sessions_upf_id_upfs"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("cp_seid", name=op.f("uq_sessions_cp_seid")),
        sa.UniqueConstraint("dnn", "ue_ipv4", name=op.f("uq_sessions_dnn_ue_ipv4")),
        sa.UniqueConstraint("dnn", "ue_ipv6", name=op.f("uq_sessions_dnn_ue_ipv6")),
        sa.UniqueConstraint("supi", "pdu_session_id", name=op.f("uq_sessions_supi_pdu_session_id")),
        sa.UniqueConstraint("upf_id", "n3_teid", name=op.f("uq_sessions_upf_id_n3_teid")),
    )
    op.create_index(op.f("ix_sessions_upf_id_state"), "sessions", ["upf_id", "state"], unique=False)
    op.create_table(
        "stale_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("upf_id", sa.Integer(), nullable=False),
        sa.Column("up_seid", sa.BigInteger(), nullable=False),
        sa.Column("cp_seid", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["upf_id"], ["upfs.id"], name=op.f("fk_stale_sessions_upf_id_upfs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stale_sessions")),
    )
    op.create_index(op.f("ix_stale_sessions_upf_id"), "stale_sessions", ["upf_id"], unique=False)
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supi", sa.String(), nullable=False),
        sa.Column("allowed_dnns", sa.JSON(), nullable=False),
        sa.Column("static_ipv4", sa.String(), nullable=True),
        sa.Column("static_ipv6", sa.String(), nullable=True),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["policy_id"], ["policies.id"], name=op.f("fk_subscribers_policy_id_policies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("supi", name=op.f("uq_subscribers_supi")),
    )
    op.create_table(
        "session_rules",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("rule_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_session_rules_session_id_sessions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("session_id", "kind", "rule_id", name=op.f("pk_session_rules")),
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("cp_seid", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("supi", sa.String(), nullable=False),
        sa.Column("upf_node_id", sa.String(), nullable=False),
        sa.Column("urr_id", sa.BigInteger(), nullable=False),
        sa.Column("ur_seqn", sa.BigInteger(), nullable=False),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("volume_ul", sa.BigInteger(), nullable=True),
        sa.Column("volume_dl", sa.BigInteger(), nullable=True),
        sa.Column("volume_total", sa.BigInteger(), nullable=True),
        sa.Column("packets_ul", sa.BigInteger(), nullable=True),
        sa.Column("packets_dl", sa.BigInteger(), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_usage_records_session_id_sessions"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
        sa.UniqueConstraint(
            "cp_seid", "epoch", "urr_id", "ur_seqn", name=op.f("uq_usage_records_cp_seid_epoch_urr_id_ur_seqn")
        ),
    )
    op.create_index(op.f("ix_usage_records_session_id"), "usage_records", ["session_id"], unique=False)


def downgrade() -> None:
    op.drop_table("usage_records")
    op.drop_table("session_rules")
    op.drop_table("subscribers")
    op.drop_table("stale_sessions")
    op.drop_table("sessions")
    op.drop_table("edge_rules")
    op.drop_table("upfs")
    op.drop_table("policies")
    op.drop_table("ip_pools")
    op.drop_table("sites")
    op.drop_table("events")
    op.drop_table("dnns")
    op.drop_table("control_plane_node")
