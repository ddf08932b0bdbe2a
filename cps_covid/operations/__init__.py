"""What operators run beside the flows: deploy, rebuild and rollback, the offline merge."""
