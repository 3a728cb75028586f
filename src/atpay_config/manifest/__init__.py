"""Loading manifests: YAML with source positions, limits, the typed model, the schema."""
