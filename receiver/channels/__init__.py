"""Notification channels: one module per type (settings beside code), and the registry of types."""
