"""How each Lambda function's services are built: one module per function, one way.

Each module reads its function's environment into a pydantic model (`settings.environment`),
which binds the table names onto the pynamodb models, and exposes a cached builder the handler
calls on its first event (`ingest.ingest(metrics)`, `presence.presence()`, ...). Handlers import
their composition module and nothing from chargenet.adapters; the CLI, the local stack and the
tests reach the same builders. Import a submodule, never this package's contents: each function
imports only what it uses (Stripe only where payments or subscriptions are built).
"""
