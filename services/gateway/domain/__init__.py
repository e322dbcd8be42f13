"""Pure rules of the gateway: access scope and masking, ingest checks, audit chain, projections."""
