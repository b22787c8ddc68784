"""``ganvae explore``: a local web app to walk a model's latent space, move along its main directions, draw a
digit and see the model's version of it, and zoom a CPPN render (``server.py``: the app; ``session.py``: the work)."""
