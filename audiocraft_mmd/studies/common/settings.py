"""How the codec study names its settings: the `group:label` keys of its results.json, which the LM study reads
to find its codecs. A weight's label is its short exponent form (1e3 -> '1e3')."""

from ...losses.mmd_config import PAPER_WEIGHT

# The studies' MMD codecs and ablations train at the paper's weight (a float: reports format it with :g).
CHOSEN_WEIGHT = float(PAPER_WEIGHT)


def weight_label(weight: float) -> str:
    return '0' if weight == 0 else f'{weight:.0e}'.replace('e+0', 'e')
