"""``python -m mailtriage``: the same as the ``mailtriage`` command."""

from mailtriage.app.cli import main

main()
