"""Fine-tuning INSTRUCTOR models on MEDI rows, pairs, scored pairs or labelled texts (extra: ``train``).

The library never imports this package; it builds on the library's model and tokenizer.
"""
