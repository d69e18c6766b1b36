"""Alembic revisions for the registry and job tables (run with `adaptarium db upgrade` or `hub.migrate.upgrade`)."""
