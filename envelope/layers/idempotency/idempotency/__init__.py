"""The idempotency envelope's record logic: key computation and the DynamoDB record."""
