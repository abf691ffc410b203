"""An audit of what crosses the wire: every record's name, and for arrays their shapes.

The FedGSCA strategy describes each message it sends and receives here, so a run can
prove that only weights and mixture statistics left the sites. Values of config and
metric records are summarised by type and length, never copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict

#: Train-config key of a train message that carries no weights: the content id of the
#: arrays the site already holds from the same round's ``query.gmm``
#: (:attr:`flwr.app.ArrayRecord.object_id`, Flower's SHA-256 of the record, the same on both
#: ends of the wire; see :mod:`medgate_fl.strategies.fedgsca`).
ARRAYS_DIGEST = "arrays-sha256"

#: Text in the error reply of a site that got a weight-less train message and holds no
#: weights from that round's query (its SuperNode restarted in between, losing its state):
#: the server answers it with the full train message, once (Flower passes the exception's
#: text on in the error's reason, on a SuperNode as in process).
WEIGHTS_NOT_HELD = "weights-not-held"


def describe_content(content: RecordDict) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, arrays in content.array_records.items():
        out[name] = {
            "kind": "arrays",
            "items": {k: {"shape": list(a.shape), "dtype": a.dtype} for k, a in arrays.items()},
        }
    records: list[tuple[str, str, ConfigRecord | MetricRecord]] = [
        *(("config", n, r) for n, r in content.config_records.items()),
        *(("metrics", n, r) for n, r in content.metric_records.items()),
    ]
    for kind, name, record in records:
        items: dict[str, object] = {}
        for key, value in record.items():
            if isinstance(value, list):
                items[key] = {"type": "list", "len": len(value)}
            else:
                items[key] = {"type": type(value).__name__, "len": len(value) if isinstance(value, str | bytes) else 1}
        out[name] = {"kind": kind, "items": items}
    return out


class WireLog:
    """Appends one JSON line per message to ``path`` (nothing when ``path`` is None)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def record(self, direction: str, server_round: int, messages: Iterable[Message]) -> None:
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as f:
            for msg in messages:
                entry = {
                    "direction": direction,
                    "round": server_round,
                    "type": msg.metadata.message_type,
                    "node": msg.metadata.dst_node_id if direction == "sent" else msg.metadata.src_node_id,
                    "error": msg.has_error(),
                    "reason": msg.error.reason if msg.has_error() else None,
                    "content": None if msg.has_error() else describe_content(msg.content),
                }
                f.write(json.dumps(entry) + "\n")
