"""The system on loopback for development and tests (moto, a Prefect server, stand-in sources): never in the image."""
