"""Columnar, integer-coded transaction rows used inside the generator.

Patterns produce blocks of integer codes (cheap to sample, concatenate and
sort); string labels are attached only once, when the final frame is built.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ml.datagen.sampling import FloatArray, IntArray


@dataclass(frozen=True)
class Rows:
    """One column per field; all arrays share the same length.

    ``time_ms`` is milliseconds since the configured start, ``amount_eur`` is
    the pre-currency amount, ``device`` is a global device number and every
    other field is a code into the matching ``catalog`` tuple (or the user /
    merchant number).
    """

    user: IntArray
    merchant: IntArray
    time_ms: IntArray
    amount_eur: FloatArray
    device: IntArray
    device_type: IntArray
    country: IntArray
    payment: IntArray
    fraud_type: IntArray

    def __len__(self) -> int:
        return len(self.user)

    def take(self, index: IntArray) -> Rows:
        """Rows reordered/subset by ``index``."""
        return Rows(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        """Stack blocks in order (order matters for stable tie-breaking)."""
        return Rows(
            **{
                f.name: np.concatenate([getattr(p, f.name) for p in parts])
                for f in fields(Rows)
            }
        )
