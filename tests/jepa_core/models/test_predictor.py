from __future__ import annotations

import pytest
import torch
from timm.models.vision_transformer import Block
from torch import nn

from jepa_core.masks import BlockMaskSampler
from jepa_core.models import JepaPredictor, Packing
from tests.jepa_core.models.ragged import ragged_context


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
    idx, valid = ragged_context()
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
