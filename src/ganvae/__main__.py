"""`python -m ganvae` (also what `torchrun -m ganvae` runs)."""

from ganvae.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
