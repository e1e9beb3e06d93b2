"""Outbound webhooks: partners' endpoints, the relay from the outbox, signed deliveries with
retries, the delivery log, replay and automatic disabling (see README, "Webhooks")."""
