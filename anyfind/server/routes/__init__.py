"""API routes, one module per concern."""
