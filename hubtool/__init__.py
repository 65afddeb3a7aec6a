"""hubtool."""
