"""The logged predictions of a window as columns (``FeatureLogReader``): read from the
``predictions`` table itself (``sql_rows``), or from its Parquet mirror in blob storage
plus the rows not mirrored yet (``parquet_segments``)."""
