"""The reference models: MSAMamba as a PyTorch user would write it on mamba_ssm, and a GPN-MSA-style
row transformer.

Letters: B batch, M rows (species), L positions, D d_model, E d_inner, N d_state. Tokens are
0..5 (the six-symbol alphabet), so embeddings and the MLM head have 6 entries.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 6


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        # The mean square in float32 even under autocast, then back to x's dtype.
        inv = torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return x * inv.to(x.dtype) * self.weight


class Mamba(nn.Module):
    """mamba_ssm's Mamba-1 mixer (mamba_simple.Mamba on its unfused path: in_proj, depthwise
    causal conv, x_proj, dt_proj, selective scan gated by z, out_proj), with `scan` for the
    selective scan."""

    def __init__(self, d, scan, d_state=16, d_conv=4, expand=2):
        super().__init__()
        e = expand * d
        self.d_inner, self.d_state, self.dt_rank = e, d_state, math.ceil(d / 16)
        self.scan = scan
        self.in_proj = nn.Linear(d, 2 * e, bias=False)
        # Padded on both sides by PyTorch; the forward keeps the first L outputs, the causal ones.
        self.conv1d = nn.Conv1d(e, e, d_conv, groups=e, padding=d_conv - 1)
        self.x_proj = nn.Linear(e, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, e)
        # S4D-real: A = -(1..N) in every channel.
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1).float()).repeat(e, 1))
        self.D = nn.Parameter(torch.ones(e))
        self.out_proj = nn.Linear(e, d, bias=False)

    def forward(self, h):
        """h: [R, L, D] -> [R, L, D], R independent rows."""
        l = h.shape[1]
        xz = self.in_proj(h).transpose(1, 2)  # [R, 2E, L]
        x, z = xz.chunk(2, dim=1)  # [R, E, L] each
        x = F.silu(self.conv1d(x)[..., :l])  # [R, E, L]
        proj = self.x_proj(x.transpose(1, 2))  # [R, L, r + 2N]
        dt, b, c = torch.split(proj, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        # dt_proj's weight only: its bias is the scan's delta_bias, added inside the kernel.
        delta = self.dt_proj.weight @ dt.transpose(1, 2)  # [R, E, L]
        a = -torch.exp(self.A_log.float())  # [E, N]
        y = self.scan(x, delta, a, b.transpose(1, 2), c.transpose(1, 2), self.D.float(), z,
                      self.dt_proj.bias.float())  # [R, E, L]
        return self.out_proj(y.transpose(1, 2))  # [R, L, D]


class MsaMambaBlock(nn.Module):
    """Post-norm: h = norm(h + Mamba along each row); h = norm(h + attention across rows);
    h = norm(h + MLP)."""

    def __init__(self, d, scan, heads=4):
        super().__init__()
        self.mamba, self.norm_mamba = Mamba(d, scan), RMSNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm_attn = RMSNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.SiLU(), nn.Linear(4 * d, d))
        self.norm_mlp = RMSNorm(d)

    def forward(self, h, kept, dropped):
        """h: [B, M, L, D] -> [B, M, L, D]. kept: indices of the kept rows among the B*M, or None
        when all are; dropped: [B, M] bool, True where a row is left out, or None."""
        b, m, l, d = h.shape
        rows = h.reshape(b * m, l, d)  # [B*M, L, D]
        if kept is None:
            mixed = self.mamba(rows)
        else:
            # Row-sparse: the mixer runs on the kept rows only; the others get no update.
            mixed = torch.zeros_like(rows).index_copy(
                0, kept, self.mamba(rows.index_select(0, kept)).to(rows.dtype))
        h = self.norm_mamba(h + mixed.reshape(b, m, l, d))
        cols = h.permute(0, 2, 1, 3).reshape(b * l, m, d)  # [B*L, M, D]: rows are the sequence
        pad = None if dropped is None else dropped.repeat_interleave(l, dim=0)  # [B*L, M]
        a, _ = self.attn(cols, cols, cols, key_padding_mask=pad, need_weights=False)
        h = self.norm_attn(h + a.reshape(b, l, m, d).permute(0, 2, 1, 3))  # [B, M, L, D]
        return self.norm_mlp(h + self.mlp(h))


class MsaMamba(nn.Module):
    """Token embedding plus a learned embedding of the row's index, the blocks, and the MLM head
    on row 0 (the target species)."""

    def __init__(self, scan, d=128, layers=3, max_rows=128):
        super().__init__()
        self.embed, self.row_pos = nn.Embedding(VOCAB, d), nn.Embedding(max_rows, d)
        self.blocks = nn.ModuleList(MsaMambaBlock(d, scan) for _ in range(layers))
        self.head = nn.Linear(d, VOCAB)

    def forward(self, tokens, keep):
        """tokens: [B, M, L] Int, keep: [B, M] bool -> logits: [B, L, 6]."""
        m = tokens.shape[1]
        if m > self.row_pos.num_embeddings:
            raise ValueError(
                f"{m} rows but {self.row_pos.num_embeddings} row positions (--max-rows)")
        h = self.embed(tokens) + self.row_pos.weight[:m][None, :, None, :]  # [B, M, L, D]
        if bool(keep.all()):
            kept = dropped = None
        else:
            kept = keep.reshape(-1).nonzero().squeeze(1)  # [kept rows]
            dropped = ~keep
        for block in self.blocks:
            h = block(h, kept, dropped)
        return self.head(h[:, 0])


class RowTransformer(nn.Module):
    """GPN-MSA style: a pre-norm transformer along the target row, whose input adds the other
    rows' one-hot bases at each position as features. Ignores row-keep."""

    def __init__(self, d=128, layers=3, max_rows=128):
        super().__init__()
        self.max_rows = max_rows
        self.embed = nn.Embedding(VOCAB, d)
        self.features = nn.Linear(max_rows * VOCAB, d)
        layer = nn.TransformerEncoderLayer(d, 4, 4 * d, batch_first=True, norm_first=True)
        # Nested tensors are for padded inference batches; off, as PyTorch turns them off anyway
        # for a pre-norm layer (and warns).
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, VOCAB)

    def forward(self, tokens, keep):
        """tokens: [B, M, L] Int -> logits: [B, L, 6]."""
        b, m, l = tokens.shape
        onehot = F.one_hot(tokens[:, 1:].clamp(max=VOCAB - 1), VOCAB)  # [B, M-1, L, 6]
        onehot = onehot.permute(0, 2, 1, 3).reshape(b, l, (m - 1) * VOCAB).float()  # [B, L, 6(M-1)]
        onehot = F.pad(onehot, (0, self.max_rows * VOCAB - onehot.shape[-1]))  # [B, L, 6 max_rows]
        x = self.embed(tokens[:, 0]) + self.features(onehot.to(self.features.weight.dtype))
        return self.head(self.encoder(x))


def build_model(name, scan, d, layers, max_rows):
    if name == "msamamba":
        return MsaMamba(scan, d, layers, max_rows)
    return RowTransformer(d, layers, max_rows)
