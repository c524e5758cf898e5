"""The learnware package format: zips (archive), learnware.yaml (package), the semantic
specification (semantic), and writing new packages (pack, templates). Used by store and check."""
