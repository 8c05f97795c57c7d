"""The async client; the sync twin in ``_sync`` is generated from it."""
