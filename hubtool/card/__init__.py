"""Stage 5, card: README.md rendered only from evidence about these exact files, and the audit
that checks any card's claims against its folder."""
