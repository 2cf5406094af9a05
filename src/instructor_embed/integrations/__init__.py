"""Framework integrations, each behind its own extra; the library never imports them."""
