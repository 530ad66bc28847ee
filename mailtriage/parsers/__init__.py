"""Log lines to typed records, records to messages and per-recipient deliveries."""
