"""Stand-ins for outside systems, used by the tests only (not shipped in the package or the image)."""
