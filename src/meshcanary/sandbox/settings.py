"""Knobs of a sandbox's simulated cluster, chosen at `sandbox up` and kept with its state."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    """How the simulated cluster behaves. Delays are seconds; jitter is a fraction of a delay."""

    nodes: int = 3
    pod_schedule_delay: float = 0.0
    pod_start_delay: float = 0.05
    pod_ready_delay: float = 0.1
    pod_termination_delay: float = 0.05
    job_duration: float = 0.5
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= 100:
            raise ValueError(f"nodes must be between 1 and 100, got {self.nodes}")
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name != "nodes" and (not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{item.name} must be a non-negative number, got {value!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Settings:
        known = {item.name for item in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown sandbox settings: {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> Settings:
        if not path.exists():
            return cls()
        return cls.from_mapping(json.loads(path.read_text()))
