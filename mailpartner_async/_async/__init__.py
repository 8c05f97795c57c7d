"""Every line of the SDK that waits: ``_async/`` is the source, ``_sync/`` its generated twin."""
