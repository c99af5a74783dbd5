"""Medic: heartbeat monitoring for services and scheduled jobs."""

__version__ = "0.1.0"
