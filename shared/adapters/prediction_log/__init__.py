"""The ``PredictionSink`` adapter: the ``predictions`` table (``sql.py``)."""
