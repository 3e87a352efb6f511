from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from jepa_core.masks import BlockMaskSampler
from jepa_core.models import IJepa, JepaEncoder, JepaPredictor, Packing, packable, sincos_pos_embed_2d


def test_sincos_pos_embed_2d__shape_and_distinct_positions():
    pe = sincos_pos_embed_2d(4, 5, 16)
    assert pe.shape == (20, 16)
    assert torch.cdist(pe, pe).add(torch.eye(20)).min() > 0  # every position has its own code


def test_update_target__one_ema_step_exact(tiny_config):
    torch.manual_seed(0)
    model = IJepa(tiny_config, in_chans=1)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in model.target.parameters()]
    online = [p.clone() for p in model.encoder.parameters()]
    model.update_target(0.9)
    for t, b, o in zip(model.target.parameters(), before, online, strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    assert not any(p.requires_grad for p in model.target.parameters())


def test_encoder__padding_does_not_change_valid_tokens():
    torch.manual_seed(0)
    enc = JepaEncoder(16, 4, 1, 32, 2, 2).eval()
    x = torch.randn(1, 1, 16, 16)
    idx = torch.tensor([[0, 3, 5, 9]])
    alone = enc(x, idx, torch.ones_like(idx, dtype=torch.bool))
    padded_idx = torch.tensor([[0, 3, 5, 9, 0, 0]])
    valid = torch.tensor([[True, True, True, True, False, False]])
    padded = enc(x, padded_idx, valid)
    torch.testing.assert_close(padded[:, :4], alone, atol=1e-5, rtol=1e-5)


def _ragged_context() -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.tensor([[0, 3, 5, 9, 12, 15], [1, 2, 7, 0, 0, 0], [4, 6, 8, 10, 11, 0]])
    valid = torch.tensor([[True] * 6, [True] * 3 + [False] * 3, [True] * 5 + [False]])
    return idx, valid


def test_packing__round_trip_and_mask():
    _, valid = _ragged_context()
    packing = Packing.of(valid)
    x = torch.arange(18.0).view(3, 6)
    packed = packing.pack(x)
    assert packed.tolist() == x[valid].tolist()
    torch.testing.assert_close(packing.unpack(packed), torch.where(valid, x, 0.0))
    assert packing.key_ok is not None and packing.key_ok.shape == (3, 1, 1, 6)
    assert Packing.of(torch.ones(2, 4, dtype=torch.bool)).key_ok is None  # nothing padded: unmasked attention


def test_encoder__packed_tokens_equal_padded_batch_in_values_and_gradients():
    """Packed tokens (token-wise layers on valid tokens only) compute what the padded, masked batch does."""
    torch.manual_seed(0)
    enc = JepaEncoder(16, 4, 1, 32, 2, 2).train()
    images = torch.randn(3, 1, 16, 16)
    idx, valid = _ragged_context()
    packed = enc(images, idx, valid)
    packed_grads = torch.autograd.grad((packed * valid[..., None]).square().sum(), list(enc.parameters()))
    x = enc.vit.patch_embed(images) + enc.pos_embed
    x = torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1]))
    for blk in enc.vit.blocks:
        x = blk(x, attn_mask=valid[:, None, None, :])
    padded = enc.vit.norm(x) * valid[..., None]
    padded_grads = torch.autograd.grad(padded.square().sum(), list(enc.parameters()))
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)
    assert packed[~valid].abs().max() == 0
    for a, b in zip(packed_grads, padded_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_encoder__active_stochastic_depth_is_never_packed():
    """Drop path drops whole samples (single tokens, were they packed), so those blocks stay padded."""
    enc = JepaEncoder(16, 4, 1, 32, 2, 2, drop_path=0.5)
    assert not packable(enc.vit.blocks[-1])
    assert packable(enc.vit.blocks[-1].eval())
    assert packable(enc.vit.blocks[0].train())  # rate 0 in the first block (the rate grows with depth)
    torch.manual_seed(0)
    idx, valid = _ragged_context()
    out = enc.train()(torch.randn(3, 1, 16, 16), idx, valid)
    assert out.shape == (3, 6, 32) and torch.isfinite(out).all() and out[~valid].abs().max() == 0


def test_packing__per_block_is_the_packing_of_the_repeated_layout():
    _, valid = _ragged_context()
    k, t = 2, 3
    seqs = Packing.of(valid).per_block(k, t)
    repeated = F.pad(valid, (0, t), value=True).repeat_interleave(k, dim=0)  # (B*K, Lc+T)
    assert sorted(seqs.index.tolist()) == Packing.of(repeated).index.tolist()
    assert seqs.key_ok is not None and seqs.key_ok.equal(repeated[:, None, None, :])
    context = torch.arange(18.0).view(3, 6)
    queries = -torch.arange(1.0, 3 * k * t + 1).view(3 * k, t)
    layout = torch.cat([context.repeat_interleave(k, dim=0), queries], dim=1)  # (B*K, Lc+T)
    # The documented order: each valid context token K times, then the queries, sequence by sequence.
    expected = torch.cat([context[valid].repeat_interleave(k), queries.reshape(-1)])
    assert seqs.pack(layout).equal(expected)


@pytest.fixture
def one_thread():
    """The oracles run hundreds of tiny ops, which two threads on a shared 2-core machine mostly spend
    waiting on each other (ten times slower at times)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _predictor(one_pass: bool, depth: int = 2) -> JepaPredictor:
    torch.manual_seed(0)
    pred = JepaPredictor(grid=4, encoder_dim=32, embed_dim=16, depth=depth, num_heads=2, one_pass=one_pass)
    with torch.no_grad():  # non-zero biases and non-unit norms, so that every parameter's gradient matters
        for p in pred.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return pred


class _OraclePredictor(nn.Module):
    """The predictor's weights in plain timm ``Block``s, run once per image and target block.

    Each (image, block) sequence is ``[that image's valid context (no padding); the block's mask tokens]``.
    ``context_sees_queries``: full attention (the paper's predictor) or context rows blind to the mask tokens
    (the one-pass variant).
    """

    def __init__(self, pred: JepaPredictor, context_sees_queries: bool) -> None:
        super().__init__()
        dim, enc_dim = pred.embed.out_features, pred.embed.in_features
        heads, hidden = pred.blocks[0].attn.num_heads, pred.blocks[0].mlp.fc1.out_features
        self.context_sees_queries = context_sees_queries
        self.embed, self.norm, self.proj = nn.Linear(enc_dim, dim), nn.LayerNorm(dim), nn.Linear(dim, enc_dim)
        self.mask_token = nn.Parameter(torch.empty(1, 1, dim))
        self.blocks = nn.ModuleList(
            Block(dim, heads, hidden / dim, qkv_bias=True, norm_layer=nn.LayerNorm) for _ in pred.blocks
        )
        self.load_state_dict(pred.state_dict())
        self.register_buffer("pos_embed", pred.pos_embed.clone())

    def forward(
        self, context: torch.Tensor, context_idx: torch.Tensor, valid: torch.Tensor, target_idx: torch.Tensor
    ) -> torch.Tensor:
        images = []
        for b in range(context.shape[0]):
            ctx = self.embed(context[b, valid[b]]) + self.pos_embed[context_idx[b, valid[b]]]  # (n, Dp)
            n = ctx.shape[0]
            blocks = []
            for block_idx in target_idx[b]:
                x = torch.cat([ctx, self.mask_token[0] + self.pos_embed[block_idx]])[None]  # (1, n+T, Dp)
                allowed = None
                if not self.context_sees_queries:
                    allowed = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool)
                    allowed[:n, n:] = False
                for blk in self.blocks:
                    x = blk(x, attn_mask=allowed)
                blocks.append(self.proj(self.norm(x[0, n:])))  # (T, De)
            images.append(torch.stack(blocks))
        return torch.stack(images)  # (B, K, T, De)


def _predictor_inputs(ragged: bool) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(1)
    idx, valid = _ragged_context()
    if not ragged:
        idx, valid = idx[:, :3], valid[:, :3]
    context = torch.randn(*idx.shape, 32, generator=gen)
    target_idx = torch.randint(0, 16, (3, 2, 4), generator=gen)
    return context, idx, valid, target_idx


def _outputs_and_grads(
    module: nn.Module, forward, context: torch.Tensor, *inputs: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    context = context.clone().requires_grad_(True)
    out = forward(context, *inputs)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    names = [name for name, _ in module.named_parameters()]
    grads = torch.autograd.grad((out * weights).sum(), [*module.parameters(), context])
    return out, dict(zip([*names, "context"], grads, strict=True))


@pytest.mark.parametrize(
    ("one_pass", "layout", "ragged"),
    [(False, "forward", True), (False, "forward", False), (False, "padded", True), (True, "forward", True)],
)
def test_predictor__equals_its_oracle_in_outputs_and_gradients(one_pass, layout, ragged, one_thread):
    """Paper: full attention over [valid context; block]. Variant: the context rows see the context only."""
    pred = _predictor(one_pass)
    oracle = _OraclePredictor(pred, context_sees_queries=not one_pass)
    inputs = _predictor_inputs(ragged)
    forward = pred
    if layout == "padded":  # the padded layout (used when blocks cannot be packed) instead of packed tokens

        def forward(context, idx, valid, target_idx):
            return pred._per_block_padded(context, idx, target_idx, Packing.of(valid).key_ok)

    out, grads = _outputs_and_grads(pred, forward, *inputs)
    expected, expected_grads = _outputs_and_grads(oracle, oracle, *inputs)
    assert out.shape == (3, 2, 4, 32)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    assert grads.keys() - {"pos_embed"} == expected_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("depth", [1, 2])
def test_predictor__one_pass_variant_differs_from_paper_from_two_layers_on(depth):
    """With one layer, mask tokens read the same context states in both; from the second layer on, the
    paper's context states have attended to the block's mask tokens and the variant's have not."""
    inputs = _predictor_inputs(ragged=True)
    paper = _predictor(one_pass=False, depth=depth)
    variant = _predictor(one_pass=True, depth=depth)
    out_paper, grads_paper = _outputs_and_grads(paper, paper, *inputs)
    out_variant, grads_variant = _outputs_and_grads(variant, variant, *inputs)
    if depth == 1:
        torch.testing.assert_close(out_variant, out_paper, atol=1e-5, rtol=1e-4)
        for name, grad in grads_paper.items():
            torch.testing.assert_close(grads_variant[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    else:
        assert (out_variant - out_paper).abs().max() > 1e-3


@pytest.mark.parametrize("one_pass", [False, True])
def test_predictor__all_blocks_at_once_equal_each_block_alone(one_pass):
    pred = _predictor(one_pass).eval()
    masks = BlockMaskSampler(4, 4, ratio=0.4, num_targets=3)(2, torch.Generator().manual_seed(1))
    z = torch.randn(2, masks.context_idx.shape[1], 32)
    joint = pred(z, masks.context_idx, masks.context_valid, masks.target_idx)
    for k in range(masks.target_idx.shape[1]):
        single = pred(z, masks.context_idx, masks.context_valid, masks.target_idx[:, k : k + 1])
        torch.testing.assert_close(joint[:, k], single[:, 0], atol=1e-5, rtol=1e-5)


def test_ijepa__predictor_follows_config_one_pass(tiny_config):
    assert not IJepa(tiny_config, in_chans=1).predictor.one_pass
    tiny_config.predictor.one_pass = True
    assert IJepa(tiny_config, in_chans=1).predictor.one_pass


def test_loss__gradients_reach_encoder_and_predictor_not_target(tiny_config):
    torch.manual_seed(0)
    model = IJepa(tiny_config, in_chans=1)
    masks = BlockMaskSampler(4, 4, ratio=0.4)(3, torch.Generator().manual_seed(0))
    loss = model.loss(torch.randn(3, 1, 16, 16), masks.context_idx, masks.context_valid, masks.target_idx)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert model.encoder.vit.blocks[0].attn.qkv.weight.grad is not None
    assert model.predictor.mask_token.grad is not None
    assert all(p.grad is None for p in model.target.parameters())
