"""OpenCAC store layer: SQLAlchemy models, Alembic migrations, audit event log.

Seams: ``opencac.store.models.Base`` (other helpers add tables on it),
``opencac.store.db`` (``make_engine``, ``upgrade``, ``session_factory``),
``opencac.store.events.record_event`` (the one way to append audit events).
"""
