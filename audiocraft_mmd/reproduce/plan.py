"""The runs of the reproduction: which EnCodec-MMD models to train, as Dora overrides.

Groups (paper Fig. 2 and the ablations of section 4):

- ``weight``: `losses.mmd` in {0, 1e2, 1e3, 1e4}; the rest of the config is the default
  (delay-aligned MMD on quantized streams).
- ``alignment``: `mmd.delay=false` (parallel MMD) at the chosen weight; compared with the
  ``weight`` group's runs at that weight (delay on).
- ``streams``: `mmd.streams=residual` at the chosen weight (reference: quantized).
- ``normalize``: `mmd.normalize=codebook` at the chosen weight (reference: none, the default).
- ``exclude_shared``: `mmd.exclude_shared=true` at the chosen weight (reference: eq. (7)).
- ``estimator``: `mmd.estimator=bank` (memory bank, ~1.0x step cost) at the chosen weight (reference: the
  exact macro-batch estimator); e.g. `--groups estimator --seeds 0 1 2` for the paired comparison.

Every run exists once per seed; an ablation's reference is the ``weight`` run at the chosen
weight with the same seed, so it is trained once and shared.
"""
import dataclasses
import typing as tp

BASE_SOLVER = 'compression/encodec_mmd_cpu'
WEIGHTS = (0., 1e2, 1e3, 1e4)
CHOSEN_WEIGHT = 1e3
# group -> (label of the variant, its override, label of the reference)
ABLATIONS: tp.Dict[str, tp.Tuple[str, str, str]] = {
    'alignment': ('parallel', 'mmd.delay=false', 'delay'),
    'streams': ('residual', 'mmd.streams=residual', 'quantized'),
    'normalize': ('codebook', 'mmd.normalize=codebook', 'none'),
    'exclude_shared': ('exclude_shared', 'mmd.exclude_shared=true', 'eq7'),
    'estimator': ('bank', 'mmd.estimator=bank', 'exact'),
}
GROUPS = ('weight',) + tuple(ABLATIONS)


@dataclasses.dataclass(frozen=True)
class Run:
    """One model to train: its group, a label for the tables, its overrides and seed."""
    group: str
    label: str
    overrides: tp.Tuple[str, ...]
    seed: int

    @property
    def name(self) -> str:
        return f"{self.group}:{self.label}:seed{self.seed}"

    def argv(self, common: tp.Sequence[str] = ()) -> tp.List[str]:
        """The `dora run` arguments of this run."""
        return [f'solver={BASE_SOLVER}', 'device=cpu', *common, *self.overrides, f'seed={self.seed}']


def weight_label(weight: float) -> str:
    return '0' if weight == 0 else f'{weight:.0e}'.replace('e+0', 'e')


def weight_run(weight: float, seed: int) -> Run:
    return Run('weight', weight_label(weight), (f'losses.mmd={weight:g}',), seed)


def build_plan(seeds: tp.Sequence[int], groups: tp.Sequence[str] = GROUPS) -> tp.List[Run]:
    """The runs of the chosen groups, weight sweep first (the ablations' references are in it)."""
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown reproduction group(s) {unknown}; known: {list(GROUPS)}")
    if not seeds:
        raise ValueError("at least one seed is needed")
    runs: tp.List[Run] = []
    weights = WEIGHTS if 'weight' in groups else ()
    for seed in seeds:
        runs += [weight_run(w, seed) for w in weights]
    for group in groups:
        if group == 'weight':
            continue
        label, override, _ = ABLATIONS[group]
        for seed in seeds:
            runs.append(Run(group, label, (f'losses.mmd={CHOSEN_WEIGHT:g}', override), seed))
        if 'weight' not in groups:  # the reference is not in the plan yet
            runs += [weight_run(CHOSEN_WEIGHT, seed) for seed in seeds if weight_run(CHOSEN_WEIGHT, seed) not in runs]
    return runs
