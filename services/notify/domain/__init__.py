"""Pure rules of the notify service: notices, numbering, the unit directory."""
