"""Pure rules of case-file review: pre-check, rubric scoring, sampling, reports (no I/O)."""
