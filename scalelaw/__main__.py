"""`python -m scalelaw ...`: the same as the `scalelaw` command."""
from .cli import main

if __name__ == "__main__":
    main(prog_name="scalelaw")
