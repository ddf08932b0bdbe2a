"""The rules: pure functions of DataFrames, bytes and text (no I/O, no Prefect)."""
