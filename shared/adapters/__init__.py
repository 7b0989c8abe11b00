"""Adapters: one backend per module, behind the Protocols of ``shared.ports``."""
