"""``instructor-embed serve``: an OpenAI-compatible embedding server with per-request instructions (extra ``server``).

The library never imports this package. ``create_app(ServerSettings(...))`` returns the FastAPI app; the
batcher runs the library's engine steps, so the server's vectors are the library's.
"""
