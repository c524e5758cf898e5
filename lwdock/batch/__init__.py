"""Batch jobs: many learnwares or many inputs in one call (issue 16), on a pluggable executor."""
