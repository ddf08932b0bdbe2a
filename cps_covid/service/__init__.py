"""The public email subscription service (``cps-covid serve``): a small ASGI app served by uvicorn."""
