"""Pure rules of the hotline service: classification, routing, SLA, lifecycle, leads."""
