"""The codebook streams of audiocraft's own training forward, and a gradient added to its own backward.

Used by the memory-bank MMD (`mmd.estimator: bank`, see `losses/mmd_bank.py`), which must cost no
extra encoder pass: no re-encode (the streams come from the forward audiocraft runs anyway) and
no extra encoder backward (the MMD's gradient joins the first backward that audiocraft runs
through the encoder).
"""
import contextlib
import typing as tp

import torch

from ..losses.streams import codebook_layers, codebook_streams

StreamsCallback = tp.Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]


class ForwardStreams:
    """Captures the streams [B, K, D, T] of the quantizer's forward while armed, and hands them to a callback.

    RVQ: forward hooks on each stage (`quantizer.vq.layers[k]`) record the stage's input r_k (which audiocraft
    computes as emb - sum_{j<k} q_j with q_j detached), its codeword q_k and code c_k, the ones this very
    forward picked (before the forward's own EMA update of the codebook). A forward hook on the quantizer then
    builds the streams exactly as `losses.streams.rvq_streams` does, `quantized`: r_k + (q_k - r_k).detach()
    (straight-through), `residual`: r_k, and calls `callback(streams, emb, codes)` (codes [B, K, T]), emb
    being the encoder output the quantizer received (the streams' gradient reaches the encoder only through
    it). When the forward ran fewer stages than the quantizer's n_q (quantizer dropout), the streams are recomputed
    from emb with `rvq_streams` (all stages; codebooks already EMA-updated by this forward).
    PVQ: the same hooks on each group (`quantizer.groups[k]`) record group k's input (its D/K dims of
    emb) and codeword, so the streams equal `ProductVectorQuantizer.streams` (all groups run every forward,
    PVQ-dropout only zeroes the decoder's input afterwards).
    Unarmed, the hooks do nothing.
    """
    def __init__(self, quantizer: torch.nn.Module, kind: str):
        self.quantizer = quantizer
        self.kind = kind
        self._callback: tp.Optional[StreamsCallback] = None
        self._stages: tp.List[tp.Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._handles = [layer.register_forward_hook(self._stage_hook) for layer in codebook_layers(quantizer)]
        self._handles.append(quantizer.register_forward_hook(self._quantizer_hook))

    @contextlib.contextmanager
    def armed(self, callback: StreamsCallback):
        self._callback, self._stages = callback, []
        try:
            yield
        finally:
            self._callback, self._stages = None, []

    def _stage_hook(self, module, args, output) -> None:
        if self._callback is not None:
            self._stages.append((args[0], output[0].detach(), output[1]))  # (r_k, q_k, c_k)

    def _quantizer_hook(self, module, args, output) -> None:
        if self._callback is None:
            return
        emb, stages = args[0], self._stages
        self._stages = []
        if len(stages) != self.quantizer.n_q:
            streams, codes = codebook_streams(self.quantizer, emb, kind=self.kind, with_codes=True)
        else:
            codes = torch.stack([c for _, _, c in stages], dim=1)
            if self.kind == 'quantized':
                streams = torch.stack([r + (q - r).detach() for r, q, _ in stages], dim=1)
            else:
                streams = torch.stack([r for r, _, _ in stages], dim=1)
        self._callback(streams, emb, codes)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


class GradientOnce:
    """Adds `grad` to the gradient w.r.t. `tensor` in the first backward pass that reaches `tensor`.

    audiocraft's `CompressionSolver.run_step` runs up to two backward passes through the encoder
    output: the quantizer penalty's (`other_loss.backward(retain_graph=True)`) and the balancer's.
    Parameter gradients are linear in the gradient w.r.t. emb, so adding d(weight * MMD)/d(emb) to
    exactly one of them adds exactly J^T d(weight * MMD)/d(emb) to the encoder's `.grad`, before
    `flashy.distrib.sync_model` and the optimizer step, at no extra encoder backward.
    """
    def __init__(self, tensor: torch.Tensor, grad: torch.Tensor):
        self.grad = grad
        self.applied = False
        self._handle = tensor.register_hook(self._hook)

    def _hook(self, incoming: torch.Tensor) -> tp.Optional[torch.Tensor]:
        if self.applied:
            return None
        self.applied = True
        return incoming + self.grad

    def remove(self) -> None:
        self._handle.remove()
