"""Deterministic, seeded synthetic e-commerce transactions with labelled fraud."""

from ml.datagen.catalog import FRAUD_TYPES, UNITS_PER_EUR
from ml.datagen.config import DriftConfig, GeneratorConfig
from ml.datagen.transactions import COLUMNS, generate_transactions

__all__ = [
    "COLUMNS",
    "FRAUD_TYPES",
    "UNITS_PER_EUR",
    "DriftConfig",
    "GeneratorConfig",
    "generate_transactions",
]
