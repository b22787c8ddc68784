"""`python -m ganvae` (also what `torchrun -m ganvae` runs)."""

import sys

if __name__ == "__main__":
    try:
        from ganvae.cli import main
    except KeyboardInterrupt:  # Ctrl-C while Python is still importing
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(main())
