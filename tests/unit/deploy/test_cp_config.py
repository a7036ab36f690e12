"""The control plane configuration the render generates is one `edgecups cp` takes (control_plane.config)."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

from control_plane.api.security import new_token, token_entry
from control_plane.config import database_url_from_file, load_config
from db.engine import make_engine
from tests.harness.tls import make_pki

from .rendering import CP_PFCP, example, example_options, named


def _mounted(tmp_path: Path, text: str) -> Path:
    # The Secrets' files where the pod mounts them, here under tmp_path.
    pki = make_pki(tmp_path / "pki")
    token, _ = new_token()
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump([token_entry("ops", ["operator"], token)]))
    for mounted, real in (("/etc/edgecups/tls/tls.crt", pki.server_cert), ("/etc/edgecups/tls/tls.key", pki.server_key),
                          ("/etc/edgecups/tokens/tokens.yaml", tokens)):  # fmt: skip
        assert mounted in text
        text = text.replace(mounted, str(real))
    path = tmp_path / "cp.yaml"
    path.write_text(text)
    return path


def test_the_generated_cp_yaml_loads_and_says_what_the_render_was_told(tmp_path: Path) -> None:
    text = named(example().base, "ConfigMap", "edgecups-cp-config")["data"]["cp.yaml"]
    config = load_config(_mounted(tmp_path, text))
    assert str(config.n4_address) == CP_PFCP and config.node_id == CP_PFCP and config.n4_port == 8805
    assert (config.api_address, config.api_port) == ("0.0.0.0", 50051)
    assert config.api_security is not None and not config.api_security.plaintext
    assert config.metrics is not None and config.metrics.port == 9090
    assert config.mqtt is not None
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.username) == (
        "edgecups-mqtt.edgecups.svc",
        8883,
        "edgecups-cp",
    )
    # CloudNativePG's read-write Service, verified against the cluster's CA; the password comes from PGPASSWORD.
    url = make_url(config.database_url)
    assert (url.host, url.port, url.database, url.username, url.password) == (
        "edgecups-db-rw.edgecups.svc",
        5432,
        "edgecups",
        "edgecups",
        None,
    )
    assert url.query == {"sslmode": "verify-full", "sslrootcert": "/etc/edgecups/db-ca/ca.crt"}
    engine = make_engine(config.database_url)  # psycopg 3 for a bare postgresql:// URL; nothing connects yet
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()
    # `edgecups db upgrade|check --config` (the Job, the init container) read the same database.
    assert database_url_from_file(tmp_path / "cp.yaml") == config.database_url


def test_an_external_database_url_is_used_as_given(tmp_path: Path) -> None:
    from edge_sites.kube import render

    from .rendering import EXAMPLES

    rendered = render([EXAMPLES], example_options(database_url="postgresql://edgecups@db.example.org/edgecups"))
    assert not [o for o in rendered.base if o["kind"] == "Cluster"]
    text = named(rendered.base, "ConfigMap", "edgecups-cp-config")["data"]["cp.yaml"]
    assert load_config(_mounted(tmp_path, text)).database_url == "postgresql://edgecups@db.example.org/edgecups"
    env = named(rendered.base, "Deployment", "edgecups-cp")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {
        "name": "edgecups-db-credentials", "key": "password", "optional": True}}}]  # fmt: skip
