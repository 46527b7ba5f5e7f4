"""The CPU rehearsal of the release path (issue 40, item 6): fine-tune our own "released" stand-in codec, published
in transformers' format in a hub cache, with and without the MMD, encoder-only and full; continue a delay LM on the
fine-tuned tokens. Claims: docs/finetune_rehearsal/claims.md; tables: docs/finetune_rehearsal/README.md."""
