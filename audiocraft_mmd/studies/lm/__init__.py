"""The LM study: is the factorization gap (delay minus flatten LM cross-entropy) smaller on MMD tokens?

One study, two engines sharing its vocabulary (`vocabulary`: codecs and patterns), its codecs (`codecs`: read
from the codec study's results), its pairs and gap formula (`pairs`) and its real clips (`clips`):
- `solver`: MusicGen LMs as Dora XPs of the MusicGen-MMD solver (`make reproduce-lm`), with FAD / tag KL;
- `tokens`: small unconditional LMs on tokens cached once per codec, trained to convergence (issue 30).
"""
