"""The metadata repositories (``shared.ports``: datasets, feature sets, jobs, models) on
SQLAlchemy, one module per aggregate, all in one unit of work (``uow.py``). SQLAlchemy
speaks both databases' dialects, so each has one implementation."""
