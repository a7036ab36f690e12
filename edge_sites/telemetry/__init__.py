"""Site telemetry over MQTT: the topic tree, the payload schemas and a publisher that never blocks.

Pure (aiomqtt and the standard library): the UPF agent (user_plane/telemetry.py) and the
control plane (control_plane/telemetry.py) both import it, and it imports neither.

* :mod:`.topics`: ``edgecups/v1/sites/{site}/upfs/{node_id}/{status,metrics,usage}`` and
  ``edgecups/v1/events/{kind}``.
* :mod:`.schema`: the JSON payloads (schema version 1), one table, :func:`validate`.
* :mod:`.payloads`: builders of those payloads from plain values.
* :mod:`.config`: the ``mqtt:`` configuration section (broker, credentials, TLS).
* :mod:`.publisher`: one connection kept up with jittered backoff, a bounded buffer for what
  matters, the Last Will and the retained status. Imported from its module (it loads aiomqtt,
  which a command that only reads a configuration does not need).
"""

from .config import MqttConfig, TlsFiles, parse_mqtt
from .schema import SCHEMA_VERSION, SCHEMAS, PayloadError, decode, encode, validate

__all__ = [
    "SCHEMAS",
    "SCHEMA_VERSION",
    "MqttConfig",
    "PayloadError",
    "TlsFiles",
    "decode",
    "encode",
    "parse_mqtt",
    "validate",
]
