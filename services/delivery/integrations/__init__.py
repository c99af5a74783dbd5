"""Delivery's integrations, one module each (``slack``, ``pagerduty``,
``webhook``), all behind ``base.Integration``.

Every module of this package but ``base`` is an integration and is found here
by itself: adding one (email, Microsoft Teams, Opsgenie) is a new module
defining one ``Integration`` subclass, plus its tests. (Its ``TargetType``
value is added to ``delivery.proto``; routing offers it as a notification
target once its ``target_config`` knows the config.)
"""
from __future__ import annotations

import importlib
import pkgutil

from medic.config import Settings
from services.delivery.integrations.base import Integration


def _discover() -> dict[str, type[Integration]]:
    found: dict[str, type[Integration]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name == "base" or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        classes = [value for value in vars(module).values()
                   if isinstance(value, type) and issubclass(value, Integration)
                   and value is not Integration and value.__module__ == module.__name__]
        if len(classes) != 1:
            raise ImportError(f"integration module {module.__name__} must define one "
                              f"Integration, not {len(classes)}")
        found[classes[0].target_type] = classes[0]
    return found


INTEGRATIONS: dict[str, type[Integration]] = _discover()


def senders(settings: Settings) -> dict[str, Integration]:
    """A sender of every integration, by target type."""
    return {name: integration.from_settings(settings) for name, integration in INTEGRATIONS.items()}
