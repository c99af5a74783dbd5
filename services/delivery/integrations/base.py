"""The one interface every integration implements.

An integration is a module of this package defining one ``Integration``
subclass, named by its ``target_type`` (the value stored in
``deliveries.target_type`` and spelt in ``TargetType``). It says how a
delivery of its type is keyed when it is planned (destination, idempotency key,
the config it needs) and how one attempt is sent; it never touches the
database. The sender decides *whether* a failure is worth another attempt
(``Outcome``); ``retry.py`` decides *when*.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from medic.config import Settings
from services.delivery.model import AttemptResult, Notification


class Integration(ABC):
    # The target type this integration sends ("slack").
    target_type: ClassVar[str]
    # The config field naming where a delivery goes; required when it is enqueued.
    destination_field: ClassVar[str]
    # The field is a secret (a routing key): the destination is then the
    # integration's one API, for the concurrency limit and for people alike.
    destination_is_secret: ClassVar[bool] = False
    # Whether it is sent a maintenance window's announcements (no alert behind them).
    announced_to: ClassVar[bool] = True
    # The sender's constructor arguments, by the Settings field each comes from.
    settings_fields: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> "Integration":
        """The sender of a delivery process."""
        return cls(**{argument: getattr(settings, field)
                      for argument, field in cls.settings_fields.items()})

    @abstractmethod
    def send(self, notification: Notification) -> AttemptResult:
        """One attempt: success, a retryable failure or a permanent one. Never raises
        for a failure of the receiver."""

    # --- planning (pure, on the config routing planned) ---------------------------
    @classmethod
    def has_destination(cls, config: dict[str, Any], webhook_id: int | None) -> bool:
        value = config.get(cls.destination_field)
        return isinstance(value, str) and bool(value)

    @classmethod
    def destination_key(cls, config: dict[str, Any], webhook_id: int | None) -> str:
        """What the per-destination concurrency limit counts."""
        if cls.destination_is_secret:
            return cls.target_type
        return f"{cls.target_type}:{config[cls.destination_field]}"

    @classmethod
    def idempotency_key(cls, event: dict[str, Any], position: int) -> str:
        """The key a receiver may drop repeats by: the same on every attempt."""
        return f"{event['event_id']}.{position}"

    @classmethod
    def shown_destination(cls, config: dict[str, Any], webhook_id: int | None) -> str:
        """Where it goes, for people (listing deliveries): never a secret."""
        if cls.destination_is_secret:
            return cls.target_type
        return str(config.get(cls.destination_field, ""))
