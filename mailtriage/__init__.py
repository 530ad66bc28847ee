"""mailtriage: Postfix and Dovecot (LMTP) logs to delivery events, metrics and answers."""

__version__ = "0.1.0"
