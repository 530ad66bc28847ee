"""mailtriage: Postfix and Dovecot (LMTP) logs to delivery events, metrics, answers."""

__version__ = "0.1.0"
