"""Reading logs: files (batch and followed), syslog, pushed lines; one pipeline."""
