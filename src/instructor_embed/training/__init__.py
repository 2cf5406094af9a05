"""Training INSTRUCTOR models on MEDI-format data (extra: ``train``).

The library never imports this package; it builds on the library's model and tokenizer.
"""
