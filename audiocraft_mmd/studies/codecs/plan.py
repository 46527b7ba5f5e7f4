"""The runs of the reproduction: a trunk per seed and the settings that branch from it, as Dora overrides.

Paired design: per seed, one **trunk** run trains the base config at `losses.mmd=0` for
`trunk_epochs`; every setting then **branches** from its seed's trunk (`continue_from=//sig/<trunk>`:
the trunk's best model state, a fresh optimizer) for `branch_epochs`, the weight-0 setting too, so
every setting has the same total training and two settings of one seed differ only by the branch.

Settings (paper Fig. 2, Table 3 and the ablations of section 4):

- ``weight``: `losses.mmd` in {0, 1e2, 1e3, 1e4}; the rest of the config is the default
  (delay-aligned MMD on quantized streams).
- ``alignment``: `mmd.delay=false` (parallel MMD) at the chosen weight; compared with the
  ``weight`` group's branch at that weight (delay on).
- ``streams``: `mmd.streams=residual` at the chosen weight (reference: quantized).
- ``normalize``: `mmd.normalize=codebook` at the chosen weight (reference: none, the default).
- ``exclude_shared``: `mmd.exclude_shared=true` at the chosen weight (reference: eq. (7)).
- ``estimator``: `mmd.estimator=bank` (memory bank, ~1.0x step cost) at the chosen weight (reference: the
  exact macro-batch estimator); e.g. `--groups estimator --seeds 0 1 2` for the paired comparison.
- ``shuffle``: `mmd.shuffle=conditional` (codebooks shuffled within strata of the past, issue #19) at the
  chosen weight (reference: the global shuffle of Algorithm 1); the evaluation's `tc_cond_delay` is the
  total correlation given that past; e.g. `--groups shuffle --seeds 0 1 2`.
- ``quantizer`` (paper App. C, Table 4): product quantizers, PVQ and PVQ-dropout
  (`compression/encodec_mmd_pvq_cpu`, `..._pvq_dropout_cpu`), each with a trunk of its own (a branch starts
  from a trunk of its architecture) and branches at weight 0 and the chosen weight; RVQ's rows are the
  ``weight`` group's branches at those weights; e.g. `--groups quantizer --seeds 0 1 2`.
- ``dac`` (paper App. B, Fig. 3): the DAC / RVQGAN codec (`compression/dac_mmd_cpu`, the `descript-audio-codec`
  modules) at the sweep's weights, branching from a DAC trunk; e.g. `--groups dac --seeds 0 1 2`.
- ``closed_form``, ``features`` (issue #29): the shuffle-free estimates of the product of the marginals,
  `mmd.marginals=closed_form` (dHSIC V-statistic) and `mmd.marginals=features` (random Fourier features,
  `mmd.features` frequencies per sigma), at the chosen weight (reference: the shuffle of Algorithm 1); the
  ablation rows test their TC and delay-TC against the shuffle's within 2 SE; e.g.
  `--quick --seeds 0 1 2 --groups weight closed_form features`.
- ``kernels``: `mmd.kernel` in {squared_inverse, quadratic, linear} (reference: gaussian) at the
  chosen weight times the kernel's factor, measured on the trunk's streams by the runner
  (`audiocraft_mmd.studies.codecs.kernel_factors`), so the weight is filled in at run time.

An ablation's reference is the ``weight`` branch at the chosen weight with the same seed: it is
trained once and shared.
"""
import dataclasses
import typing as tp

from ..common.settings import CHOSEN_WEIGHT, weight_label

BASE_SOLVER = 'compression/encodec_mmd_cpu'
WEIGHTS = (0., 1e2, 1e3, 1e4)
# group -> (label of the variant, its override, label of the reference)
ABLATIONS: tp.Dict[str, tp.Tuple[str, str, str]] = {
    'alignment': ('parallel', 'mmd.delay=false', 'delay'),
    'streams': ('residual', 'mmd.streams=residual', 'quantized'),
    'normalize': ('codebook', 'mmd.normalize=codebook', 'none'),
    'exclude_shared': ('exclude_shared', 'mmd.exclude_shared=true', 'eq7'),
    'estimator': ('bank', 'mmd.estimator=bank', 'exact'),
    'shuffle': ('conditional', 'mmd.shuffle=conditional', 'global'),
    'closed_form': ('closed_form', 'mmd.marginals=closed_form', 'shuffle'),
    'features': ('features', 'mmd.marginals=features', 'shuffle'),
}
KERNEL_VARIANTS = ('squared_inverse', 'quadratic', 'linear')  # compared with gaussian (the default)
# quantizer group: label -> solver (RVQ, the reference, is BASE_SOLVER)
QUANTIZERS = {'pvq': 'compression/encodec_mmd_pvq_cpu', 'pvq_dropout': 'compression/encodec_mmd_pvq_dropout_cpu'}
QUANTIZER_WEIGHTS = (0., CHOSEN_WEIGHT)
DAC_SOLVER = 'compression/dac_mmd_cpu'
# trunk label of each architecture other than the base solver's
ARCHITECTURES = {**QUANTIZERS, 'dac': DAC_SOLVER}
GROUPS = ('weight',) + tuple(ABLATIONS) + ('quantizer', 'dac', 'kernels')
TRUNK = 'trunk'
# Overrides the plan owns: a common (--set) override of one of these keys would clash with the plan's.
PLAN_KEYS = ('optim.epochs', 'losses.mmd', 'continue_from', 'seed', 'mmd.kernel')


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Seeds, groups, weight sweep and epochs (of `optim.updates_per_epoch` updates each) of a plan."""
    seeds: tp.Tuple[int, ...] = (0, 1, 2)
    groups: tp.Tuple[str, ...] = ('weight', 'alignment', 'streams', 'normalize', 'kernels')
    weights: tp.Tuple[float, ...] = WEIGHTS
    trunk_epochs: int = 10  # 600 updates of the CPU recipe: a live codec (docs/codec_collapse.md)
    branch_epochs: int = 4  # 240 updates, 60 of them carrying the MMD (macro-batches of 4)


FULL = Schedule()
# ~30 minutes on 2 cores: the weight-0 vs chosen-weight pair and parallel MMD, 2 seeds; the same trunks and
# branch length as FULL, so a quick run's XPs are reused by a full one.
QUICK = Schedule(seeds=(0, 1), groups=('weight', 'alignment'), weights=(0., CHOSEN_WEIGHT))


@dataclasses.dataclass(frozen=True)
class Run:
    """One model to train: its group, a label for the tables, its overrides and seed. A branch's
    `continue_from` (and, for a kernel, its weight) are added by the runner (`extra` in `argv`)."""
    group: str
    label: str
    overrides: tp.Tuple[str, ...]
    seed: int
    kernel: tp.Optional[str] = None  # kernels group: losses.mmd = CHOSEN_WEIGHT * factor measured on the trunk
    solver: str = BASE_SOLVER

    @property
    def name(self) -> str:
        return f"{self.group}:{self.label}:seed{self.seed}"

    @property
    def is_trunk(self) -> bool:
        return self.group == TRUNK

    def argv(self, common: tp.Sequence[str] = (), extra: tp.Sequence[str] = ()) -> tp.List[str]:
        """The `dora run` arguments of this run."""
        return [f'solver={self.solver}', 'device=cpu', *common, *self.overrides, *extra, f'seed={self.seed}']

    @property
    def trunk_key(self) -> tp.Tuple[str, int]:
        """Runs with the same key share a trunk: same architecture (solver) and seed."""
        return self.solver, self.seed


def trunk_run(seed: int, epochs: int, solver: str = BASE_SOLVER) -> Run:
    label = next((name for name, s in ARCHITECTURES.items() if s == solver), TRUNK)
    return Run(TRUNK, label, ('losses.mmd=0', f'optim.epochs={epochs}'), seed, solver=solver)


def weight_run(weight: float, seed: int, epochs: int = FULL.branch_epochs) -> Run:
    return Run('weight', weight_label(weight), (f'losses.mmd={weight:g}', f'optim.epochs={epochs}'), seed)


def variant_runs(group: str, seed: int, epochs: int, weights: tp.Sequence[float] = WEIGHTS) -> tp.List[Run]:
    """The branches of an ablation group (not `weight`) for one seed."""
    if group == 'quantizer':
        return [Run(group, f'{q}_w{weight_label(w)}', (f'losses.mmd={w:g}', f'optim.epochs={epochs}'), seed,
                    solver=solver) for q, solver in QUANTIZERS.items() for w in QUANTIZER_WEIGHTS]
    if group == 'dac':
        return [Run(group, f'w{weight_label(w)}', (f'losses.mmd={w:g}', f'optim.epochs={epochs}'), seed,
                    solver=DAC_SOLVER) for w in weights]
    if group == 'kernels':
        return [Run(group, kernel, (f'mmd.kernel={kernel}', f'optim.epochs={epochs}'), seed, kernel=kernel)
                for kernel in KERNEL_VARIANTS]
    label, override, _ = ABLATIONS[group]
    return [Run(group, label, (f'losses.mmd={CHOSEN_WEIGHT:g}', override, f'optim.epochs={epochs}'), seed)]


def check_common(common: tp.Sequence[str]) -> None:
    """Refuse common overrides of keys the plan sets per run (`harness.check_common`)."""
    from ..common.harness import check_common as check
    check(common, PLAN_KEYS, 'run', "epochs: --trunk-epochs/--branch-epochs; seeds: --seeds")


def build_plan(schedule: Schedule) -> tp.List[Run]:
    """The trunks (one per seed), then the branches of the chosen groups, weight sweep first."""
    unknown = sorted(set(schedule.groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown reproduction group(s) {unknown}; known: {list(GROUPS)}")
    if not schedule.seeds:
        raise ValueError("at least one seed is needed")
    if schedule.trunk_epochs < 1 or schedule.branch_epochs < 1:
        raise ValueError(f"trunk and branch epochs must be >= 1, got {schedule.trunk_epochs}, "
                         f"{schedule.branch_epochs}")
    epochs = schedule.branch_epochs
    runs = [trunk_run(seed, schedule.trunk_epochs) for seed in schedule.seeds]
    solvers = [*(QUANTIZERS.values() if 'quantizer' in schedule.groups else ()),
               *((DAC_SOLVER,) if 'dac' in schedule.groups else ())]
    runs += [trunk_run(seed, schedule.trunk_epochs, solver) for solver in solvers for seed in schedule.seeds]
    weights = schedule.weights if 'weight' in schedule.groups else ()
    for seed in schedule.seeds:
        runs += [weight_run(w, seed, epochs) for w in weights]
    for group in schedule.groups:
        if group == 'weight':
            continue
        for seed in schedule.seeds:
            runs += variant_runs(group, seed, epochs, schedule.weights)
            if group == 'dac':  # compared with itself across weights (Fig. 3)
                continue
            for weight in (QUANTIZER_WEIGHTS if group == 'quantizer' else (CHOSEN_WEIGHT,)):
                reference = weight_run(weight, seed, epochs)
                if reference not in runs:  # an ablation's reference, when the sweep does not train it
                    runs.append(reference)
    return runs


def trunk_of(run: Run, runs: tp.Sequence[Run]) -> Run:
    """The trunk a branch starts from: the plan's trunk with the branch's solver and seed."""
    return next(r for r in runs if r.is_trunk and r.trunk_key == run.trunk_key)
