"""Tiny models built offline from a config, for tests that must run a real forward pass in seconds.

`build_tokenizer` trains a byte-level BPE on a small corpus (digits, letters, math symbols, the
PRM800K "# Answer" marker all encode); `build_causal_lm` and `build_token_classifier` save a
2-layer, 16-wide Llama with that tokenizer into a folder that `from_pretrained` loads.
"""
import string

CORPUS = [
    "Let x be the number of apples. Then 2x + 3 = 11, so x = 4.",
    "The answer is 42.\n\nWe check: 6 * 7 = 42.",
    "Compute the sum of the first ten positive integers: 1 + 2 + ... + 10 = 55.",
    "Since the triangle is right-angled, a^2 + b^2 = c^2, hence c = 5.",
    "Step one: factor the polynomial.\n\nStep two: set each factor to zero.",
    "# Answer\n\n7",
    "What is $\\frac{1}{2} + \\frac{1}{3}$? Solve step by step.",
    string.ascii_letters + string.digits + string.punctuation,
]
SPECIALS = ["<pad>", "<s>", "</s>", "<|step|>"]


def build_tokenizer(directory, vocab_size=400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token=None))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                  additional_special_tokens=["<|step|>"])
    tok.save_pretrained(directory)
    return tok


def tiny_config(tok, **overrides):
    from transformers import LlamaConfig

    values = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=512,
                  pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    values.update(overrides)
    return LlamaConfig(**values)


def build_causal_lm(directory, seed=0, **overrides):
    """A tiny LlamaForCausalLM + tokenizer saved in `directory`; returns the folder."""
    import torch
    from transformers import LlamaForCausalLM

    tok = build_tokenizer(directory)
    torch.manual_seed(seed)
    LlamaForCausalLM(tiny_config(tok, **overrides)).save_pretrained(directory)
    return str(directory)


def build_token_classifier(directory, seed=0, head_std=2.0, **overrides):
    """A tiny LlamaForTokenClassification (3 labels) + tokenizer; a wide head so steps differ visibly."""
    import torch
    from transformers import LlamaForTokenClassification

    tok = build_tokenizer(directory)
    torch.manual_seed(seed)
    model = LlamaForTokenClassification(tiny_config(tok, num_labels=3, **overrides))
    with torch.no_grad():
        model.score.weight.normal_(0, head_std)
    model.save_pretrained(directory)
    return str(directory)
