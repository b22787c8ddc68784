"""Model families. Each module holds a family's config dataclass and its networks; the
registry (``ganvae.registry``) maps names to them."""
