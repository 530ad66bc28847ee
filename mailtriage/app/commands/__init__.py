"""One module per CLI command; ``mailtriage.app.cli`` registers them."""
