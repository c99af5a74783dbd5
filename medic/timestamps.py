"""Database times to protobuf, the one conversion every servicer needs."""
from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp


def to_timestamp(value: dt.datetime | None) -> Timestamp | None:
    """A ``Timestamp`` for a time, None (the field stays unset) for none."""
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts
