"""Policy and reference that share their lower layers: run the shared trunk once, the two tops apart.

The round-0 implicit PRM is trained with its lower layers frozen (`freeze_trunk`), so its policy and
the reference it is compared with are the same network up to some layer. Scoring then needs one pass
through the shared layers and two through the rest instead of two full passes: with 4 of SmolLM2's 30
layers trained, a solution costs about 1.2 forward passes instead of 2. Training gets cheaper too, as
nothing below the trainable layers needs gradients.

Only decoder stacks shaped like Llama's (`model.model.embed_tokens / layers / rotary_emb / norm`, an
`lm_head`) with SDPA attention are split; for anything else `shared_layers` returns 0 and callers run
the two models whole. With no attention mask SDPA applies its causal mask, as the full model does for
right-padded batches (see workers.ml.prm).
"""


def _stack(model):
    base = getattr(model, "model", None)
    needed = ("embed_tokens", "layers", "rotary_emb", "norm")
    if base is None or not all(hasattr(base, n) for n in needed) or not hasattr(model, "lm_head"):
        return None
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return None
    return base


def freeze_trunk(model, trainable_layers: int) -> int:
    """Freeze the embeddings and all but the top `trainable_layers` decoder layers; returns how many are frozen.

    With tied input/output embeddings the output head stays frozen with them; the top layers and the
    final norm still train.
    """
    base = _stack(model)
    if base is None or trainable_layers >= len(base.layers):
        return 0
    if trainable_layers < 1:
        raise ValueError(f"trainable_layers must be at least 1, got {trainable_layers}")
    frozen = len(base.layers) - trainable_layers
    for module in (base.embed_tokens, *base.layers[:frozen]):
        for p in module.parameters():
            p.requires_grad_(False)
    return frozen


def shared_layers(policy, reference) -> int:
    """How many lower decoder layers (embeddings included) the two models hold identically; 0 = none."""
    import torch

    a, b = _stack(policy), _stack(reference)
    if a is None or b is None or len(a.layers) != len(b.layers) or policy is reference:
        return 0
    if not _same(a.embed_tokens, b.embed_tokens):
        return 0
    n = 0
    with torch.no_grad():
        for la, lb in zip(a.layers, b.layers):
            if not _same(la, lb):
                break
            n += 1
    return n


def _same(ma, mb):
    import torch

    pa, pb = list(ma.parameters()), list(mb.parameters())
    return len(pa) == len(pb) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(pa, pb))


def paired_logits(policy, reference, input_ids, split):
    """Logits of both models for `input_ids` (right-padded, causal), the first `split` layers run once."""
    import torch

    base = policy.model
    hidden = base.embed_tokens(input_ids)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
    rotary = base.rotary_emb(hidden, positions)
    hidden = _run(base.layers[:split], hidden, positions, rotary)
    out = []
    for model in (policy, reference):
        top = _run(model.model.layers[split:], hidden, positions, rotary)
        out.append(model.lm_head(model.model.norm(top)))
    return out


def _run(layers, hidden, positions, rotary):
    for layer in layers:
        hidden = layer(hidden, attention_mask=None, position_ids=positions, position_embeddings=rotary,
                       use_cache=False)
        if isinstance(hidden, tuple):
            hidden = hidden[0]
    return hidden
