"""``python -m relucid.cli``."""

from relucid.cli import main

main()
