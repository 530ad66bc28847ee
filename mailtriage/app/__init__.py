"""The service around the parsers: settings, store, ingest, HTTP API, metrics, CLI."""
