"""`python -m cnnlab ...` (and `torchrun -m cnnlab train ...`) run the CLI."""

from cnnlab.cli import run

if __name__ == "__main__":  # not when a tool (pytest's doctest collection) imports it
    run()
