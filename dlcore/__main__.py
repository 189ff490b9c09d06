"""``python -m dlcore``: the same as the ``dlcore`` command."""
from dlcore.cli import main

if __name__ == "__main__":
    main(prog_name="dlcore")
