"""What a `medic` management command run in-process left behind."""
from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)
