"""The ``cps-covid`` command line: above the flows, which it runs."""
