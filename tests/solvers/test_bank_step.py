"""`mmd.estimator=bank` in CompressionMMDSolver: streams from audiocraft's own forward, gradient added once."""
import pytest
import torch

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.losses.streams import rvq_streams
from audiocraft_mmd.solvers.forward_streams import ForwardStreams


def _batch(solver):
    return next(iter(solver.dataloaders['train']))


def _step_grads(solver, batch):
    """Gradients handed to the optimizer in one training step (the step itself is skipped)."""
    grads = {}
    solver.optimizer.step = lambda: grads.update(
        {name: p.grad.clone() for name, p in solver.model.named_parameters() if p.grad is not None})
    torch.manual_seed(7)  # the codebooks' k-means init draws from the global RNG
    solver.mmd_rng.manual_seed(4321 + solver.epoch)  # as the train stage (common_train_valid) seeds it
    solver.run_stage('train', lambda: solver.run_step(0, batch, {}))
    return grads


def test_forward_streams_are_the_codes_of_that_forward(make_solver):
    solver = make_solver()
    model, batch = solver.model, _batch(solver)
    model.train()
    model(batch)  # k-means init
    before = {k: v.clone() for k, v in model.quantizer.state_dict().items()}
    seen = {}
    capture = ForwardStreams(model.quantizer, 'quantized')
    with capture.armed(lambda streams, emb, codes: seen.update(streams=streams, emb=emb, codes=codes)):
        model(batch)
    capture.remove()
    model.quantizer.load_state_dict(before)  # the codebooks this forward used (it EMA-updated them after)
    expected, codes = rvq_streams(model.quantizer, seen['emb'].detach(), with_codes=True)
    assert torch.equal(seen['streams'].detach(), expected)
    assert torch.equal(seen['codes'], codes)  # the conditional shuffle's strata come from these
    assert seen['streams'].requires_grad


@pytest.mark.parametrize('marginals', ['shuffle', 'features'])
def test_bank_gradient_joins_audiocrafts_backward_once(make_solver, marginals):
    """First step of a stage: the bank is empty, so its loss is MMDLoss on the step's own streams.
    Encoder gradients = audiocraft's (weight 0) + weight * dMMD/dtheta; every other gradient unchanged."""
    overrides = ('mmd.estimator=bank', 'mmd.num_batches=4', f'mmd.marginals={marginals}')
    ours_solver = make_solver(*overrides, seed=3)
    batch = _batch(ours_solver)
    ours = _step_grads(ours_solver, batch)
    reference = make_solver(*overrides, 'losses.mmd=0', seed=3)  # same initial model
    model = reference.model
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    # The reference: weight * dMMD/dtheta of the streams of the same first forward.
    model.train()
    reference.mmd_rng.manual_seed(4321 + reference.epoch)  # as the train stage seeds it
    encoder = dict(model.encoder.named_parameters())
    expected = {}

    def on_streams(streams, emb, codes):
        loss = ours_solver.mmd_weight * reference.mmd_loss(streams, generator=reference.mmd_rng)
        expected.update(zip(encoder, torch.autograd.grad(loss, list(encoder.values()))))
    capture = ForwardStreams(model.quantizer, 'quantized')
    torch.manual_seed(7)
    with capture.armed(on_streams):
        model(batch)
    capture.remove()
    model.load_state_dict(initial)  # undo the codebooks' init and EMA update of that forward
    base = _step_grads(reference, batch)
    assert set(ours) == set(base)
    sensitivity = 0.  # largest (MMD gradient / margin) over the encoder's parameters
    for name, grad in ours.items():
        delta = grad - base[name]
        scale = base[name].abs().max().item() + 1e-12
        if name.startswith('encoder.'):
            target = expected[name[len('encoder.'):]]
            # float32 round-off of two differently ordered sums: relative to the largest entry, not each entry. A
            # bias gradient sums ~B x T ~ 10^4 terms: with eps = 1.2e-7 the round-off of each of the two gradients
            # is up to ~eps sqrt(N) ~ 1e-5 of their scale, and the thread count (other tests, machine load) changes
            # the summation order; 1e-4 x scale leaves a margin (1e-5 failed once, by 25%, in a full loaded run).
            tolerance = 1e-3 * target.abs().max().item() + 1e-4 * scale
            sensitivity = max(sensitivity, target.abs().max().item() / tolerance)
            assert (delta - target).abs().max().item() <= tolerance, name
        else:
            assert delta.abs().max().item() <= 1e-5 * scale, f"MMD gradient leaked into {name}"
    # Somewhere the MMD gradient must stand well above the margin, or a missing MMD term would pass everywhere.
    assert sensitivity > 2, f"the MMD gradient is at most {sensitivity:.2f} x the margin: the test is blind"
    assert sum(expected[k].abs().sum().item() for k in expected) > 0


@pytest.mark.parametrize('marginals', ['shuffle', 'features'])
def test_bank_trains_and_logs_every_num_batches(make_solver, marginals):
    solver = make_solver('mmd.estimator=bank', 'mmd.num_batches=2', f'mmd.marginals={marginals}')
    loader = iter(solver.dataloaders['train'])
    batches = [next(loader) for _ in range(3)]
    encoder = [p.detach().clone() for p in solver.model.encoder.parameters()]
    logged = []

    def steps():
        for idx, batch in enumerate(batches):
            logged.append('mmd' in solver.run_step(idx, batch, {}))
            assert len(solver.mmd_bank) == min(idx + 1, 1)
    solver.run_stage('train', steps)
    assert logged == [False, True, False]
    assert any(not torch.equal(a, b) for a, b in zip(encoder, solver.model.encoder.parameters()))


@pytest.mark.parametrize('overrides, key', [
    (('mmd.estimator=fast',), 'mmd.estimator'),
    (('mmd.scope=world',), 'mmd.scope'),
    (('mmd.estimator=bank', 'mmd.normalize=codebook'), 'mmd.normalize'),
    (('mmd.estimator=bank', 'mmd.max_rows=64'), 'mmd.max_rows'),
    (('mmd.estimator=bank', 'mmd.marginals=closed_form'), 'mmd.marginals'),
    (('mmd.estimator=bank', 'mmd.exclude_shared=true'), 'mmd.exclude_shared'),
])
def test_new_keys_are_validated_at_start(make_solver, overrides, key):
    with pytest.raises(ConfigError, match=key):
        make_solver(*overrides)
