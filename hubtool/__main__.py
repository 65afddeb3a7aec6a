"""``python -m hubtool`` is the same as the ``hubtool`` command."""

from hubtool.cli.main import main

if __name__ == "__main__":
    main()
