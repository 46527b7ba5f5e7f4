"""DAC (RVQGAN: Kumar et al. 2023, "High-Fidelity Audio Compression with Improved RVQGAN") as an audiocraft
compression model that our compression solvers train, with or without the MMD loss (paper App. B).

The encoder, quantizer and decoder are the modules of `dac.model.DAC` from the `descript-audio-codec`
package (1.0.0), built from the `dac` config block: no weights are downloaded. `DACQuantizer` gives
DAC's `ResidualVectorQuantize` audiocraft's quantizer interface (`QuantizedResult`, `encode`/`decode`,
`set_num_codebooks`), and `DACModel` is audiocraft's `EncodecModel` around the three modules, so the
solvers, the MMD streams, export and loading see the attributes they see on an EnCodec
(`encoder`, `quantizer`, `decoder`, `preprocess`, `frame_rate`, `cardinality`, ...).

What DAC's quantizer does (`dac/nn/quantize.py`), all kept:
- **Factorized, L2-normalized codes.** Stage k projects its input r_k [B, D, T] to `codebook_dim` dims
  (`in_proj`, a weight-normalized 1x1 conv), picks the entry of largest cosine similarity (projection and
  codebook L2-normalized for the lookup only), and maps the raw entry back to D dims (`out_proj`): q_k,
  with r_{k+1} = r_k - q_k (not detached: DAC's gradient flows through earlier stages).
- **Codebooks trained by gradient**, not EMA: per codebook a codebook loss ||sg(z_e) - e||^2 and a
  commitment loss ||z_e - sg(e)||^2, summed over codebooks. The `QuantizedResult.penalty` is
  `commitment_weight * commitment + codebook_weight * codebook` (DAC's published weights 0.25 and 1);
  audiocraft's compression solver back-propagates it unbalanced, as it does RVQ's commitment loss.
- **Quantizer dropout** (training only): the first int(quantizer_dropout * B) items of a batch each
  draw k ~ U{1..K} (torch's global RNG, drawn at every training forward) and the decoder receives
  q_1 + ... + q_k only; the other items get all K. Every stage still runs for every item (codes, masked
  losses), so the codes (the LM's tokens) are always all K. DAC's released models use 0.5. In eval there
  is no dropout, and `set_num_codebooks(n)` encodes and decodes the first n.

Input: mono audio [B, 1, L]; it is right-padded to a multiple of the hop length (DAC's `preprocess`),
and `forward` trims the output back to L. No input renormalization: DAC's decoder ends with tanh, so
it reproduces audio within [-1, 1] at the data's own level.
"""
import math
import typing as tp

import omegaconf
import torch
import torch.nn.functional as F
from audiocraft.models.encodec import EncodecModel
from audiocraft.quantization.base import BaseQuantizer, QuantizedResult
from torch import nn

from ..config_validation import is_int, require
from ..quantization.code_restarts import CodeRestarts
from ..quantization.codebook_count import SelectableCodebooks

# kwargs of `dac.model.DAC` that the `dac` block passes on, then the keys of our wrapper
DAC_MODEL_KEYS = ('encoder_dim', 'encoder_rates', 'latent_dim', 'decoder_dim', 'decoder_rates', 'n_codebooks',
                  'codebook_size', 'codebook_dim', 'quantizer_dropout')
DAC_KEYS = DAC_MODEL_KEYS + ('commitment_weight', 'codebook_weight')


def _frozen(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """layer(x) with the layer's parameters detached: the gradient reaches x only."""
    params = {name: p.detach() for name, p in layer.named_parameters()}
    return torch.func.functional_call(layer, params, (x,))


class DACQuantizer(SelectableCodebooks, BaseQuantizer):
    """DAC's `ResidualVectorQuantize` with audiocraft's quantizer interface (see the module docstring).

    Args:
        rvq: a `dac.nn.quantize.ResidualVectorQuantize`.
        commitment_weight, codebook_weight: weights of DAC's two quantizer losses in the penalty.
    """
    codec_name = 'DAC'
    # MMD streams (`mmd.streams`, see `streams`); projected is the DAC configs' choice
    STREAM_KINDS = ('projected', 'quantized', 'residual')
    codebook_layers = ()  # DAC's stages return other outputs than audiocraft's: no forward hooks (losses.streams)

    def __init__(self, rvq: nn.Module, commitment_weight: float = 0.25, codebook_weight: float = 1.):
        super().__init__()
        self.rvq = rvq
        self.max_n_q = self.n_q = rvq.n_codebooks
        self.bins = rvq.codebook_size
        self.dimension = rvq.quantizers[0].in_proj.in_channels
        self.commitment_weight, self.codebook_weight = commitment_weight, codebook_weight
        self.restarts: tp.Optional[CodeRestarts] = None
        # training only: the decoder gets quantized + residual_mix * (x - quantized) (codec_training.quantizer_warmup)
        self.residual_mix = 0.

    def use_code_restarts(self) -> None:
        """Restart dead entries after each training forward (`quantization.code_restarts`; audiocraft's
        RVQ defaults: decay 0.99, threshold 2 picks per batch). `codec_training.dead_codes=replace`."""
        self.restarts = CodeRestarts(self.max_n_q, self.bins)

    @property
    def layers(self) -> nn.ModuleList:
        """DAC's per-codebook `VectorQuantize` modules (in_proj, codebook, out_proj)."""
        return self.rvq.quantizers

    def forward(self, x: torch.Tensor, frame_rate: int) -> QuantizedResult:
        """x: [B, D, T] -> QuantizedResult(x=[B, D, T], codes=[B, K, T], bandwidth [B], penalty, metrics).

        The bandwidth is that of the codes (all active codebooks), whatever quantizer dropout gave the decoder."""
        if self.training and self.n_q != self.max_n_q:
            raise RuntimeError(f"DAC's training forward runs all {self.max_n_q} codebooks (quantizer dropout picks "
                               f"fewer per item); set_num_codebooks({self.n_q}) applies to eval only")
        quantized, codes, latents, commitment, codebook = self.rvq(x, n_quantizers=self.n_q)
        penalty = self.commitment_weight * commitment + self.codebook_weight * codebook
        bandwidth = torch.full((x.shape[0],), self.n_q * math.log2(self.bins) * frame_rate / 1000, device=x.device)
        metrics = {'vq_commitment': commitment.detach(), 'vq_codebook': codebook.detach()}
        if self.training and self.residual_mix > 0:
            quantized = quantized + self.residual_mix * (x - quantized)
        if self.training and self.restarts is not None:
            restarted = self.restarts([layer.codebook.weight.data for layer in self.layers], codes, latents)
            metrics['vq_restarts'] = restarted.sum().float()
        return QuantizedResult(quantized, codes, bandwidth, penalty=penalty, metrics=metrics)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, D, T] -> codes [B, n_q, T] (DAC's stages in eval: no dropout, no RNG use)."""
        residual, codes = x, []
        for layer in self.layers[:self.n_q]:
            quantized, _, _, code, _ = layer(residual)
            codes.append(code)
            residual = residual - quantized
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, k, T] (k <= K) -> latent [B, D, T], the sum of the first k out-projected entries."""
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.max_n_q:
            raise ValueError(f"DAC decodes codes of shape [B, k<={self.max_n_q}, T], got {tuple(codes.shape)}")
        return self.rvq.from_codes(codes)[0]

    def streams(self, emb: torch.Tensor, kind: str = 'projected', n_q: tp.Optional[int] = None,
                with_codes: bool = False) -> tp.Any:
        """Per-codebook streams of the encoder output emb [B, D, T] for the MMD loss.

        Stage k sees r_k = emb - sum_{j<k} q_j with the q_j detached (as audiocraft's RVQ streams), and the
        projections in_proj_k / out_proj_k are applied with detached weights: the loss reaches the encoder
        only, never the codebooks, the projections or the decoder; its gradient w.r.t. emb is the same in
        the exact and the bank estimators. Values and codes equal DAC's forward's.
        - `projected` [B, K, codebook_dim, T]: the L2-normalized entry picked by stage k, straight-through
          to the normalized projection of r_k: the space and metric (cosine) in which DAC picks its codes,
          with rows of norm 1 per codebook, so the kernel's bandwidths keep their meaning while training
          changes the scale of the latent.
        - `quantized` [B, K, D, T]: q_k = out_proj_k(entry), straight-through (the role of RVQ's codeword).
        - `residual` [B, K, D, T]: r_k.
        Returns the streams, and with ``with_codes`` the [B, K, T] long codes.
        """
        if kind not in self.STREAM_KINDS:
            raise ValueError(f"Unknown stream kind {kind!r} for a DAC quantizer; expected one of {self.STREAM_KINDS}")
        if emb.dim() != 3 or emb.shape[1] != self.dimension:
            raise ValueError(f"DAC streams expect emb of shape [B, {self.dimension}, T], got {tuple(emb.shape)}")
        residual, streams, codes = emb, [], []
        for layer in self.layers[:n_q or self.n_q]:
            projected = _frozen(layer.in_proj, residual)
            with torch.no_grad():
                entry, code = layer.decode_latents(projected)
            quantized = _frozen(layer.out_proj, projected + (entry - projected).detach())  # DAC's q_k
            if kind == 'projected':
                unit = F.normalize(projected, dim=1)
                streams.append(unit + (F.normalize(entry, dim=1) - unit).detach())
            else:
                streams.append(quantized if kind == 'quantized' else residual)
            codes.append(code)
            residual = residual - quantized.detach()
        streams = torch.stack(streams, dim=1)
        return (streams, torch.stack(codes, dim=1)) if with_codes else streams


class DACModel(EncodecModel):
    """DAC's encoder, quantizer (`DACQuantizer`) and decoder as an audiocraft compression model (mono).

    Args:
        encoder, decoder: `dac.model.dac.Encoder` / `Decoder`.
        quantizer: the `DACQuantizer` around DAC's residual vector quantizer.
        hop_length: samples per frame (the product of the encoder's strides).
        sample_rate: audio sample rate; `sample_rate / hop_length` is the frame rate.
    """
    def __init__(self, encoder: nn.Module, quantizer: DACQuantizer, decoder: nn.Module, hop_length: int,
                 sample_rate: int):
        super().__init__(encoder, decoder, quantizer, frame_rate=sample_rate // hop_length, sample_rate=sample_rate,
                         channels=1, causal=False, renormalize=False)
        self.hop_length = hop_length

    def preprocess(self, x: torch.Tensor) -> tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor]]:
        """Right-pad x [B, 1, L] to a multiple of the hop length (DAC's own padding); no scale."""
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"DAC takes mono audio [B, 1, L], got shape {tuple(x.shape)}")
        return F.pad(x, (0, -x.shape[-1] % self.hop_length)), None


def residual_block_types() -> tp.Tuple[type, ...]:
    """DAC's residual units (branch in `.block`), for `codec_training.init=preserve_signal`."""
    from dac.model.dac import ResidualUnit
    return (ResidualUnit,)


def dac_from_config(cfg: omegaconf.DictConfig) -> DACModel:
    """The DACModel of a config with `compression_model: dac` (kwargs from the `dac` block, `sample_rate`)."""
    import dac  # descript-audio-codec; imported on use: it pulls in audiotools and tensorboard
    from audiocraft.utils.utils import dict_from_config
    block = dict_from_config(cfg.dac)
    weights = {key: block.pop(key) for key in ('commitment_weight', 'codebook_weight')}
    net = dac.model.DAC(sample_rate=cfg.sample_rate, **block)
    quantizer = DACQuantizer(net.quantizer, **weights)
    return DACModel(net.encoder, quantizer, net.decoder, hop_length=int(net.hop_length), sample_rate=cfg.sample_rate)


def _rates(block: omegaconf.DictConfig, key: str) -> tp.List[int]:
    rates = block.get(key)
    ok = isinstance(rates, (list, omegaconf.ListConfig)) and len(rates) > 0 and \
        all(is_int(r) and r >= 2 and r % 2 == 0 for r in rates)
    # odd strides: DAC's transposed convs (kernel 2s, padding ceil(s/2)) give s*T - 1 samples, not s*T
    require(ok, f'dac.{key}', rates, "must be a non-empty list of even integers >= 2 (strides)")
    return list(rates)


def validate_dac_config(cfg: omegaconf.DictConfig) -> None:
    """Check the `dac` block and what a DAC codec needs of the rest of the config; errors name the key."""
    block = cfg.get('dac')
    require(block is not None, 'dac', block, "compression_model=dac needs a `dac` block")
    unknown = sorted(set(block.keys()) - set(DAC_KEYS))
    require(not unknown, 'dac', unknown, f"unknown key(s); known keys: {list(DAC_KEYS)}")
    missing = sorted(set(DAC_KEYS) - set(block.keys()))
    require(not missing, 'dac', missing, "missing key(s)")
    for key in ('encoder_dim', 'n_codebooks', 'codebook_dim'):
        require(is_int(block[key]) and block[key] >= 1, f'dac.{key}', block[key], "must be an integer >= 1")
    require(block.latent_dim is None or (is_int(block.latent_dim) and block.latent_dim >= 1), 'dac.latent_dim',
            block.latent_dim, "must be null (encoder_dim * 2 ** len(encoder_rates)) or an integer >= 1")
    require(is_int(block.codebook_size) and block.codebook_size >= 2, 'dac.codebook_size', block.codebook_size,
            "must be an integer >= 2")
    dropout = block.quantizer_dropout
    require(isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout <= 1,
            'dac.quantizer_dropout', dropout, "must be a number in [0, 1] (the fraction of items dropped)")
    for key in ('commitment_weight', 'codebook_weight'):
        value = block[key]
        require(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0, f'dac.{key}', value,
                "must be a number >= 0")
    encoder_rates, decoder_rates = _rates(block, 'encoder_rates'), _rates(block, 'decoder_rates')
    hop = math.prod(encoder_rates)
    require(math.prod(decoder_rates) == hop, 'dac.decoder_rates', decoder_rates,
            f"must upsample by the encoder's hop length {hop} (dac.encoder_rates={encoder_rates})")
    blocks = 2 ** len(decoder_rates)
    require(is_int(block.decoder_dim) and block.decoder_dim >= blocks and block.decoder_dim % blocks == 0,
            'dac.decoder_dim', block.decoder_dim, f"must be a multiple of 2 ** len(decoder_rates) = {blocks} "
            "(each decoder block halves the channels)")
    sample_rate = cfg.get('sample_rate')
    require(is_int(sample_rate) and sample_rate % hop == 0, 'sample_rate', sample_rate,
            f"must be a multiple of DAC's hop length {hop} (dac.encoder_rates={encoder_rates}): integer frame rate")
    require(cfg.get('channels') == 1, 'channels', cfg.get('channels'), "DAC's encoder and decoder are mono")
