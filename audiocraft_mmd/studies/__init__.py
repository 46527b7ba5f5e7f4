"""The studies that test the paper's claims at CPU scale, each a command that trains, evaluates and writes a report.

- `codecs`: the codec-level claims (`make reproduce`): EnCodec-MMD codecs, their independence and liveness;
- `lm`: the LM-level claims, delay vs flatten LMs on those codecs' tokens, with two engines (`lm.solver`: Dora
  MusicGen XPs, `make reproduce-lm`; `lm.tokens`: small LMs on cached tokens, trained to convergence);
- `common`: what they share (paired statistics, the Dora runner, result caches, setting names).
The two studies never import each other: the LM study reads the codec study's results.json.
"""
