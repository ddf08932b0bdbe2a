"""An update's writes: the publication's state machine and the ledger, over the run's resources."""
