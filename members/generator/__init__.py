"""Synthetic tenants for demos and benchmarks (``generate_tenant``, ``seed_demo``).

The entry points live in ``members.generator.service``; this package module imports nothing
so that spawned worker processes can load ``members.generator.worker`` before Django is set
up."""
